"""Attacks on the evening's database work (0041_bulk, 0041_citus2, 0042_bulk_ids), made with SQL
on the app's own connection (the `dbs` session: the app role) and, for races, on two
connections of that role staged by the database's lock state (pg_blocking_pids), never a timer.

Each test asserts the safe behaviour: it fails while the hole is there.  Fixes: 0043_atk_db2."""
from __future__ import annotations

import datetime as dt
import threading

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError

from app.errors import DomainError
from app.parcels import operations as parcels
from app.rights import operations as rights
from tests.test_import_fast_path_attacks import GX, GY, _col, _registered, _square, _stage
from tests.test_parcels import _remove_winner, _wait_until_blocked
from tests.test_rights import _contract, _household_with_land

X0 = GX + 20000  # away from the other attack files' squares


def _fails(dbs, sql: str, params: dict | None = None) -> str | None:
    """The statement's error (first line), or None when it went through."""
    try:
        with dbs.begin_nested():
            dbs.execute(text(sql), params or {})
    except DBAPIError as e:
        return str(e.orig).split("\n")[0]
    return None


def _overlaps(dbs) -> int:
    """Pairs of current parcels whose interiors meet by more than a square metre."""
    return dbs.execute(text("""SELECT count(*) FROM parcel a JOIN parcel b ON a.id < b.id
        AND a.end_lifespan IS NULL AND b.end_lifespan IS NULL AND a.geom && b.geom
        AND ST_Area(ST_Transform(ST_Intersection(a.geom, b.geom), 4547)) > 1""")).scalar()


INSERT = """INSERT INTO parcel (kind, code, collective_id, scmj, scmjm, survey_srid, geom)
    SELECT 'contract', :code, :col, 400, 0.6, :srid,
           ST_Multi(ST_Transform(ST_GeomFromText(:w, 4547), 4490))"""


# --- the overlap rule measured in a CRS of the caller's choice --------------------------------

@pytest.mark.parametrize("srid", [4490, 4326, 3857, 4479])
def test_a_parcel_cannot_choose_square_degrees_to_measure_its_overlap(dbs, srid):
    """survey_srid is the zone parcel_guard() measures the overlap in; 4490 measured it in
    square degrees (~1e-10 of the m²) and let a parcel lying squarely on another in."""
    col = _col(dbs)
    x = X0 + 100 * (srid % 7)
    parcels.register("bureau", "contract", f"{col.fbfbm}7{srid % 10}100", col.id,
                     _square(x, GY), 4547, "测试")
    _fails(dbs, INSERT, {"code": f"{col.fbfbm}7{srid % 10}101", "col": col.id, "srid": srid,
                         "w": _square(x + 2, GY + 2)})
    assert _overlaps(dbs) == 0


def test_the_bulk_function_cannot_be_made_to_measure_in_square_degrees(dbs):
    """The bulk function takes the zone from the staged feature's own geometry (the app role's
    to write): a feature staged near 57°W gives 4509 + floor((-57 + 1.5) / 3) = 4490, and the
    geometry stored (geom_stored) lies on a registered parcel."""
    col = _col(dbs)
    x = X0 + 1000
    parcels.register("bureau", "contract", f"{col.fbfbm}72000", col.id, _square(x, GY), 4547,
                     "测试")
    b = _stage(dbs, col, {f"{col.fbfbm}72001": _square(x + 100, GY)})
    dbs.execute(text("""UPDATE import_feature SET
        geom = ST_GeomFromText('POLYGON((-57.5 35.5,-56.5 35.5,-56.5 36.5,-57.5 36.5,-57.5 35.5))',
                               4490),
        geom_stored = ST_Transform(ST_GeomFromText(:w, 4547), 4490) WHERE batch_id = :b"""),
        {"b": b, "w": _square(x + 2, GY + 2)})
    _fails(dbs, "SELECT parcel_register_staged(:b, NULL, 'attacker', NULL)", {"b": b})
    assert _overlaps(dbs) == 0


@pytest.mark.parametrize("where", ["first", "middle", "hole"])
def test_a_parcel_with_a_nan_vertex_cannot_slip_past_the_box_filter(dbs, where):
    """Both checks find their pairs by box (&&); a NaN coordinate makes the box NaN (or wrong),
    so the bulk function's check skipped a staged geometry that holds a registered parcel's
    ring with NaN points added.  Such a geometry is no parcel at all: refused by both paths."""
    col = _col(dbs)
    x = X0 + 1500 + 100 * len(where)
    p = parcels.register("bureau", "contract", f"{col.fbfbm}7{len(where)}500", col.id,
                         _square(x, GY), 4547, "测试")
    w = dbs.execute(text("SELECT ST_AsText(geom) FROM parcel WHERE id = :i"), {"i": p.id}).scalar()
    ring = w.removeprefix("MULTIPOLYGON(((").removesuffix(")))")
    pts = ring.split(",")
    forged = {"first": f"POLYGON((NaN NaN,{ring},NaN NaN))",
              "middle": f"POLYGON(({','.join(pts[:2] + ['NaN NaN'] + pts[2:])}))",
              "hole": f"POLYGON(({ring}),(NaN NaN,NaN NaN,NaN NaN,NaN NaN))"}[where]
    b = _stage(dbs, col, {f"{col.fbfbm}7{len(where)}501": _square(x + 100, GY)})
    dbs.execute(text("UPDATE import_feature SET geom_stored = ST_GeomFromText(:w, 4490) "
                     "WHERE batch_id = :b"), {"b": b, "w": forged})
    _fails(dbs, "SELECT parcel_register_staged(:b, NULL, 'attacker', NULL)", {"b": b})
    _fails(dbs, """INSERT INTO parcel (kind, code, collective_id, scmj, scmjm, survey_srid, geom)
        SELECT 'contract', :code, :col, 400, 0.6, 4547, ST_Multi(ST_GeomFromText(:w, 4490))""",
           {"code": f"{col.fbfbm}7{len(where)}502", "col": col.id, "w": forged})
    n = dbs.execute(text("SELECT count(*) FROM parcel WHERE code LIKE :c AND code <> :own"),
                    {"c": f"{col.fbfbm}7{len(where)}50_", "own": p.code}).scalar()
    assert n == 0


# --- the tolerance past its bounds --------------------------------------------------------------

@pytest.mark.parametrize("value", ["NaN", "Infinity", "1e12", "100000", "-1", "abc"])
def test_the_overlap_tolerance_stays_within_its_bounds(dbs, value):
    """The settings catalogue bounds it to 0–10 m²; the app role writes registry_setting
    directly.  'NaN' made the per-row check's `area > tol` false for every pair."""
    col = _col(dbs)
    x = X0 + 2000
    parcels.register("bureau", "contract", f"{col.fbfbm}73000", col.id, _square(x, GY), 4547,
                     "测试")
    err = _fails(dbs, "UPDATE registry_setting SET value = :v "
                      "WHERE key = 'overlap_tolerance_m2'", {"v": value})
    _fails(dbs, INSERT, {"code": f"{col.fbfbm}73001", "col": col.id, "srid": 4547,
                         "w": _square(x + 2, GY + 2)})
    b = _stage(dbs, col, {f"{col.fbfbm}73002": _square(x + 3, GY + 3)})
    _fails(dbs, "SELECT parcel_register_staged(:b, NULL, 'attacker', NULL)", {"b": b})
    assert _overlaps(dbs) == 0
    assert err is not None and "ck_registry_setting_overlap_tolerance" in err, err


def test_a_tolerance_within_bounds_is_still_written(dbs):
    for v in ("0", "0.5", "10", "1e-05", "2.5"):
        assert _fails(dbs, "UPDATE registry_setting SET value = :v "
                           "WHERE key = 'overlap_tolerance_m2'", {"v": v}) is None, v


# --- the definer function's arguments ---------------------------------------------------------

@pytest.mark.parametrize("tol", [None, "NaN", "Infinity", "1e300", "-Infinity", "-1"])
def test_the_caller_s_tolerance_never_widens_the_registry_s(dbs, tol):
    col = _col(dbs)
    x = X0 + 3000
    parcels.register("bureau", "contract", f"{col.fbfbm}74000", col.id, _square(x, GY), 4547,
                     "测试")
    b = _stage(dbs, col, {f"{col.fbfbm}74001": _square(x + 2, GY + 2)})
    err = _fails(dbs, "SELECT parcel_register_staged(:b, NULL, 'attacker', CAST(:t AS float8))",
                 {"b": b, "t": tol})
    assert err is not None and "parcel.overlap" in err, err
    assert _registered(dbs, [f"{col.fbfbm}74001"]) == 0


def test_feature_ids_of_another_batch_register_nothing(dbs):
    col = _col(dbs)
    x = X0 + 4000
    a = _stage(dbs, col, {f"{col.fbfbm}75001": _square(x, GY)})
    b = _stage(dbs, col, {f"{col.fbfbm}75002": _square(x + 100, GY)})
    ids = dbs.execute(text("SELECT array_agg(id) FROM import_feature WHERE batch_id = :b"),
                      {"b": b}).scalar()
    n = dbs.execute(text("SELECT parcel_register_staged(:a, :ids, 'attacker', NULL)"),
                    {"a": a, "ids": ids}).scalar()
    assert n == 0 and _registered(dbs, [f"{col.fbfbm}75001", f"{col.fbfbm}75002"]) == 0


def test_the_who_string_is_data_not_sql(dbs):
    col = _col(dbs)
    who = "x'); DROP TABLE parcel; --"
    b = _stage(dbs, col, {f"{col.fbfbm}76001": _square(X0 + 5000, GY)})
    assert dbs.execute(text("SELECT parcel_register_staged(:b, NULL, :w, NULL)"),
                       {"b": b, "w": who}).scalar() == 1
    assert dbs.execute(text("SELECT changed_by FROM parcel WHERE code = :c"),
                       {"c": f"{col.fbfbm}76001"}).scalar() == who


def test_every_definer_function_has_a_safe_search_path_and_no_public_execute(dbs):
    rows = dbs.execute(text("""
        SELECT p.proname, p.proconfig, has_function_privilege('public', p.oid, 'EXECUTE') AS pub
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE p.prosecdef AND n.nspname = 'public'
          AND pg_get_userbyid(p.proowner) = (SELECT pg_get_userbyid(relowner) FROM pg_class
                                             WHERE oid = 'parcel'::regclass)""")).all()
    assert rows
    for r in rows:
        assert "search_path=public, pg_temp" in (r.proconfig or []), r
    staged = [r for r in rows if r.proname == "parcel_register_staged"]
    assert staged and not staged[0].pub
    # and the app role can create nothing in the schemas searched before pg_temp
    assert not dbs.execute(text("SELECT has_schema_privilege('public', 'CREATE') "
                                "OR has_schema_privilege(current_user, 'public', 'CREATE')")
                           ).scalar()


def test_temporary_shadows_change_nothing_in_the_definer_function(dbs):
    """A temporary registry_setting with a huge tolerance and a temporary parcel table: the
    function's search_path puts pg_temp last, so it reads the real ones."""
    col = _col(dbs)
    x = X0 + 6000
    parcels.register("bureau", "contract", f"{col.fbfbm}77000", col.id, _square(x, GY), 4547,
                     "测试")
    b = _stage(dbs, col, {f"{col.fbfbm}77001": _square(x + 2, GY + 2)})
    with dbs.begin_nested():
        dbs.execute(text("CREATE TEMP TABLE registry_setting (key text, value text) "
                         "ON COMMIT DROP"))
        dbs.execute(text("INSERT INTO pg_temp.registry_setting VALUES "
                         "('overlap_tolerance_m2', '1e12')"))
        dbs.execute(text("CREATE TEMP TABLE parcel (LIKE public.parcel) ON COMMIT DROP"))
        err = _fails(dbs, "SELECT parcel_register_staged(:b, NULL, 'attacker', NULL)", {"b": b})
        assert err is not None and "parcel.overlap" in err, err
    assert _overlaps(dbs) == 0


@pytest.mark.parametrize("mode", ["READ ONLY", "ISOLATION LEVEL SERIALIZABLE",
                                  "ISOLATION LEVEL REPEATABLE READ"])
def test_the_definer_function_refuses_other_transaction_modes(app, mode):
    engine = create_engine(app.config["SQLALCHEMY_DATABASE_URI"])
    try:
        with engine.connect() as c:
            c.execute(text(f"SET TRANSACTION {mode}"))
            with pytest.raises(DBAPIError):
                c.execute(text("SELECT parcel_register_staged(0, NULL, 'x', NULL)"))
    finally:
        engine.dispose()


def assert_one_wins_the_race(app, engine, codes, batches, first, second) -> None:
    """A runs `first` (statement, params) and holds it uncommitted; B runs `second`, which must
    wait on A (pg_blocking_pids); A commits; B must then be refused with parcel.overlap and
    exactly one of `codes` be registered.  Cleans up the winner and the staged batches."""
    result: dict = {}
    try:
        with engine.connect() as a, engine.connect() as b:
            a_pid = a.execute(text("SELECT pg_backend_pid()")).scalar()
            b_pid = b.execute(text("SELECT pg_backend_pid()")).scalar()
            a.commit()
            b.commit()
            ta = a.begin()
            a.execute(*first)

            def run_b():
                try:
                    with b.begin():
                        b.execute(*second)
                    result["b"] = "ok"
                except DBAPIError as e:
                    result["b"] = str(e.orig).split("\n")[0]

            t = threading.Thread(target=run_b)
            t.start()
            _wait_until_blocked(engine, b_pid, a_pid)
            ta.commit()
            t.join(60)
        assert "parcel.overlap" in str(result.get("b")), result
        with engine.connect() as c:
            assert c.execute(text("SELECT count(*) FROM parcel WHERE code = ANY(:c)"),
                             {"c": codes}).scalar() == 1
    finally:
        _remove_winner(app, engine, codes)
        eng = create_engine(app.config["MIGRATE_DATABASE_URL"])
        with eng.begin() as c:
            c.execute(text("DELETE FROM import_feature WHERE batch_id = ANY(:b)"),
                      {"b": batches})
            c.execute(text("DELETE FROM import_batch WHERE id = ANY(:b)"), {"b": batches})
        eng.dispose()


BULK = text("SELECT parcel_register_staged(:b, NULL, 'x', NULL)")


def _collective(engine):
    with engine.connect() as c:
        return c.execute(text("SELECT id, fbfbm FROM collective ORDER BY id LIMIT 1")).one()


def test_two_bulk_registrations_at_once_cannot_both_register_an_overlap(app):
    """A holds the function's table lock with its parcel inserted, uncommitted; B's call on an
    overlapping feature waits on A's lock (pg_blocking_pids), then A commits: B must see A's
    parcel and be refused."""
    engine = create_engine(app.config["SQLALCHEMY_DATABASE_URI"])
    x = X0 + 7000
    col = _collective(engine)
    codes = [f"{col.fbfbm}78001", f"{col.fbfbm}78002"]
    with engine.begin() as c:
        batches = [_stage(c, col, {code: w}) for code, w in
                   zip(codes, (_square(x, GY), _square(x + 3, GY + 3)), strict=True)]
    assert_one_wins_the_race(app, engine, codes, batches,
                             (BULK, {"b": batches[0]}), (BULK, {"b": batches[1]}))


@pytest.mark.parametrize("first", ["bulk", "row"])
def test_a_bulk_and_a_per_row_registration_at_once_cannot_both_register_an_overlap(app, first):
    """One path holds parcel with its parcel inserted, uncommitted; the other path's overlapping
    registration waits on it (pg_blocking_pids); the first commits: the second must see its
    parcel and be refused (the bulk path takes no cell locks, only the table lock)."""
    engine = create_engine(app.config["SQLALCHEMY_DATABASE_URI"])
    x = X0 + 7500 + (0 if first == "bulk" else 200)
    col = _collective(engine)
    k = 1 if first == "bulk" else 2
    codes = [f"{col.fbfbm}78{k}11", f"{col.fbfbm}78{k}12"]
    squares = [_square(x, GY), _square(x + 3, GY + 3)]
    staged = 0 if first == "bulk" else 1
    with engine.begin() as c:
        batches = [_stage(c, col, {codes[staged]: squares[staged]})]
    bulk = (BULK, {"b": batches[0]})
    row = (text(INSERT), {"code": codes[1 - staged], "col": col.id, "srid": 4547,
                          "w": squares[1 - staged]})
    assert_one_wins_the_race(app, engine, codes, batches, *((bulk, row) if first == "bulk" else (row, bulk)))


# --- keys and counties (0041_citus2) ----------------------------------------------------------

def _other(county: str) -> str:
    return ("9" if county[0] != "9" else "8") + county[1:]


def test_a_staged_feature_cannot_point_at_a_parcel_under_another_county(dbs):
    col = _col(dbs)
    p = parcels.register("bureau", "contract", f"{col.fbfbm}79000", col.id,
                         _square(X0 + 8000, GY), 4547, "测试")
    b = _stage(dbs, col, {f"{col.fbfbm}79001": _square(X0 + 8100, GY)})
    other = _other(p.county_code)
    for sql in ("UPDATE import_feature SET parcel_id = :p, parcel_county_code = :c "
                "WHERE batch_id = :b",
                "UPDATE import_feature SET parcel_county_code = :c WHERE batch_id = :b"):
        _fails(dbs, sql, {"p": p.id, "c": other, "b": b})
    dbs.execute(text("UPDATE import_feature SET parcel_id = :p WHERE batch_id = :b"),
                {"p": p.id, "b": b})
    _fails(dbs, "UPDATE import_feature SET parcel_county_code = :c WHERE batch_id = :b",
           {"c": other, "b": b})
    bad = dbs.execute(text("""SELECT count(*) FROM import_feature f JOIN parcel p
        ON p.id = f.parcel_id WHERE f.parcel_county_code IS DISTINCT FROM p.county_code""")
                      ).scalar()
    assert bad == 0


def test_a_parcel_keeps_its_sequence_id_and_the_county_of_its_code(dbs):
    col = _col(dbs)
    taken = dbs.execute(text("SELECT id FROM parcel ORDER BY id LIMIT 1")).scalar()
    dbs.execute(text("""INSERT INTO parcel (id, kind, code, collective_id, scmj, scmjm,
        survey_srid, geom) SELECT :id, 'contract', :code, :col, 400, 0.6, 4547,
        ST_Multi(ST_Transform(ST_GeomFromText(:w, 4547), 4490))"""),
        {"id": taken, "code": f"{col.fbfbm}79101", "col": col.id,
         "w": _square(X0 + 8500, GY)})
    row = dbs.execute(text("SELECT id, county_code FROM parcel WHERE code = :c"),
                      {"c": f"{col.fbfbm}79101"}).one()
    assert row.id != taken and row.county_code == col.fbfbm[:6]
    # a collective of another county for a parcel whose code is in this one: refused
    assert _fails(dbs, """INSERT INTO parcel (kind, code, collective_id, scmj, scmjm,
        survey_srid, geom) SELECT 'contract', :code, :col, 400, 0.6, 4547,
        ST_Multi(ST_Transform(ST_GeomFromText(:w, 4547), 4490))""",
                  {"code": _other(col.fbfbm[:6]) + f"{col.fbfbm[6:]}79102", "col": col.id,
                   "w": _square(X0 + 8600, GY)}) is not None


# --- ending a right: a mutation that hands it to no successor ---------------------------------

def test_a_renamed_parcel_is_no_mutation_that_ends_its_right(dbs):
    """A right ends on a mutation that hands it to successor parcels (a split or a merge).
    Renaming one of its parcels hands it to nobody: the parcel and the right go on — refused
    by the operation and, on the app's own connection, by the database (0050)."""
    hh, fields, _ = _household_with_land(dbs)
    r = _contract(dbs, hh, fields)
    new = parcels.amend("bureau", fields[0], "更名", name="新名")
    m = dbs.scalar(text("SELECT mutation_id FROM parcel_lineage WHERE child_id = :c"),
                   {"c": new.id})
    with pytest.raises(DomainError) as e:
        rights.end_right("bureau", r, "mutation", dt.date.today(), evidence="变更",
                         reason="地块变更", record=m)
    assert e.value.code.startswith("right.")
    err = _fails(dbs, """UPDATE land_right SET status = 'ended', end_ground = 'mutation',
        ended_on = current_date, end_record_id = :m WHERE id = :id""", {"m": m, "id": r.id})
    assert err is not None and "split or merge" in err, err


def test_a_contract_term_cannot_be_shortened_into_an_expiry(dbs):
    """A right ends on expiry only at its term end; a new version of the right with the term
    end moved into the past, then 'expiry': the contractor may not take the land back during
    the term (农村土地承包法 art 21, 27)."""
    hh, fields, _ = _household_with_land(dbs)
    r = _contract(dbs, hh, fields)
    steps = [
        "UPDATE land_right SET end_lifespan = clock_timestamp() WHERE id = :id",
        """INSERT INTO land_right (uid, version, kind, holder_household_code, holder_person_id,
          holder_name, contract_code, obtained_by, fbfbm, term_start, term_end, contract_area,
          change_reason, changed_by)
        SELECT uid, version + 1, kind, holder_household_code, holder_person_id, holder_name,
          contract_code, obtained_by, fbfbm, term_start, term_start + 365, contract_area,
          '调整', 'attacker' FROM land_right WHERE id = :id""",
        """UPDATE land_right SET status = 'ended', end_ground = 'expiry',
          ended_on = current_date WHERE uid = :uid AND end_lifespan IS NULL""",
        "SET CONSTRAINTS ALL IMMEDIATE"]
    err = None
    try:
        with dbs.begin_nested():
            for s in steps:
                dbs.execute(text(s), {"id": r.id, "uid": r.uid})
            ended = dbs.execute(text("SELECT count(*) FROM land_right WHERE uid = :u "
                                     "AND status = 'ended'"), {"u": r.uid}).scalar()
            assert ended == 0
    except DBAPIError as e:
        err = str(e.orig).split("\n")[0]
    assert err is None or err.startswith("right."), err


@pytest.mark.parametrize("years", [-25, 0, 71, 2.5, True, "30"])
def test_an_extension_by_negative_years_is_refused(dbs, years):
    """The operation refuses with its rule (the database's term guard stays behind it)."""
    hh, fields, _ = _household_with_land(dbs)
    r = _contract(dbs, hh, fields)
    with pytest.raises(DomainError) as e:
        with dbs.begin_nested():
            rights.extend_contract("bureau", r, years, "调整承包期")
    assert e.value.code == "right.extend.years" and "art 21" in e.value.source("en")
    dbs.refresh(r)
    assert r.end_lifespan is None and r.status == "current"


def test_the_term_guard_refuses_a_shortened_term_written_with_sql(dbs):
    """Behind the operation: a new version whose term ends before its predecessor's, made with
    SQL as the app role, is refused by the database (0043_atk_db2)."""
    hh, fields, _ = _household_with_land(dbs)
    r = _contract(dbs, hh, fields)
    with pytest.raises(DBAPIError) as e:
        with dbs.begin_nested():
            dbs.execute(text("UPDATE land_right SET end_lifespan = clock_timestamp() "
                             "WHERE id = :i"), {"i": r.id})
            dbs.execute(text("""INSERT INTO land_right (uid, version, kind, holder_household_code,
                contract_code, fbfbm, term_start, term_end, obtained_by, change_reason,
                changed_by, begin_lifespan)
                SELECT uid, version + 1, kind, holder_household_code, contract_code, fbfbm,
                       term_start, term_end - interval '20 years', obtained_by, 'x', 'x',
                       clock_timestamp() FROM land_right WHERE id = :i"""), {"i": r.id})
    assert "right." in str(e.value.orig)


def test_an_extension_from_29_february_lands_on_28_february(dbs):
    hh, fields, _ = _household_with_land(dbs)
    r = _contract(dbs, hh, fields, end=dt.date(2028, 2, 29))
    new = rights.extend_contract("bureau", r, 30, "第二轮土地承包到期后再延长三十年")
    assert new.term_end == dt.date(2058, 2, 28)
