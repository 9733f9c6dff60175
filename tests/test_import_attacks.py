"""Attacks on the survey import: deliveries and corrections nobody listed.  Each expectation
derives from what the test constructed."""
from __future__ import annotations

import random

import pytest
import shapely
from sqlalchemy import select, text
from sqlalchemy.orm.attributes import set_committed_value

from app.errors import DomainError
from app.imports import operations as ops
from app.imports.models import ImportFeature
from tests.delivery_factory import ZJD_FIELDS, clean, write_layer


def _status(dbs, batch, table):
    return dict(dbs.execute(text(f"SELECT status, count(*) FROM {table} WHERE batch_id = :b "
                                 "GROUP BY status"), {"b": batch.id}).all())


def _open(batch, feature_id=None):
    return sorted(f.rule for f in ops.faults(batch.id)
                  if feature_id is None or f.feature_id == feature_id)


def test_a_table_delivered_twice_is_refused_not_silently_halved(dbs, tmp_path):
    d = clean(9301, households=4)
    folder = d.write(tmp_path / "d")
    rows = (folder / "CBF_JTCY.csv").read_text(encoding="utf-8").splitlines()
    (folder / "CBF_JTCY.csv").write_text("\n".join(rows[:2]) + "\n", encoding="utf-8")
    (folder / "more").mkdir()  # the other members, in a second file of another case
    (folder / "more" / "cbf_jtcy.csv").write_text("\n".join([rows[0]] + rows[2:]) + "\n",
                                                  encoding="utf-8")
    before = dbs.execute(text("SELECT count(*) FROM import_batch")).scalar()
    with pytest.raises(DomainError) as e:
        ops.run("bureau", folder)
    assert e.value.code == "import.duplicate_table" and "CBF_JTCY" in str(e.value)
    assert dbs.execute(text("SELECT count(*) FROM import_batch")).scalar() == before


def test_layers_in_two_crs_are_checked_not_crashed(dbs, tmp_path):
    d = clean(9302, households=3)
    folder = d.write(tmp_path / "d")
    for p in folder.glob("ZJD_*.gpkg"):
        p.unlink()
    # the homesteads delivered with the zone prefix: EPSG:4526 (false easting 38 500 000)
    zjd = [[a, shapely.affinity.translate(g, 38_000_000)] for a, g in d.zjd]
    write_layer(folder / "ZJD_x.gpkg", "ZJD", 4526, zjd, ZJD_FIELDS)
    batch = ops.run("bureau", folder)
    assert _open(batch) == []
    ops.accept("bureau", batch)
    assert _status(dbs, batch, "import_feature") == {"registered": len(d.dk) + len(d.zjd)}


def _quarantined_parcel(dbs, tmp_path, seed, null_shape=False):
    d = clean(seed, households=2)
    if null_shape:
        d.dk[0][1] = None
    else:
        d.dk[0][0]["SCMJ"] = d.dk[0][0]["SCMJ"] + 50  # an area fault: the geometry stays
    batch = ops.run("bureau", d.write(tmp_path / "d"))
    ops.accept("bureau", batch, valid_part=True)
    f = dbs.scalar(select(ImportFeature).where(ImportFeature.batch_id == batch.id,
                                               ImportFeature.status == "quarantined"))
    return d, batch, f


def _fits(d, g):
    """`g` moved into an empty spot of the delivery's square kilometre (no neighbour)."""
    x0, y0 = d.dk[1][1].bounds[:2]
    return shapely.affinity.translate(g, x0 + 500, y0 + 400)


def test_a_parcel_delivered_without_shape_can_be_given_one(dbs, tmp_path):
    d, batch, f = _quarantined_parcel(dbs, tmp_path, 9303, null_shape=True)
    g = _fits(d, shapely.box(0, 0, 30, 40))
    fixed = ops.correct_feature("bureau", f, attrs={"SCMJ": 1200.0}, wkt=g.wkt, reason="补测")
    assert fixed.status == "registered", _open(batch)
    area = dbs.execute(text("SELECT ST_Area(ST_Transform(p.geom, 4547)) FROM parcel p "
                            "JOIN import_feature f ON f.parcel_id = p.id WHERE f.id = :i"),
                       {"i": fixed.id}).scalar()
    assert area == pytest.approx(1200.0, abs=0.5)


@pytest.mark.parametrize("wkt", ["POLYGON((1 2, 3 4", "{}", "", "SRID=4326;POINT(1 2)",
                                 "POLYGON((0 0, 1 0, 1 1, 0 1))", "SRID=x;POINT(1 2)",
                                 "CURVEPOLYGON(CIRCULARSTRING(0 0, 1 1, 2 0, 1 -1, 0 0))"])
def test_a_correction_that_is_not_wkt_of_the_layer_is_refused_plainly(dbs, tmp_path, wkt):
    d, batch, f = _quarantined_parcel(dbs, tmp_path, 9304)
    with pytest.raises(DomainError) as e:
        ops.correct_feature("bureau", f, wkt=wkt or " ", reason="x")
    assert e.value.code == "import.bad_wkt" and "psycopg" not in str(e.value)
    dbs.refresh(f)
    assert f.status == "quarantined"


def test_a_correction_with_z_is_taken_in_2d(dbs, tmp_path):
    d, batch, f = _quarantined_parcel(dbs, tmp_path, 9305)
    g = _fits(d, shapely.force_3d(shapely.box(0, 0, 30, 40), 931.0))
    fixed = ops.correct_feature("bureau", f, attrs={"SCMJ": 1200.0}, wkt=g.wkt, reason="x")
    assert fixed.status == "registered", _open(batch)


@pytest.mark.parametrize("case", ["degrees", "vertices", "too_large", "overlap", "long_code"])
def test_a_garbage_correction_waits_with_the_fault_it_has(dbs, tmp_path, app, case):
    d, batch, f = _quarantined_parcel(dbs, tmp_path, 9306)
    attrs, expect = {}, None
    saved = app.config.get("IMPORT_MAX_VERTICES")
    if case == "degrees":  # typed in CGCS2000 degrees, the layer is EPSG:4547
        g, expect = shapely.box(113.0, 36.0, 115.0, 38.0), "extreme_coordinates"
    elif case == "vertices":
        app.config["IMPORT_MAX_VERTICES"] = 50
        g, expect = _fits(d, shapely.Point(0, 0).buffer(15, quad_segs=64)), "too_many_vertices"
    elif case == "too_large":
        g, expect = _fits(d, shapely.box(0, 0, 30_000, 40)), "geometry_too_large"
    elif case == "overlap":  # exactly its neighbour
        g, expect = d.dk[1][1], "overlap_register"
        attrs = {"SCMJ": d.dk[1][0]["SCMJ"]}
    else:
        g, expect = shapely.box(*d.dk[0][1].bounds), "bad_code"
        attrs = {"DKBM": "1" * 60}
    try:
        fixed = ops.correct_feature("bureau", f, attrs=attrs, wkt=g.wkt, reason="x")
    finally:
        app.config["IMPORT_MAX_VERTICES"] = saved
    assert fixed.status == "quarantined"
    assert expect in _open(batch, fixed.id)
    assert dbs.execute(text("SELECT count(*) FROM import_feature WHERE batch_id = :b AND "
                            "parcel_id IS NOT NULL AND status <> 'registered'"),
                       {"b": batch.id}).scalar() == 0


def test_a_correction_cannot_move_a_parcel_into_another_district(dbs, tmp_path):
    from app.auth.models import User

    bureau = dbs.scalar(select(User).where(User.username == "bureau"))
    d, batch, f = _quarantined_parcel(dbs, tmp_path, 9307)
    foreign = "140406" + f.code[6:]
    with pytest.raises(DomainError) as e:
        ops.correct_feature(bureau, f, attrs={"DKBM": foreign}, reason="x")
    assert e.value.code == "import.correction_out_of_jurisdiction"
    fullwidth = foreign.translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    with pytest.raises(DomainError):
        ops.correct_feature(bureau, f, attrs={"DKBM": fullwidth}, reason="x")


def test_the_second_of_two_people_correcting_the_same_fault_is_refused(dbs, tmp_path):
    d, batch, f = _quarantined_parcel(dbs, tmp_path, 9308)
    fixed = ops.correct_feature("bureau", f, attrs={"SCMJ": d.dk[0][0]["SCMJ"] - 50}, reason="a")
    assert fixed.status == "registered"
    set_committed_value(f, "status", "quarantined")  # what the second person's page loaded
    with pytest.raises(DomainError) as e:
        ops.correct_feature("bureau", f, attrs={"SCMJ": d.dk[0][0]["SCMJ"] - 50}, reason="b")
    assert e.value.code == "import.not_quarantined"
    assert dbs.execute(text("SELECT count(*) FROM import_feature WHERE corrected_from_id = :i"),
                       {"i": f.id}).scalar() == 1


def _mutations(rng: random.Random, good: str) -> str:
    kind = rng.randrange(7)
    if kind == 0:
        return good[: rng.randrange(len(good))]
    if kind == 1:
        i = rng.randrange(len(good))
        return good[:i] + rng.choice(["(", ")", ",", " ", "e", "-", "nan", "1e308", ";"]) + good[i:]
    if kind == 2:
        return good.replace(" ", "  ").replace(",", rng.choice([",", ", ", " ,"]))
    if kind == 3:
        return rng.choice(["POINT(1 2)", "LINESTRING(0 0, 1 1)", "POLYGON EMPTY",
                           "GEOMETRYCOLLECTION(POINT(0 0))", "MULTIPOLYGON EMPTY", "null",
                           "[1,2]", "POLYGON((nan 0, 1 0, 1 1, nan 0))"])
    if kind == 4:
        return good.replace("POLYGON", rng.choice(["polygon", "POLYGON Z", "POLYGON M",
                                                   "CURVEPOLYGON"]))
    if kind == 5:
        return "SRID=" + rng.choice(["4547", "4326", "0", "-1", "99999999999"]) + ";" + good
    return "".join(rng.choice("POLYGN()0123456789., -") for _ in range(rng.randrange(1, 60)))


def assert_fuzzed_corrections_handled(dbs, tmp_path, seed, n):
    d, batch, f = _quarantined_parcel(dbs, tmp_path, seed)
    good = shapely.box(*d.dk[0][1].bounds).wkt
    rng = random.Random(seed)
    for _ in range(n):
        wkt = _mutations(rng, good)
        sp = dbs.begin_nested()
        try:
            fixed = ops.correct_feature("bureau", f, wkt=wkt, reason="fuzz")
        except DomainError as e:
            assert e.code == "import.bad_wkt", (wkt, e)
        else:
            assert fixed.status in ("quarantined", "registered"), wkt
            if fixed.status == "registered":  # only what the reader would have taken
                g = shapely.from_wkt(wkt.split(";")[-1])
                assert shapely.get_num_coordinates(g) >= 4 and g.area >= 1, wkt
        finally:
            sp.rollback()
        dbs.refresh(f)


def test_seeded_garbage_corrections_never_crash(dbs, tmp_path):
    assert_fuzzed_corrections_handled(dbs, tmp_path, 9309, 25)


@pytest.mark.deep
def test_seeded_garbage_corrections_never_crash_deep(dbs, tmp_path):
    assert_fuzzed_corrections_handled(dbs, tmp_path, 9310, 400)


def test_the_correction_page_answers_garbage_without_database_text(dbs, tmp_path, login_as):
    import json

    from tests.conftest import csrf_from

    d, batch, f = _quarantined_parcel(dbs, tmp_path, 9311)
    c = login_as("bureau")
    url = f"/imports/features/{f.id}/correct"
    for wkt, attrs in (("POLYGON((1 2, 3 4", json.dumps(f.attrs)), ("", "[1, 2]"),
                       ("", '"text"'), ("", "{"), ("", "[" * 100_000), ("", '{"SCMJ": 1e999}'),
                       ("", '{"SCMJ": NaN}'), ("", '{"DKMC": "a\\u0000b"}'),
                       ("", '{"DKMC": {"a": 1}}'), ("", '{"SCMJ": 99999999999999999999999}')):
        form = c.get(url).get_data(as_text=True)
        r = c.post(url, data={"csrf_token": csrf_from(form), "attrs": attrs, "wkt": wkt,
                              "reason": "x"})
        body = r.get_data(as_text=True)
        assert r.status_code == 200, (wkt, attrs, r.status_code)
        assert "psycopg" not in body and "Traceback" not in body and "SELECT" not in body
        assert "JSON" in body or "WKT" in body or "geometry" in body, (wkt, attrs[:40])
    dbs.refresh(f)
    assert f.status == "quarantined"


def _as_shapefile(folder, name, srid, feats, fields, encoding="GBK"):
    import numpy as np
    import pyogrio

    pyogrio.raw.write(str(folder / f"{name}.shp"),
                      np.array([shapely.to_wkb(g) for _, g in feats], dtype=object),
                      field_data=[np.array([str(a.get(f) or "") for a, _ in feats], dtype=object)
                                  for f in fields],
                      fields=fields, crs=f"EPSG:{srid}", geometry_type="Polygon",
                      driver="ESRI Shapefile", encoding=encoding)


def test_a_shapefile_with_the_dbf_of_another_file_is_refused_not_shortened(dbs, tmp_path):
    from tests.delivery_factory import DK_FIELDS

    d = clean(9312, households=3)
    folder = d.write(tmp_path / "d")
    for p in folder.glob("DK_*.gpkg"):
        p.unlink()
    _as_shapefile(folder, "DK", d.srid, d.dk, DK_FIELDS)
    _as_shapefile(tmp_path, "DK_old", d.srid, d.dk[:2], DK_FIELDS)  # an older, shorter export
    (folder / "DK.dbf").write_bytes((tmp_path / "DK_old.dbf").read_bytes())
    with pytest.raises(DomainError) as e:
        ops.run("bureau", folder)
    assert e.value.code == "import.unsafe_file"
    assert f"{len(d.dk)} shapes" in str(e.value) and "2 records" in str(e.value)
    # the whole Shapefile, as exported, still reads
    (folder / "DK.dbf").unlink()
    _as_shapefile(folder, "DK", d.srid, d.dk, DK_FIELDS)
    batch = ops.run("bureau", folder)
    assert batch.counts["features"] == len(d.dk) + len(d.zjd)


def _in_district(d, old: str):
    """The same delivery with the codes of district `old` (IDs keep their birth region)."""
    def fix(v):
        return old + v[6:] if isinstance(v, str) and v.startswith("140404") else v

    for rows in d.tables.values():
        for r in rows:
            for k in r:
                if k.endswith("BM"):
                    r[k] = fix(r[k])
    for a, _ in d.dk + d.zjd:
        for k in ("DKBM", "BDCDYH", "FBFBM", "CBFBM"):
            if k in a:
                a[k] = old + a[k][6:]
    return d


def test_a_pre_2018_delivery_goes_to_the_district_that_succeeded_it(dbs, tmp_path, login_as):
    from app.auth.models import User

    bureau = dbs.scalar(select(User).where(User.username == "bureau"))
    assert bureau.jurisdiction_code == "140404"
    d = _in_district(clean(9313, households=2), "140421")  # 长治县, since 2018 上党区
    batch = ops.run(bureau, d.write(tmp_path / "a"))
    assert batch.counts["features"] == len(d.dk) + len(d.zjd)
    assert "import.out_of_jurisdiction" not in _open(batch)
    r = login_as("bureau").get(f"/imports/{batch.id}")
    assert r.status_code == 200
    other = _in_district(clean(9314, households=2), "140481")  # 潞城市, since 2018 潞城区
    with pytest.raises(DomainError) as e:
        ops.run(bureau, other.write(tmp_path / "b"))
    assert e.value.code == "import.out_of_jurisdiction" and "140481" in str(e.value)


@pytest.mark.parametrize("extra", ["nested.zip", "CBF.xlsx", "cbf.dbf", "权属.rar"])
def test_what_the_importer_cannot_read_is_refused_not_ignored(dbs, tmp_path, extra):
    import zipfile

    d = clean(9315, households=2)
    folder = d.write(tmp_path / "d")
    if extra.endswith(".zip"):  # a second village packed inside the first
        other = clean(9316, households=2).write(tmp_path / "o")
        with zipfile.ZipFile(folder / extra, "w") as z:
            for p in other.iterdir():
                z.write(p, p.name)
    else:
        (folder / extra).write_bytes(b"\x00" * 64)
    with pytest.raises(DomainError) as e:
        ops.run("bureau", folder)
    assert e.value.code == "import.unsafe_file" and extra in str(e.value)


@pytest.mark.parametrize("written,cpg", [("UTF-8", "GBK"), ("GBK", "UTF-8")])
def test_a_cpg_lying_about_the_encoding_is_refused_not_garbled(dbs, tmp_path, written, cpg):
    from tests.delivery_factory import DK_FIELDS

    d = clean(9317, households=2)
    folder = d.write(tmp_path / "d")
    for p in folder.glob("DK_*.gpkg"):
        p.unlink()
    _as_shapefile(folder, "DK", d.srid, d.dk, DK_FIELDS, encoding=written)
    (folder / "DK.cpg").write_text(cpg)
    with pytest.raises(DomainError) as e:
        ops.run("bureau", folder)
    assert e.value.code == "import.encoding_mismatch" and cpg in str(e.value)
    batch = ops.run("bureau", folder, encoding=written)  # declared right, it reads
    names = dbs.execute(text("SELECT attrs->>'ZJRXM' FROM import_feature WHERE batch_id = :b "
                             "AND layer = 'DK' ORDER BY fid"), {"b": batch.id}).scalars().all()
    assert names == [a["ZJRXM"] for a, _ in d.dk]


def test_a_batch_accepted_twice_at_once_is_registered_once(dbs, tmp_path):
    d = clean(9318, households=2)
    batch = ops.run("bureau", d.write(tmp_path / "d"))
    ops.accept("bureau", batch)
    set_committed_value(batch, "status", "validated")  # the second person's page
    with pytest.raises(DomainError) as e:
        ops.accept("bureau", batch)
    assert e.value.code == "import.state"
    assert dbs.execute(text("SELECT count(*) FROM parcel WHERE code = :c"),
                       {"c": d.dk[0][0]["DKBM"]}).scalar() == 1


def test_a_parcel_inside_another_ones_hole_is_no_overlap(dbs, tmp_path):
    d = clean(9319, households=2)
    x0, y0 = d.dk[0][1].bounds[:2]
    ring = shapely.Polygon(shapely.box(x0 + 300, y0 + 300, x0 + 400, y0 + 400).exterior.coords,
                           [shapely.box(x0 + 330, y0 + 330, x0 + 370, y0 + 370).exterior.coords])
    island = shapely.box(x0 + 330, y0 + 330, x0 + 370, y0 + 370)  # exactly fills the hole
    d.dk[0][1], d.dk[1][1] = ring, island
    d.dk[0][0]["SCMJ"], d.dk[1][0]["SCMJ"] = round(ring.area, 2), round(island.area, 2)
    for r in d.tables["CBDKXX"]:
        if r["DKBM"] in (d.dk[0][0]["DKBM"], d.dk[1][0]["DKBM"]):
            r["HTMJ"] = r["YHTMJ"] = round(ring.area if r["DKBM"] == d.dk[0][0]["DKBM"]
                                           else island.area, 2)
    batch = ops.run("bureau", d.write(tmp_path / "d"))
    assert "overlap" not in _open(batch)


def test_slivers_either_side_of_the_tolerance_seeded(dbs, tmp_path):
    """Neighbours overlapping by a random fraction of the tolerance (1 m²): a fault exactly
    when the overlap is above it."""
    rng = random.Random(9320)
    d = clean(9320, households=4, parcels_per_household=2)
    expected = set()
    # parcels k and k+1 of the first grid row are 60 m apart: pull k+1 left onto k
    for k in range(0, 8, 2):
        a, b = d.dk[k], d.dk[k + 1]
        ax1 = a[1].bounds[2]
        h = min(a[1].bounds[3], b[1].bounds[3]) - max(a[1].bounds[1], b[1].bounds[1])
        area = rng.choice([rng.uniform(0.5, 0.97), rng.uniform(1.03, 1.6)])
        dx = (ax1 - area / h) - b[1].bounds[0]
        b[1] = shapely.affinity.translate(b[1], dx, 0)
        if area > 1.0:
            expected.add(k)
    batch = ops.run("bureau", d.write(tmp_path / "d"))
    hit = {f.code for f in ops.faults(batch.id) if f.rule == "overlap"}
    for k in range(0, 8, 2):
        pair = {d.dk[k][0]["DKBM"], d.dk[k + 1][0]["DKBM"]}
        assert bool(pair & hit) == (k in expected), (k, pair & hit)


@pytest.mark.parametrize("first,second", [("成果/FBF.csv", "成果/FBF.csv"),
                                          ("成果/DK.shp", "成果/dk.SHP"),
                                          ("e\u0301/CBF.csv", "\u00e9/CBF.csv")])
def test_members_one_folder_cannot_tell_apart_are_refused_by_name(app, dbs, tmp_path, first,
                                                                  second):
    import io
    import warnings
    import zipfile

    from app.imports import uploads

    target = tmp_path / "u" / "twice.zip"
    target.parent.mkdir()
    buf = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(buf, "w") as z:
        warnings.simplefilter("ignore")  # zipfile warns of the duplicate name
        z.writestr(first, b"a")
        z.writestr(second, b"b")
    target.write_bytes(buf.getvalue())
    with pytest.raises(DomainError) as e:
        uploads.prepare(target)
    assert e.value.code == "import.zip_name" and "also holds" in e.value.message("en")
    assert sorted(p.name for p in target.parent.iterdir()) == ["twice.zip"]


def test_a_member_claiming_4_gb_is_refused_before_extraction(app, dbs, tmp_path):
    import io
    import zipfile

    from app.imports import uploads

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        z.writestr("DK_a.geojson", b"{}")
    raw = bytearray(buf.getvalue())
    cd = raw.rindex(b"PK\x01\x02")  # the central directory's uncompressed size: 4 GB − 1
    raw[cd + 24:cd + 28] = (2 ** 32 - 1).to_bytes(4, "little")
    target = tmp_path / "s" / "sparse.zip"
    target.parent.mkdir()
    target.write_bytes(bytes(raw))
    with pytest.raises(DomainError) as e:
        uploads.prepare(target)
    assert e.value.code in ("import.zip_size", "import.zip_ratio")
    assert sorted(p.name for p in target.parent.iterdir()) == ["sparse.zip"]


@pytest.mark.parametrize("where", ["CBDKXX", "fullwidth"])
def test_a_row_of_another_district_is_not_staged(dbs, tmp_path, where):
    from app.auth.models import User

    bureau = dbs.scalar(select(User).where(User.username == "bureau"))
    d = clean(9321, households=2)
    foreign = "140406" + d.dk[0][0]["DKBM"][6:]
    if where == "CBDKXX":  # another district's parcel listed for a household of ours
        d.tables["CBDKXX"].append(dict(d.tables["CBDKXX"][0], DKBM=foreign))
    else:  # the same, in full-width digits on the map layer
        d.dk[0][0]["DKBM"] = foreign.translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    before = dbs.execute(text("SELECT count(*) FROM import_batch")).scalar()
    with pytest.raises(DomainError) as e:
        ops.run(bureau, d.write(tmp_path / "d"))
    assert e.value.code == "import.out_of_jurisdiction" and "140406" in str(e.value)
    assert dbs.execute(text("SELECT count(*) FROM import_batch")).scalar() == before


def test_a_parcel_delivered_twice_identically_quarantines_only_the_copy(dbs, tmp_path):
    d = clean(9322, households=2)
    d.dk.append([dict(d.dk[0][0]), d.dk[0][1]])  # the same feature, twice
    batch = ops.run("bureau", d.write(tmp_path / "d"))
    assert _open(batch) == ["duplicate_parcel_code"]
    ops.accept("bureau", batch, valid_part=True)
    assert _status(dbs, batch, "import_feature") == {"registered": len(d.dk) - 1 + len(d.zjd),
                                                     "quarantined": 1}
