"""Citus-ready schema (issue 18 §3, docs/scaling.md), checked on the live schema's catalog.

The target: a later move to Citus with the county code as distribution column is
configuration, not a rewrite —
  1. every large table carries `county_code` (varchar(6), NOT NULL);
  2. the distribution column is part of every unique constraint (PK, UNIQUE, unique index)
     of a large table;
  3. every foreign key between two large tables carries county_code on both sides;
  4. reference tables (divisions, code lists, settings) are small, and no reference table
     points at a large one.

Met today: property 1 for parcel, household and collective (migration 0026_scale); properties
1–3 for land_right_parcel, certificate and charter_clause, 1–2 for land_right, household_member
and membership (their key to person remains), and 1 for right_encumbrance (0036_citus);
1–3 for parcel, parcel_lineage and parcel_mutation, 2 for household, collective and
right_encumbrance (0041_citus2); person (one row per county), and 3 for land_right, household,
household_member and membership: their keys to person carry the county, as does every
reference to a person from a coordinator-local table (0045_citus_person).  All of it is met,
so every property is asserted for every large table (no table is exempted any more).  Also
checked: no
function of ours that catches exceptions is PARALLEL SAFE (0026; it broke parallel plans of
large imports).
"""
from __future__ import annotations

import pytest
import shapely
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from app.certificates import operations as certificates
from app.extensions import db
from app.market import operations as market
from app.parcels import operations as parcel_ops
from app.rights import operations as rights
from tests.test_rights import _contract, _household_with_land

# Tables whose rows grow with the province (parcels, people, households, rights, …).
LARGE = ["parcel", "parcel_lineage", "parcel_mutation", "household", "household_member",
         "person", "membership", "collective", "land_right", "land_right_parcel",
         "certificate", "right_encumbrance", "charter_clause"]
# Small tables replicated to every node in Citus.
REFERENCE = ["division", "registry_setting", "settlement_town"]
REFERENCE_MAX_ROWS = 100_000  # a province's divisions down to villages: ~50,000
# Staging (import_*), the audit log, jobs, accounts and the market are outside the register's
# distribution (docs/scaling.md: coordinator-local, or distributed by their own key later).


def _has_county(table: str) -> bool:
    return bool(db.session.execute(text("""
        SELECT 1 FROM information_schema.columns WHERE table_schema = 'public'
          AND table_name = :t AND column_name = 'county_code' AND is_nullable = 'NO'
          AND data_type = 'character varying' AND character_maximum_length = 6"""),
        {"t": table}).scalar())


def _unique_without_county(table: str) -> list[str]:
    """Unique indexes (PKs and UNIQUE constraints are backed by one) of `table` whose columns
    leave out county_code."""
    return list(db.session.execute(text("""
        SELECT i.relname FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
        WHERE x.indrelid = CAST(:t AS regclass) AND x.indisunique AND NOT EXISTS (
          SELECT 1 FROM pg_attribute a WHERE a.attrelid = x.indrelid
            AND a.attnum = ANY(x.indkey) AND a.attname = 'county_code')
        ORDER BY 1"""), {"t": table}).scalars())


def _fks_without_county(table: str) -> list[str]:
    """Foreign keys from `table` to another large table that do not map county_code to
    county_code."""
    return list(db.session.execute(text("""
        SELECT c.conname FROM pg_constraint c
        WHERE c.contype = 'f' AND c.conrelid = CAST(:t AS regclass)
          AND c.confrelid = ANY(CAST(:large AS regclass[]))
          AND NOT EXISTS (
            SELECT 1 FROM unnest(c.conkey, c.confkey) AS k(a, b)
            JOIN pg_attribute fa ON fa.attrelid = c.conrelid AND fa.attnum = k.a
            JOIN pg_attribute ta ON ta.attrelid = c.confrelid AND ta.attnum = k.b
            WHERE fa.attname = 'county_code' AND ta.attname = 'county_code')
        ORDER BY 1"""), {"t": table, "large": LARGE}).scalars())


def _with_fks() -> set[str]:
    """Large tables with a foreign key to another large table (static: the parametrisation is
    made before the database is there); test_fk_list_is_the_live_one keeps it true."""
    return {"parcel", "parcel_lineage", "household", "household_member", "membership",
            "land_right", "land_right_parcel", "certificate", "charter_clause"}


def test_the_lists_name_real_tables(dbs):
    tables = set(db.session.execute(text(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")).scalars())
    assert set(LARGE + REFERENCE) <= tables, set(LARGE + REFERENCE) - tables


@pytest.mark.parametrize("table", LARGE)
def test_large_table_carries_the_county_code(dbs, table):
    assert _has_county(table)


@pytest.mark.parametrize("table", LARGE)
def test_county_code_is_part_of_every_unique_constraint(dbs, table):
    assert _has_county(table) and _unique_without_county(table) == []


@pytest.mark.parametrize("table", LARGE)
def test_foreign_keys_between_large_tables_carry_the_county_code(dbs, table):
    assert _fks_without_county(table) == []


# Every reference to a large table (from any table, large or coordinator-local) names the
# county: all of them since 0045 (person).
@pytest.mark.parametrize("table", LARGE)
def test_every_reference_to_a_large_table_carries_its_county(dbs, table):
    """A foreign key that points at a large table by id alone pins a unique index without the
    distribution column on it (property 2 by the back door): every foreign key to a large
    table, from any table, maps some column to its county_code (0041: the coordinator-local
    tables carry `<parent>_county_code`)."""
    by_id_alone = db.session.execute(text("""
        SELECT c.conrelid::regclass::text || '.' || c.conname FROM pg_constraint c
        WHERE c.contype = 'f' AND c.confrelid = CAST(:t AS regclass)
          AND NOT EXISTS (
            SELECT 1 FROM unnest(c.confkey) AS k(b)
            JOIN pg_attribute ta ON ta.attrelid = c.confrelid AND ta.attnum = k.b
            WHERE ta.attname = 'county_code')
        ORDER BY 1"""), {"t": table}).scalars().all()
    assert by_id_alone == []


def test_fk_list_is_the_live_one(dbs):
    live = set(db.session.execute(text("""
        SELECT DISTINCT c.conrelid::regclass::text FROM pg_constraint c
        WHERE c.contype = 'f' AND c.conrelid = ANY(CAST(:large AS regclass[]))
          AND c.confrelid = ANY(CAST(:large AS regclass[]))"""), {"large": LARGE}).scalars())
    assert live == _with_fks()


@pytest.mark.parametrize("table", REFERENCE)
def test_reference_tables_are_small_and_point_at_no_large_table(dbs, table):
    n = db.session.execute(text(f"SELECT count(*) FROM {table}")).scalar()  # noqa: S608
    assert n <= REFERENCE_MAX_ROWS
    pointing = db.session.execute(text("""
        SELECT count(*) FROM pg_constraint c WHERE c.contype = 'f'
          AND c.conrelid = CAST(:t AS regclass) AND c.confrelid = ANY(CAST(:large AS regclass[]))
        """), {"t": table, "large": LARGE}).scalar()
    assert pointing == 0


def test_county_code_is_the_code_prefix(dbs):
    """Generated from the code: it cannot disagree with it."""
    for table, col in (("parcel", "code"), ("household", "cbfbm"), ("collective", "fbfbm")):
        n, bad = db.session.execute(text(
            f"SELECT count(*), count(*) FILTER (WHERE county_code <> left({col}, 6)) "  # noqa: S608
            f"FROM {table}")).one()
        assert n > 0 and bad == 0, table


def test_no_exception_catching_function_is_parallel_safe(dbs):
    """A function that catches exceptions opens a subtransaction, which a parallel worker
    cannot: marked PARALLEL SAFE it breaks any parallel plan that calls it (0026)."""
    bad = db.session.execute(text("""
        SELECT p.oid::regprocedure::text FROM pg_proc p
        JOIN pg_namespace n ON n.oid = p.pronamespace
        JOIN pg_language l ON l.oid = p.prolang AND l.lanname = 'plpgsql'
        WHERE n.nspname = 'public' AND p.proparallel = 's'
          AND p.prosrc ~* '\\mEXCEPTION\\s+WHEN'
          AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass
                          AND d.objid = p.oid AND d.deptype = 'e')""")).scalars().all()
    assert bad == []


def test_the_rights_register_carries_its_county_filled_by_the_database(dbs):
    """A right's county comes from its codes; its parcels, certificates and encumbrances get
    their right's county from the database (the application never names it), through a new
    version and a new edition too."""
    hh, fields, _ = _household_with_land(dbs)
    r = _contract(dbs, hh, fields)
    cert = certificates.issue("bureau", r)
    second = certificates.reissue("bureau", cert, "证书遗失，已登报声明作废")
    market.record_encumbrance("bureau", r, "seizure", "某县人民法院", "（2026）冀0101执1号",
                              "查封")
    newer = rights.extend_contract("bureau", r, reason="二轮延包")
    county = hh.cbfbm[:6]
    rows = dbs.execute(text("""
        SELECT 'land_right', county_code FROM land_right WHERE uid = :u
        UNION ALL SELECT 'land_right_parcel', p.county_code FROM land_right_parcel p
          JOIN land_right r ON r.id = p.right_id WHERE r.uid = :u
        UNION ALL SELECT 'certificate', county_code FROM certificate WHERE right_uid = :u
        UNION ALL SELECT 'right_encumbrance', county_code FROM right_encumbrance
          WHERE right_uid = :u"""), {"u": r.uid}).all()
    seen = {t for t, _ in rows}
    assert seen == {"land_right", "land_right_parcel", "certificate", "right_encumbrance"}
    assert {c for _, c in rows} == {county}
    assert second.replaces_id == cert.id and second.replaces.id == cert.id
    assert newer.version == r.version + 1 and {p.county_code for p in newer.parcels} == {county}


def test_a_copied_county_cannot_disagree_with_its_right(dbs):
    """The county a child names is overwritten by its right's, and a right's county follows
    its codes: a row cannot sit in another county than its right."""
    hh, fields, _ = _household_with_land(dbs)
    r = _contract(dbs, hh, fields)
    other = "9" + r.county_code[1:]
    rp = dbs.execute(text("""
        INSERT INTO land_right_parcel (right_id, parcel_uid, parcel_code, county_code)
        VALUES (:r, 1, 'x', :c) RETURNING county_code"""), {"r": r.id, "c": other}).scalar()
    assert rp == r.county_code
    with pytest.raises(DBAPIError, match="county_code"):
        with dbs.begin_nested():  # a right with no code at all has no county
            dbs.execute(text("INSERT INTO land_right (kind, holder_name) "
                             "VALUES ('management', 'x')"))


def test_household_members_carry_their_households_county(dbs):
    """The seeded county's members (inserted without a county) carry their household's, and
    a member named into another county gets its household's all the same."""
    n, bad = db.session.execute(text("""
        SELECT count(*), count(*) FILTER (WHERE m.county_code <> h.county_code)
        FROM household_member m JOIN household h ON h.id = m.household_id""")).one()
    assert n > 0 and bad == 0
    m = db.session.execute(text(
        "SELECT household_id, person_id FROM household_member LIMIT 1")).one()
    hh = db.session.execute(text("SELECT id, county_code FROM household WHERE id <> :h "
                                 "LIMIT 1"), {"h": m.household_id}).one()
    got = db.session.execute(text("""
        INSERT INTO household_member (household_id, person_id, relation, county_code)
        VALUES (:h, :p, '99', '999999') RETURNING county_code"""),
        {"h": hh.id, "p": m.person_id}).scalar()
    assert got == hh.county_code


COPIED = [("household_member", "household", "household_id"),
          ("membership", "collective", "collective_id"),
          ("charter_clause", "collective", "collective_id"),
          ("land_right_parcel", "land_right", "right_id"),
          ("certificate", "land_right", "right_id"),
          ("parcel_lineage", "parcel", "child_id")]


@pytest.mark.parametrize(("table", "parent", "key"), COPIED)
def test_a_copied_county_is_its_parents(dbs, table, parent, key):
    """Every row's county is its parent's (the seeded county's rows, inserted without one)."""
    bad = db.session.execute(text(
        f"SELECT count(*) FROM {table} t JOIN {parent} p ON p.id = t.{key} "  # noqa: S608
        "WHERE t.county_code <> p.county_code")).scalar()
    assert bad == 0


def test_a_membership_and_its_end_clause_are_in_its_collectives_county(dbs):
    """A membership takes its collective's county; it may cite only a charter clause of that
    county (composite foreign key): a clause of another county's collective is refused."""
    m = db.session.execute(text("SELECT id, collective_id, county_code FROM membership "
                                "WHERE status = 'active' LIMIT 1")).one()
    assert m.county_code == db.session.execute(text(
        "SELECT county_code FROM collective WHERE id = :c"), {"c": m.collective_id}).scalar()
    elsewhere = str(int(m.county_code) % 999_999 + 1).zfill(6)  # another county
    village = elsewhere + "001001"
    db.session.execute(text("INSERT INTO division (code, name, level) "
                            "VALUES (:v, 'x', 'village')"), {"v": village})
    other = db.session.execute(text("""
        INSERT INTO collective (fbfbm, name, village_code) VALUES (:f, 'x', :v)
        RETURNING id"""), {"f": village + "01", "v": village}).scalar()
    clause = db.session.execute(text("""
        INSERT INTO charter_clause (collective_id, clause_no, text, adopted_on, recorded_by,
                                    county_code)
        VALUES (:c, '第99条', '本社成员死亡的，成员身份终止', '2020-01-01', 'x', :k)
        RETURNING id, county_code"""), {"c": other, "k": m.county_code}).one()
    assert clause.county_code == elsewhere  # the collective's, not the one named
    person = db.session.execute(text("""
        SELECT id FROM person p WHERE NOT EXISTS (SELECT 1 FROM membership x
          WHERE x.person_id = p.id AND x.collective_id = :c AND x.status = 'active')
        LIMIT 1"""), {"c": m.collective_id}).scalar()
    insert = text("""
        INSERT INTO membership (person_id, collective_id, basis, began_on,
                                end_charter_clause_id)
        VALUES (:p, :c, 'birth', '2020-01-01', :k)""")
    with pytest.raises(DBAPIError, match="fk_membership_end_charter_clause_id"):
        with dbs.begin_nested():
            dbs.execute(insert, {"p": person, "c": m.collective_id, "k": clause.id})
    with dbs.begin_nested():  # the same clause from its own county's membership is fine
        dbs.execute(insert, {"p": person, "c": other, "k": clause.id})


def test_a_split_records_its_lineage_in_the_parcels_county(dbs):
    """A split (a new version of the parcel and two children, through parcel_guard's history
    rule and row_image) writes lineage rows that carry their child's county."""
    _, fields, _ = _household_with_land(dbs)
    p = fields[0]
    g = shapely.from_wkt(dbs.execute(text("SELECT ST_AsText(ST_Transform(geom, survey_srid)) "
                                          "FROM parcel WHERE id = :i"), {"i": p.id}).scalar())
    minx, miny, maxx, maxy = g.bounds
    cut = (minx + maxx) / 2
    parts = [(p.code[:14] + "91001",
              g.intersection(shapely.box(minx - 1, miny - 1, cut, maxy + 1)).wkt),
             (p.code[:14] + "91002",
              g.intersection(shapely.box(cut, miny - 1, maxx + 1, maxy + 1)).wkt)]
    kids = parcel_ops.split("bureau", p, parts, "分割")
    rows = dbs.execute(text("SELECT child_id, county_code FROM parcel_lineage "
                            "WHERE parent_id = :p"), {"p": p.id}).all()
    assert {c for c, _ in rows} == {k.id for k in kids}
    assert {k for _, k in rows} == {p.code[:6]}


def test_row_image_guards_skip_every_generated_column(dbs):
    """Guards that compare a row's image go through row_image(), which leaves out generated
    columns (NULL in NEW inside a BEFORE trigger); no trigger function of a table with a
    generated column compares the raw to_jsonb(NEW) — no list of names to keep up."""
    raw = db.session.execute(text("""
        SELECT DISTINCT t.tgrelid::regclass::text || ': ' || p.proname FROM pg_trigger t
        JOIN pg_proc p ON p.oid = t.tgfoid
        WHERE NOT t.tgisinternal AND p.prosrc ~* 'to_jsonb\\(NEW\\)'
          AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = t.tgrelid
                      AND a.attgenerated <> '' AND NOT a.attisdropped)""")).scalars().all()
    assert raw == []
    image = db.session.execute(text(
        "SELECT row_image(p) FROM parcel p LIMIT 1")).scalar()
    generated = set(db.session.execute(text(
        "SELECT attname FROM pg_attribute WHERE attrelid = 'parcel'::regclass "
        "AND attgenerated <> ''")).scalars())
    assert generated >= {"county_code", "geom_web"} and not generated & set(image)
    assert "code" in image
