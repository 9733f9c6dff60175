"""Regression tests for each crash and lie listed at the top of issue 10 (and the import
points of issues 11 and 12), each built from a delivery constructed here."""
from __future__ import annotations

import math

import shapely
from sqlalchemy import text

from app.imports import operations as ops
from tests.delivery_factory import clean


def _faults(batch):
    return [(f.rule, f.code, f.detail, f.feature_id, f.record_id, f.cause_id, f.id)
            for f in ops.faults(batch.id)]


def _status(dbs, batch, table):
    return dict(dbs.execute(text(f"SELECT status, count(*) FROM {table} WHERE batch_id = :b "
                                 "GROUP BY status"), {"b": batch.id}).all())


def test_a_parcel_with_no_geometry_is_a_fault_not_a_crash(dbs, tmp_path):
    d = clean(9101)
    code = d.dk[1][0]["DKBM"]
    d.dk[1][1] = None
    batch = ops.run("bureau", d.write(tmp_path / "d"))
    assert [(r, c) for r, c, *_ in _faults(batch)] == [("missing_shape", code)]
    ops.accept("bureau", batch, valid_part=True)
    assert _status(dbs, batch, "import_feature") == {"registered": len(d.dk) + len(d.zjd) - 1,
                                                     "quarantined": 1}


def test_a_homestead_layer_with_z_is_staged_in_2d_and_noted(dbs, tmp_path):
    d = clean(9102)
    for f in d.zjd:
        f[1] = shapely.force_3d(f[1], 931.5)
    batch = ops.run("bureau", d.write(tmp_path / "d"))
    assert _faults(batch) == []
    assert batch.counts["notes"]["z_dropped"] == len(d.zjd)
    ops.accept("bureau", batch)
    dims = dbs.execute(text("SELECT DISTINCT ST_NDims(p.geom) FROM parcel p JOIN import_feature f"
                            " ON f.parcel_id = p.id WHERE f.batch_id = :b AND f.layer = 'ZJD'"),
                       {"b": batch.id}).scalars().all()
    assert dims == [2]


def test_a_relation_code_outside_the_list_is_found_before_acceptance(dbs, tmp_path):
    d = clean(9103, households=3)
    member = d.tables["CBF_JTCY"][-1]
    member["YHZGX"] = "77"
    batch = ops.run("bureau", d.write(tmp_path / "d"))
    found = _faults(batch)
    assert [(r, c) for r, c, *_ in found] == [("code_list", member["CBFBM"])]
    assert "YHZGX = 77" in found[0][2]
    result = ops.accept("bureau", batch, valid_part=True)  # the database CHECK is never reached
    assert "failed" not in result
    recs = _status(dbs, batch, "import_record")
    assert recs == {"registered": sum(len(v) for v in d.tables.values()) - 1, "quarantined": 1}
    assert dbs.execute(text("SELECT count(*) FROM person WHERE id_number = :n"),
                       {"n": member["CYZJHM"]}).scalar() == 0


def test_a_duplicated_household_code_quarantines_both_and_their_dependants(dbs, tmp_path):
    d = clean(9104, households=3, parcels_per_household=2)
    dup = dict(d.tables["CBF"][0], CBFMC="另一户")
    d.tables["CBF"].append(dup)
    hh = dup["CBFBM"]
    batch = ops.run("bureau", d.write(tmp_path / "d"))
    found = _faults(batch)
    dups = [f for f in found if f[0] == "duplicate_key"]
    assert len(dups) == 2 and {f[1] for f in dups} == {hh}
    knock = [f for f in found if f[0] == "depends_on_fault"]
    members = [r for r in d.tables["CBF_JTCY"] if r["CBFBM"] == hh]
    listed = [r for r in d.tables["CBDKXX"] if r["CBFBM"] == hh]
    contracts = [r for r in d.tables["CBHT"] if r["CBFBM"] == hh]
    homesteads = [f for f in d.zjd if f[0]["CBFBM"] == hh]
    # members, contracts, CBDKXX rows, their parcels and homesteads: each linked to a cause
    assert len(knock) == len(members) + len(listed) + len(contracts) + len(listed) + \
        len(homesteads)
    assert all(f[5] in {x[6] for x in dups} for f in knock)
    ops.accept("bureau", batch, valid_part=True)
    assert dbs.execute(text("SELECT count(*) FROM household WHERE cbfbm = :h"),
                       {"h": hh}).scalar() == 0
    # Nothing marked registered that is not: both CBF rows wait.
    st = dbs.execute(text("SELECT status FROM import_record WHERE batch_id = :b AND tbl = 'CBF'"
                          " AND attrs->>'CBFBM' = :h"), {"b": batch.id, "h": hh}).scalars().all()
    assert st == ["quarantined", "quarantined"]


def test_terms_and_impossible_birth_dates_are_named_for_what_is_wrong(dbs, tmp_path):
    from tests.delivery_factory import check_char

    d = clean(9105)
    ht = d.tables["CBHT"][0]
    ht["CBQXQ"], ht["CBQXZ"] = "2010-01-01", "2009-12-31"
    m = d.tables["CBF_JTCY"][0]
    body = m["CYZJHM"][:6] + m["CYZJHM"][6:10] + "0230" + m["CYZJHM"][14:17]
    m["CYZJHM"] = body + check_char(body)  # a correct check digit, an impossible date
    batch = ops.run("bureau", d.write(tmp_path / "d"))
    rules = {(r, c) for r, c, *_ in _faults(batch)}
    assert ("bad_term", ht["CBHTBM"]) in rules
    assert ("id_birth_date", m["CBFBM"]) in rules
    assert not any(r == "bad_id_checksum" for r, _ in rules)


def test_a_malformed_parcel_code_and_its_missing_listing_are_linked(dbs, tmp_path):
    d = clean(9106)
    good = d.dk[0][0]["DKBM"]
    d.dk[0][0]["DKBM"] = good[:16] + "O" + good[17:]
    batch = ops.run("bureau", d.write(tmp_path / "d"))
    found = _faults(batch)
    bad = next(f for f in found if f[0] == "bad_code")
    missing = next(f for f in found if f[0] == "missing_geometry")
    assert missing[1] == good and missing[5] == bad[6]
    assert d.dk[0][0]["DKBM"] in missing[2]
    report = ops.report_csv(batch.id)
    assert "caused_by" in report.splitlines()[0]


def test_a_million_vertex_polygon_is_a_fault(dbs, tmp_path):
    d = clean(9107)
    x0, y0, x1, y1 = d.dk[0][1].bounds
    n = 1_000_000
    t = [2 * math.pi * i / n for i in range(n)]
    cx, cy, r = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2
    d.dk[0][1] = shapely.Polygon([(cx + r * math.cos(a), cy + r * math.sin(a)) for a in t])
    batch = ops.run("bureau", d.write(tmp_path / "d"))
    found = _faults(batch)
    assert [(r, c) for r, c, *_ in found] == [("too_many_vertices", d.dk[0][0]["DKBM"])]
    assert f"{n + 1} vertices" in found[0][2]  # the ring closes on its first point
    ops.accept("bureau", batch, valid_part=True)
    assert dbs.execute(text("SELECT count(*) FROM parcel WHERE code = :c"),
                       {"c": d.dk[0][0]["DKBM"]}).scalar() == 0


def test_an_acceptance_failure_is_a_fault_and_registers_nothing(dbs, tmp_path, monkeypatch):
    from app.imports import registration

    d = clean(9108)
    batch = ops.run("bureau", d.write(tmp_path / "d"))
    real = registration.register_features

    def broken(actor, b, feature_ids=None):
        real(actor, b, feature_ids)
        dbs.execute(text("SELECT 1 / 0"))  # fails after parcels were inserted

    monkeypatch.setattr(registration, "register_features", broken)
    result = ops.accept("bureau", batch, valid_part=True)
    assert result["failed"] and result["parcels"] == 0
    assert [r for r, *_ in _faults(batch)] == ["acceptance_failed"]
    assert dbs.execute(text("SELECT count(*) FROM parcel WHERE import_batch_id = :b"),
                       {"b": batch.id}).scalar() == 0
    assert dbs.execute(text("SELECT count(*) FROM household WHERE cbfbm = :h"),
                       {"h": d.tables["CBF"][0]["CBFBM"]}).scalar() == 0


def test_a_second_delivery_reassigning_registered_parcels_is_a_fault_and_audited(dbs, tmp_path):
    d = clean(9109, households=2, parcels_per_household=2)
    first = ops.run("bureau", d.write(tmp_path / "a"))
    ops.accept("bureau", first)
    # The second delivery lists household 1's parcels under household 2.
    again = d.copy()
    h1, h2 = again.tables["CBF"][0]["CBFBM"], again.tables["CBF"][1]["CBFBM"]
    moved = [r["DKBM"] for r in again.tables["CBDKXX"] if r["CBFBM"] == h1]
    again.tables = {"CBDKXX": [dict(r, CBFBM=h2) for r in again.tables["CBDKXX"]
                               if r["CBFBM"] == h1]}
    again.dk, again.zjd = [], []
    again.dk = [f for f in d.dk if f[0]["DKBM"] in moved]
    second = ops.run("bureau", again.write(tmp_path / "b"))
    reassigned = [(c, det) for r, c, det, *_ in _faults(second) if r == "parcel_reassigned"]
    assert sorted(c for c, _ in reassigned) == sorted(moved)
    assert all(h1 in det and h2 in det for _, det in reassigned)
    entry = dbs.execute(text("SELECT changes FROM audit_log WHERE action = "
                             "'import.reassignment_refused' AND object_id = :b"),
                        {"b": str(second.id)}).scalar()
    assert sorted(entry["parcels"]) == sorted(moved)
    ops.accept("bureau", second, valid_part=True)
    owners = dbs.execute(text("SELECT DISTINCT household_code FROM parcel WHERE code = ANY(:c) "
                              "AND end_lifespan IS NULL"), {"c": moved}).scalars().all()
    assert owners == [h1]


def test_correcting_the_cause_releases_its_knock_ons(dbs, tmp_path):
    d = clean(9110, households=3, parcels_per_household=2)
    dup = dict(d.tables["CBF"][0], CBFMC="另一户")
    d.tables["CBF"].append(dup)
    good = d.dk[-1][0]["DKBM"]
    d.dk[-1][0]["DKBM"] = good[:15] + "X" + good[16:]
    batch = ops.run("bureau", d.write(tmp_path / "d"))
    ops.accept("bureau", batch, valid_part=True)
    assert _status(dbs, batch, "import_feature").get("quarantined", 0) > 1
    # The wrong copy of the household gets its own, unused code.
    from app.imports.models import ImportFeature, ImportRecord

    copy_row = dbs.scalars(select_rows(ImportRecord, batch.id, "CBF")).all()[-1]
    fresh = dup["CBFBM"][:14] + "0099"
    ops.correct_record("bureau", copy_row, {"CBFBM": fresh}, reason="户号更正")
    # The malformed parcel code corrected.
    bad = dbs.scalar(sa_select(ImportFeature).where(ImportFeature.batch_id == batch.id,
                                                    ImportFeature.status == "quarantined",
                                                    ImportFeature.layer == "DK",
                                                    ImportFeature.code != good)
                     .where(ImportFeature.code.like("%X%")))
    fixed = ops.correct_feature("bureau", bad, attrs={"DKBM": good}, reason="编码更正")
    assert fixed.status == "registered"
    # Nothing waits any more; every household and parcel delivered is in the register.
    assert ops.faults(batch.id) == []
    feats = _status(dbs, batch, "import_feature")
    assert feats == {"registered": len(d.dk) + len(d.zjd), "superseded": 1}
    recs = _status(dbs, batch, "import_record")
    assert recs == {"registered": sum(len(v) for v in d.tables.values()), "superseded": 1}
    assert dbs.execute(text("SELECT household_code FROM parcel WHERE code = :c AND "
                            "end_lifespan IS NULL"), {"c": good}).scalar() == \
        next(r["CBFBM"] for r in d.tables["CBDKXX"] if r["DKBM"] == good)


def select_rows(model, batch_id, tbl):
    return sa_select(model).where(model.batch_id == batch_id, model.tbl == tbl).order_by(
        model.id)


def sa_select(*a):
    from sqlalchemy import select

    return select(*a)


def test_reader_faults_land_on_their_feature_when_two_layers_share_fids(dbs, tmp_path):
    from tests.delivery_factory import DK_FIELDS, write_layer

    d = clean(9111, households=3, parcels_per_household=2)
    folder = d.write(tmp_path / "d")
    for p in folder.glob("DK_*.gpkg"):
        p.unlink()
    first, second = d.dk[:3], [list(f) for f in d.dk[3:]]
    second[1][1] = None  # the second file's fid 2, as the first file's fid 2 is fine
    write_layer(folder / "DK_a.gpkg", "DK_a", d.srid, first, DK_FIELDS)
    write_layer(folder / "DK_b.gpkg", "DK_b", d.srid, second, DK_FIELDS)
    batch = ops.run("bureau", folder)
    assert [(r, c) for r, c, *_ in _faults(batch)] == [("missing_shape", second[1][0]["DKBM"])]
