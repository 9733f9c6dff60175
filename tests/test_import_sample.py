"""The sample delivery: exactly its known faults, accept the valid part, correct and re-submit,
nothing lost."""
import csv
import json
from pathlib import Path

import pytest
from sqlalchemy import select, text

from app.errors import DomainError
from app.imports import operations as ops
from app.imports.models import ImportFault, ImportFeature, ImportRecord
from app.parcels.models import Parcel

SAMPLE = next(p / "shared" / "data" / "village-sample" for p in Path(__file__).resolve().parents
              if (p / "shared" / "data" / "village-sample").is_dir())


def known_errors():
    with open(SAMPLE / "KNOWN_ERRORS.csv", encoding="utf-8") as f:
        return {(r["kind"], r["code"]) for r in csv.DictReader(f)}


@pytest.fixture()
def batch(dbs):
    return ops.run("bureau", SAMPLE)


def test_reports_exactly_the_known_faults(batch, dbs):
    found = {(f.rule, f.code) for f in ops.faults(batch.id)}
    assert found == known_errors()
    # Each fault says where: a feature (with a location on the map) or an ownership row.
    for f in ops.faults(batch.id):
        assert f.feature_id or f.record_id
        if f.feature_id:
            assert f.location is not None
    report = ops.report_csv(batch.id)
    assert report.count("\n") == len(known_errors()) + 1 and "自相交" in report


def test_accept_valid_part_then_correct_and_resubmit_loses_nothing(batch, dbs):
    with pytest.raises(DomainError) as e:
        ops.accept("bureau", batch)  # not in whole: it has faults
    assert e.value.code == "import.faults"
    found = ops.faults(batch.id)
    faulty_features = {f.feature_id for f in found if f.feature_id}
    faulty_records = {f.record_id for f in found if f.record_id}
    # one fault per known error, each on its own feature or row
    assert len(faulty_features) + len(faulty_records) == len(known_errors())
    result = ops.accept("bureau", batch, valid_part=True)
    staged = batch.counts["features"]
    nq = len(faulty_features)
    assert result["parcels"] == staged - nq and result["quarantined"] == nq
    statuses = dict(dbs.execute(text("SELECT status, count(*) FROM import_feature "
                                     "WHERE batch_id = :b GROUP BY status"), {"b": batch.id}).all())
    assert statuses == {"registered": staged - nq, "quarantined": nq}
    rec = dict(dbs.execute(text("SELECT status, count(*) FROM import_record "
                                "WHERE batch_id = :b GROUP BY status"), {"b": batch.id}).all())
    assert rec["quarantined"] == len(faulty_records)
    assert sum(rec.values()) == sum(batch.counts["tables"].values())

    # Registered parcels: CGCS2000 geometry, area in the survey zone equal to the delivered one.
    row = dbs.execute(text("""SELECT count(*), max(abs(p.scmj - (f.attrs->>'SCMJ')::numeric)),
                                     bool_and(ST_SRID(p.geom) = 4490), bool_and(p.survey_srid = 4547)
                              FROM parcel p JOIN import_feature f ON f.parcel_id = p.id
                              WHERE f.batch_id = :b AND f.layer = 'DK'"""), {"b": batch.id}).one()
    dk_staged = sum(n for name, n in batch.counts["layers"].items() if name.upper().startswith("DK"))
    dk_faulty = dbs.execute(text("SELECT count(*) FROM import_feature WHERE batch_id = :b "
                                 "AND layer = 'DK' AND status = 'quarantined'"),
                            {"b": batch.id}).scalar()
    assert dk_faulty == len([f for f in found if f.feature_id and f.feature.layer == "DK"])
    assert row[0] == dk_staged - dk_faulty and row[1] <= 0.01 and row[2] and row[3]
    hh = dbs.execute(text("SELECT household_code FROM parcel WHERE code = '1404041012010100322'"
                          )).scalar()
    assert hh == "140404101201010001"  # from CBDKXX

    q = fix_geometry_faults(batch, dbs)
    # A correction that is still wrong stays in quarantine with its fault.
    two = next(f for f in q.values() if f.layer == "ZJD")
    again = ops.correct_feature("bureau", two, attrs={"ZJRXM": "x"}, reason="no real change")
    assert again.status == "quarantined"
    assert {f.rule for f in again.faults} == {"two_homesteads"}

    # A member's ID number corrected: the person is registered.
    num = fix_id_numbers(batch, dbs, limit=1)[0]
    assert dbs.execute(text("SELECT count(*) FROM person WHERE id_number = :n"),
                       {"n": num}).scalar() == 1

    # Nothing lost: every delivered feature is registered, waiting, or replaced by a correction.
    left = dict(dbs.execute(text("""SELECT status, count(*) FROM import_feature
                                     WHERE batch_id = :b GROUP BY status"""),
                            {"b": batch.id}).all())
    still = len([f for f in found if f.rule == "two_homesteads"])  # not correctable by data
    fixed_ok = nq - still
    assert left == {"registered": staged - still, "quarantined": still,
                    "superseded": fixed_ok + 1}  # + the correction that was still wrong
    faults = dbs.scalars(select(ImportFault).where(ImportFault.batch_id == batch.id,
                                                   ImportFault.resolved_at.is_(None))).all()
    assert {f.rule for f in faults} == {"two_homesteads", "bad_id_checksum", "unknown_household",
                                        "missing_geometry"}


def test_registered_data_is_kept_whole(batch, dbs):
    ops.accept("bureau", batch, valid_part=True)
    p = dbs.scalar(select(Parcel).where(Parcel.code == "1404041012010100003"))
    f = dbs.scalar(select(ImportFeature).where(ImportFeature.parcel_id == p.id))
    assert p.attrs == f.attrs and p.attrs["ZJRXM"] == "韩华梅" and p.name == "沟底地"
    assert json.loads(json.dumps(p.attrs, ensure_ascii=False))["DKMC"] == "沟底地"


def test_a_second_import_of_the_same_delivery_is_refused_feature_by_feature(batch, dbs):
    ops.accept("bureau", batch, valid_part=True)
    again = ops.run("bureau", SAMPLE)
    rules = {f.rule for f in ops.faults(again.id)}
    assert "code_registered" in rules and "overlap_register" in rules


def fix_geometry_faults(batch, dbs) -> dict:
    """Correct the shifted parcel, the duplicate code and the bow-tie of the sample, each
    re-submitted and registered.  Returns the quarantined features found, by code."""
    q = {f.code: f for f in dbs.scalars(select(ImportFeature).where(
        ImportFeature.batch_id == batch.id, ImportFeature.status == "quarantined"))}
    # The shifted parcel, moved back 3 m west.
    shifted = q["1404041012020100659"]
    wkt = dbs.execute(text("SELECT ST_AsText(ST_Translate(geom, -3, 0)) FROM import_feature "
                           "WHERE id = :i"), {"i": shifted.id}).scalar()
    fixed = ops.correct_feature("bureau", shifted, wkt=wkt, reason="returned to its surveyed place")
    assert fixed.status == "registered"
    # The duplicate: recoded to the parcel it really is.
    dup = next(f for f in q.values() if f.code == "1404041012020100004")
    fixed = ops.correct_feature("bureau", dup, attrs={"DKBM": "1404041012020100664"}, reason="编码更正")
    assert fixed.status == "registered"
    p664 = dbs.scalar(select(Parcel).where(Parcel.code == "1404041012020100664"))
    assert p664.household_code == "140404101202010004"
    # The bow-tie, redrawn as a simple polygon.
    bow = q["1404041012010300333"]
    # Its ring was replaced by a bow-tie over its bounding box: redraw it as the gap its
    # registered neighbours leave in that box.
    wkt, area = dbs.execute(text("""
        WITH box AS (SELECT ST_Envelope(geom) AS g FROM import_feature WHERE id = :i),
             taken AS (SELECT ST_Union(ST_Transform(p.geom, 4547)) AS g FROM parcel p, box
                       WHERE p.end_lifespan IS NULL AND p.geom && ST_Transform(box.g, 4490)),
             gap AS (SELECT (ST_Dump(ST_Difference(box.g, taken.g))).geom AS g FROM box, taken)
        SELECT ST_AsText(g), ST_Area(g) FROM gap ORDER BY ST_Area(g) DESC LIMIT 1"""),
                            {"i": bow.id}).one()
    fixed = ops.correct_feature("bureau", bow, wkt=wkt, attrs={"SCMJ": round(area, 2)},
                                reason="redrawn from the gap between its neighbours")
    assert fixed.status == "registered", [(f.rule, f.detail) for f in fixed.faults]
    return q


def fix_id_numbers(batch, dbs, limit=None) -> list[str]:
    """Correct quarantined members' ID check digits, as read again from the household register."""
    from app.people.idnumber import check_digit

    fixed = []
    for bad in dbs.scalars(select(ImportRecord).where(
            ImportRecord.batch_id == batch.id, ImportRecord.tbl == "CBF_JTCY",
            ImportRecord.status == "quarantined").order_by(ImportRecord.id)).all()[:limit]:
        num = bad.attrs["CYZJHM"][:17]
        rec = ops.correct_record("bureau", bad, {"CYZJHM": num + check_digit(num)},
                                 reason="核对户口簿")
        assert rec.status == "registered"
        fixed.append(num + check_digit(num))
    return fixed
