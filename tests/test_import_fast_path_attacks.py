"""Attacks on the import's fast paths (issue 18, 0034_import_speed): whole deliveries with
generated damage to dates, ID numbers and table headers, validated twice — once as the app
does (inline fast paths, csv.reader) and once with every fast path turned off (the exact
functions import_date() and gb11643_fault(), csv.DictReader) — must give the same faults, with
the same text, at the same place.  Nothing lost, no crash."""
from __future__ import annotations

import csv
import io
import random

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError

from app.errors import DomainError
from app.imports import operations as ops
from app.imports import validation as v
from app.parcels import operations as parcels
from gis import io as gio
from tests.delivery_factory import check_char, clean
from tests.test_parcels import _remove_winner

# Dates no fast path should decide by itself, and the ones it should.
NASTY_DATES = ["2023-02-30", "2023-02-29", "2024-02-29", "1900-02-29", "2000-02-29",
               "0000-01-01", "20230230", "20230228", "２０２０-01-01", "2020-01-01 ",
               " 2020-01-01", "2020/1/1", "2020.01.31", "2020-04-31", "2020-13-01",
               "1879-12-31", "1880-01-01", "2999-12-31", "2020-0101", "2020--01-01",
               "2020-01-01\n", "", " ", "２０２０0101", "2020-01-01T00:00", "19991231"]


def _id_variants(rng: random.Random, good: str) -> str:
    body = good[:17]
    pick = rng.randrange(11)
    if pick == 0:  # lowercase x as check character
        b = body
        for _ in range(200):
            b = good[:14] + f"{rng.randint(0, 999):03d}"
            if check_char(b) == "X":
                return b + "x"
        return good.lower()
    if pick == 1:  # a 15-digit number of the old form (birth year in two digits)
        return good[:6] + good[8:14] + good[14:17]
    if pick == 2:
        return " " + good
    if pick == 3:
        return good + " "
    if pick == 4:  # full-width digits
        return "".join(chr(ord(c) + 0xFEE0) if c.isdigit() else c for c in good)
    if pick == 5:  # 29 February in a non-leap year, check character made right
        b = good[:6] + "19990229" + good[14:17]
        return b + check_char(b)
    if pick == 6:
        b = good[:6] + "20230230" + good[14:17]
        return b + check_char(b)
    if pick == 7:
        b = good[:6] + "00000101" + good[14:17]
        return b + check_char(b)
    if pick == 8:  # a wrong check character
        return body + ("0" if good[17] != "0" else "1")
    if pick == 9:
        b = "000000" + good[6:17]
        return b + check_char(b)
    return good


def _damaged(seed: int, village: int):
    rng = random.Random(seed)
    d = clean(seed, households=8, village=village)
    for m in d.tables["CBF_JTCY"]:
        m["CYZJHM"] = _id_variants(rng, m["CYZJHM"])
        r = rng.random()
        if r < 0.5:
            m["CSRQ"] = rng.choice(NASTY_DATES)
        elif r < 0.7:  # a real date that disagrees with the ID's
            m["CSRQ"] = "1985-06-15"
    for h in d.tables["CBHT"]:
        if rng.random() < 0.6:
            h["CBQXQ"] = rng.choice(NASTY_DATES)
        if rng.random() < 0.6:
            h["CBQXZ"] = rng.choice(NASTY_DATES + ["2098-12-31", "1998-12-31"])
    for f in d.tables["FBF"]:
        f["FBFDCRQ"] = rng.choice(NASTY_DATES)
    for c in d.tables["CBF"]:
        if rng.random() < 0.5:
            c["CBFDCRQ"] = rng.choice(NASTY_DATES)
    return d


def _faults(dbs, batch, fb: str) -> list[tuple]:
    """(rule, where, code, detail) with the village's code written as F (its first twelve
    digits, in a homestead's unit number, as V), sorted."""
    rows = dbs.execute(text("""
        SELECT f.rule, coalesce(r.tbl || ':' || r.rownum, ft.layer || ':' || ft.fid, '-'),
               coalesce(f.code, ''), f.detail
        FROM import_fault f
        LEFT JOIN import_record r ON r.id = f.record_id
        LEFT JOIN import_feature ft ON ft.id = f.feature_id
        WHERE f.batch_id = :b"""), {"b": batch.id}).all()
    return sorted(tuple(str(x).replace(fb, "F").replace(fb[:12], "V") for x in row)
                  for row in rows)


def _exact_only(monkeypatch):
    monkeypatch.setattr(v, "date_sql", lambda x: f"import_date({x})")
    monkeypatch.setattr(v, "sure_date_sql", lambda x, past: "(false)")
    monkeypatch.setattr(v, "id_fault_sql", lambda n: f"gb11643_fault({n}, current_date)")


def _fb(d) -> str:
    return d.tables["FBF"][0]["FBFBM"]


@pytest.mark.parametrize("seed", [7101, 7102, 7103])
def test_fast_and_exact_paths_report_the_same_faults_at_the_same_places(dbs, tmp_path,
                                                                        monkeypatch, seed):
    a, b = _damaged(seed, 7101 + seed % 97), _damaged(seed, 7301 + seed % 97)
    fast = ops.run("bureau", a.write(tmp_path / "fast"))
    with monkeypatch.context() as m:
        _exact_only(m)
        exact = ops.run("bureau", b.write(tmp_path / "exact"))
    got, want = _faults(dbs, fast, _fb(a)), _faults(dbs, exact, _fb(b))
    assert got == want
    # the damage was seen: date and ID faults among them
    rules = {r[0] for r in want}
    assert len(want) >= len(a.tables["CBF_JTCY"]) // 3, rules


def test_a_birth_date_is_compared_with_the_trimmed_id_number(dbs, tmp_path):
    """An ID number with a space before it is a valid number (it is trimmed for its own
    check); its birth date must be read from the trimmed number too, else a CSRQ that
    disagrees with it goes unreported (the digits read are shifted by one)."""
    d = clean(7201, households=2, village=7201)
    m = d.tables["CBF_JTCY"][0]
    m["CYZJHM"] = " " + m["CYZJHM"]
    m["CSRQ"] = "1985-06-15" if m["CYZJHM"][7:15] != "19850615" else "1986-06-15"
    batch = ops.run("bureau", d.write(tmp_path / "d"))
    rules = [f[0] for f in _faults(dbs, batch, _fb(d)) if f[1] == "CBF_JTCY:1"]
    assert "inconsistent_birth_date" in rules, rules


def _dict_reader_rows(txt: str) -> list[dict]:
    """DictReader's rows, the header named as the standard spells it (gis.io._header: stripped,
    upper case, a name given twice kept apart) — the reader must give exactly these."""
    first = next(csv.reader(io.StringIO(txt, newline="")), None)
    if first is None:
        return []
    names = gio._header(first)[0]
    reader = csv.DictReader(io.StringIO(txt, newline=""), fieldnames=names, restkey="_extra")
    if first:
        next(reader, None)  # the header line itself (a blank one DictReader skips alone)
    return [dict(r) for r in reader]


@pytest.mark.parametrize("header", [
    "\ufeffCBFBM,CYXM", "\ufeff\ufeffCBFBM,CYXM", "CBFBM,CBFBM", "cbfbm,CYXM", "CBFBM ,CYXM",
    '"CBF\nBM",CYXM', "CBFBM,,CYXM", "CBFBM,\u3000CYXM", "CBFBM,CYXM,_extra", ",", ""])
def test_table_headers_read_alike_both_ways(tmp_path, header):
    rng = random.Random(hash(header) & 0xFFFF)
    cells = ["a", '"x,y"', "", '"l1\nl2"', '"q""r"', " e ", "甲", "\u3000"]
    for _ in range(200):
        body = "\n".join(",".join(rng.choice(cells) for _ in range(rng.randint(0, 4)))
                         for _ in range(rng.randint(0, 4)))
        txt = header + "\n" + body
        p = tmp_path / "t.csv"
        p.write_bytes(("\ufeff" if rng.random() < 0.5 else "").encode() + txt.encode())
        got = gio.read_table(p)
        want = _dict_reader_rows(p.read_bytes().decode("utf-8-sig"))
        assert got == want, txt


# --- parcel_guard's relate prefilter (0034): the area only where the interiors meet ----------

GX, GY = 716000, 4006000  # EPSG:4547, away from the seeded villages and the other tests


def _col(dbs):
    return dbs.execute(text("SELECT id, fbfbm FROM collective ORDER BY id LIMIT 1")).one()


def _tolerance(dbs) -> float:
    return float(dbs.execute(text("SELECT coalesce((SELECT value::float8 FROM registry_setting "
                                  "WHERE key = 'overlap_tolerance_m2'), 1.0)")).scalar())


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_a_sliver_along_a_shared_edge_either_side_of_the_tolerance(dbs, seed):
    """A neighbour pushed into a registered field by a thin strip along their shared edge:
    refused just above the tolerance, registered just below it."""
    col, tol = _col(dbs), _tolerance(dbs)
    rng = random.Random(seed)
    x = GX + seed * 500
    length = rng.uniform(30, 80)
    parcels.register("bureau", "contract", f"{col.fbfbm}8{seed}000", col.id,
                     f"POLYGON(({x} {GY},{x + 40} {GY},{x + 40} {GY + length},{x} {GY + length},"
                     f"{x} {GY}))", 4547, "测试")
    for k, factor in enumerate((1.3, 0.7)):
        width = tol * factor / length  # the strip's area: width × length
        right = x + 40 - width
        wkt = (f"POLYGON(({right} {GY},{right + 30} {GY},{right + 30} {GY + length},"
               f"{right} {GY + length},{right} {GY}))")
        code = f"{col.fbfbm}8{seed}00{k + 1}"
        if factor > 1:
            with pytest.raises(DomainError) as e:
                parcels.register("bureau", "contract", code, col.id, wkt, 4547, "测试")
            assert e.value.code == "parcel.overlap"
        else:
            assert parcels.register("bureau", "contract", code, col.id, wkt, 4547,
                                    "测试").code == code


def test_a_multipolygon_with_one_overlapping_part_is_refused(dbs):
    col = _col(dbs)
    x, y = GX + 4000, GY
    dbs.execute(text("""INSERT INTO parcel (kind, code, collective_id, scmj, scmjm, survey_srid,
        geom) SELECT 'contract', :c, :col, 100, 0.15, 4547,
        ST_Multi(ST_Transform(ST_GeomFromText(:w, 4547), 4490))"""),
                {"c": f"{col.fbfbm}87000", "col": col.id,
                 "w": f"POLYGON(({x} {y},{x + 20} {y},{x + 20} {y + 20},{x} {y + 20},{x} {y}))"})
    multi = (f"MULTIPOLYGON((({x + 200} {y},{x + 220} {y},{x + 220} {y + 20},{x + 200} {y + 20},"
             f"{x + 200} {y})),(({x + 15} {y + 5},{x + 40} {y + 5},{x + 40} {y + 15},"
             f"{x + 15} {y + 15},{x + 15} {y + 5})))")
    with pytest.raises(DBAPIError, match="parcel.overlap"):
        with dbs.begin_nested():
            dbs.execute(text("""INSERT INTO parcel (kind, code, collective_id, scmj, scmjm,
                survey_srid, geom) SELECT 'contract', :c, :col, 100, 0.15, 4547,
                ST_Transform(ST_GeomFromText(:w, 4547), 4490)"""),
                        {"c": f"{col.fbfbm}87001", "col": col.id, "w": multi})


@pytest.mark.parametrize("isolation", ["REPEATABLE READ", "SERIALIZABLE"])
def test_two_connections_an_older_snapshot_cannot_miss_a_registered_neighbour(app, isolation):
    """Two connections, no timing: A's transaction takes its snapshot, B registers a parcel
    and commits, then A registers one overlapping it.  Under READ COMMITTED the guard's query
    (after the cell locks) sees B's parcel; under an older snapshot it would not, and both
    overlapping parcels would be registered.  The guard must refuse A either way."""
    engine = create_engine(app.config["SQLALCHEMY_DATABASE_URI"])
    with engine.connect() as c:
        col = c.execute(text("SELECT id, fbfbm FROM collective ORDER BY id LIMIT 1")).one()
    x = GX + 6000 + (100 if isolation == "SERIALIZABLE" else 0)
    codes = [f"{col.fbfbm}86{k}{len(isolation):02d}" for k in (1, 2)]
    insert = text("""INSERT INTO parcel (kind, code, collective_id, scmj, scmjm, survey_srid,
        geom) SELECT 'contract', :code, :col, 400, 0.6, 4547,
        ST_Multi(ST_Transform(ST_GeomFromText(:w, 4547), 4490))""")
    a_result = "ok"
    try:
        with engine.connect() as a, engine.connect() as b:
            ta = a.begin()
            a.execute(text(f"SET TRANSACTION ISOLATION LEVEL {isolation}"))
            a.execute(text("SELECT count(*) FROM parcel"))  # A's snapshot
            with b.begin():
                b.execute(insert, {"code": codes[0], "col": col.id,
                                   "w": f"POLYGON(({x} {GY},{x + 20} {GY},{x + 20} {GY + 20},"
                                        f"{x} {GY + 20},{x} {GY}))"})
            try:
                a.execute(insert, {"code": codes[1], "col": col.id,
                                   "w": f"POLYGON(({x + 5} {GY},{x + 25} {GY},{x + 25} "
                                        f"{GY + 20},{x + 5} {GY + 20},{x + 5} {GY}))"})
                ta.commit()
            except DBAPIError as e:
                ta.rollback()
                a_result = str(e.orig).split("\n")[0]
        with engine.connect() as c:
            n = c.scalar(text("SELECT count(*) FROM parcel WHERE code = ANY(:c)"),
                         {"c": codes})
        assert n == 1 and a_result != "ok", a_result
    finally:
        _remove_winner(app, engine, codes)


def test_the_bulk_bypass_cannot_register_an_overlap_unchecked(dbs):
    """parcel_guard skipped its per-row check when sanquan.bulk_checked was on and the
    statement held a SHARE ROW EXCLUSIVE lock on parcel (the import checked the batch
    set-wise).  Both are within the app role's rights; since 0041_bulk the skip is honoured
    only inside parcel_register_staged(), a function of the owner that checks its rows
    set-wise."""
    with dbs.begin_nested():
        dbs.execute(text("LOCK TABLE parcel IN SHARE ROW EXCLUSIVE MODE"))
        dbs.execute(text("SET LOCAL sanquan.bulk_checked = 'on'"))
        _refused(dbs)
        n = dbs.execute(text("""SELECT count(*) FROM parcel a JOIN parcel b ON a.id < b.id
            AND a.end_lifespan IS NULL AND b.end_lifespan IS NULL AND a.geom && b.geom
            AND ST_Equals(a.geom, b.geom)""")).scalar()
    assert n == 0


def _refused(dbs) -> None:
    try:
        with dbs.begin_nested():
            dbs.execute(text("""INSERT INTO parcel (kind, code, collective_id, scmj, scmjm,
                survey_srid, geom) SELECT 'contract', left(code, 14) || '99999', collective_id,
                scmj, scmjm, survey_srid, geom FROM parcel WHERE end_lifespan IS NULL
                ORDER BY id LIMIT 1"""))
    except DBAPIError:
        pass


# --- parcel_register_staged (0041_bulk): the only bulk path, checked on what it inserted -------

def _stage(dbs, col, polygons: dict[str, str], tolerance: float = 1.0) -> int:
    """A batch whose DK features (code → WKT in EPSG:4547) are staged as 'valid' directly —
    as any session of the app role can write them, validated or not."""
    b = dbs.execute(text("""INSERT INTO import_batch (source, srid, tolerance_m2, created_by)
        VALUES ('attack', 4547, :t, 'attacker') RETURNING id"""), {"t": tolerance}).scalar()
    for fid, (code, wkt) in enumerate(polygons.items()):
        dbs.execute(text("""INSERT INTO import_feature (batch_id, layer, fid, code, geom,
            geom_stored, status) SELECT :b, 'DK', :fid, :code, g, stored_geometry(g), 'valid'
            FROM (SELECT ST_GeomFromText(:w, 4547) AS g) q"""),
                    {"b": b, "fid": fid, "code": code, "w": wkt})
    return b


def _square(x: float, y: float, side: float = 20) -> str:
    return (f"POLYGON(({x} {y},{x + side} {y},{x + side} {y + side},{x} {y + side},{x} {y}))")


def _registered(dbs, codes) -> int:
    return dbs.execute(text("SELECT count(*) FROM parcel WHERE code = ANY(:c)"),
                       {"c": list(codes)}).scalar()


def test_the_bulk_function_refuses_a_staged_parcel_lying_on_a_registered_one(dbs):
    """Staging is the app role's to write: a feature marked 'valid' without validation and
    lying on a registered parcel is refused by the function's own check, naming both."""
    col = _col(dbs)
    x, y = GX + 9000, GY
    registered = parcels.register("bureau", "contract", f"{col.fbfbm}85000", col.id,
                                  _square(x, y), 4547, "测试").code
    codes = {f"{col.fbfbm}85001": _square(x + 100, y), f"{col.fbfbm}85002": _square(x + 5, y)}
    b = _stage(dbs, col, codes)
    with pytest.raises(DBAPIError, match="parcel.overlap") as e:
        with dbs.begin_nested():
            parcels.insert_from_staging("attacker", b)
    msg = str(e.value.orig)
    assert f"{col.fbfbm}85002" in msg and registered in msg, msg
    assert _registered(dbs, codes) == 0


def test_the_bulk_function_refuses_two_staged_parcels_lying_on_each_other(dbs):
    col = _col(dbs)
    x, y = GX + 9500, GY
    codes = {f"{col.fbfbm}85101": _square(x, y), f"{col.fbfbm}85102": _square(x + 100, y),
             f"{col.fbfbm}85103": _square(x + 110, y + 3)}
    b = _stage(dbs, col, codes)
    with pytest.raises(DBAPIError, match="parcel.overlap") as e:
        with dbs.begin_nested():
            parcels.insert_from_staging("attacker", b)
    msg = str(e.value.orig)
    assert f"{col.fbfbm}85102" in msg and f"{col.fbfbm}85103" in msg, msg
    assert _registered(dbs, codes) == 0


@pytest.mark.parametrize("factor", [1.3, 0.7])
def test_the_bulk_function_registers_neighbours_and_slivers_by_the_per_row_rule(dbs, factor):
    """Neighbours sharing an edge, and a sliver either side of the tolerance — the per-row
    check's rule, with the smaller of the registry's and the batch's tolerance."""
    col, tol = _col(dbs), _tolerance(dbs)
    x, y = GX + 10000 + (0 if factor > 1 else 500), GY
    width = tol * factor / 20  # a strip 20 m long
    codes = {f"{col.fbfbm}84{k}{int(factor * 10):02d}": w for k, w in enumerate(
        [_square(x, y), _square(x + 20, y), _square(x, y + 20),
         _square(x + 40 - width, y)])}
    b = _stage(dbs, col, codes, tolerance=tol * 10)  # a laxer batch changes nothing
    if factor > 1:
        with pytest.raises(DBAPIError, match="parcel.overlap"):
            with dbs.begin_nested():
                parcels.insert_from_staging("attacker", b)
        assert _registered(dbs, codes) == 0
    else:
        assert parcels.insert_from_staging("bureau", b) == len(codes)
        assert _registered(dbs, codes) == len(codes)


def test_the_bulk_bypass_is_refused_in_every_form_the_app_role_can_try(app, dbs):
    """The setting with the lock, a replica session, a disabled trigger: none lets a parcel
    lying on another in; the bulk function refuses a snapshot older than its own lock."""
    for sql in ("LOCK TABLE parcel IN SHARE ROW EXCLUSIVE MODE; "
                "SET LOCAL sanquan.bulk_checked = 'on'",
                "SET LOCAL session_replication_role = replica",
                "ALTER TABLE parcel DISABLE TRIGGER parcel_guard"):
        with dbs.begin_nested():
            try:
                with dbs.begin_nested():
                    dbs.execute(text(sql))
            except DBAPIError:
                pass
            _refused(dbs)
            n = dbs.execute(text("""SELECT count(*) FROM parcel a JOIN parcel b
                ON a.id < b.id AND a.end_lifespan IS NULL AND b.end_lifespan IS NULL
                AND a.geom && b.geom AND ST_Equals(a.geom, b.geom)""")).scalar()
            assert n == 0, sql
    engine = create_engine(app.config["SQLALCHEMY_DATABASE_URI"])
    try:
        with engine.connect() as c:
            c.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"))
            with pytest.raises(DBAPIError, match="parcel.bulk"):
                c.execute(text("SELECT parcel_register_staged(0, NULL, 'x', NULL)"))
    finally:
        engine.dispose()


def test_a_parcel_registered_between_validation_and_acceptance_is_reported(dbs, tmp_path):
    """Validation saw the register as it was; a parcel registered since lying on a feature is
    found inside the lock (the database's check refuses the insert; the import then reports the
    feature as overlap_register and registers the rest)."""
    d = clean(7401, households=2, village=7401)
    batch = ops.run("bureau", d.write(tmp_path / "d"))
    assert not ops.faults(batch.id)
    col = _col(dbs)
    attrs, geom = d.dk[0]
    parcels.register("bureau", "contract", f"{col.fbfbm}83001", col.id, geom.wkt, d.srid,
                     "测试")
    result = ops.accept("bureau", batch, valid_part=True)
    assert "failed" not in result, result
    hits = [f for f in ops.faults(batch.id) if f.rule == "overlap_register"]
    assert [(f.code, "registered meanwhile" in f.detail) for f in hits] == [(attrs["DKBM"], True)]
    left = dbs.execute(text("""SELECT count(*) FROM import_feature WHERE batch_id = :b
        AND layer = 'DK' AND status = 'registered'"""), {"b": batch.id}).scalar()
    assert left == len(d.dk) - 1
