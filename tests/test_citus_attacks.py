"""Attacks on the Citus-ready schema (0036_citus), made with SQL on the app's own connection
(the app role): forged or moved county codes, keys that no longer are unique by themselves, and
the public verification of a certificate when two counties share a token.

Each test fails on a real defect; the fixes are in 0040_atk_db and app/certificates.  The tests
after the 0041 marker attack 0041_citus2's keys (parcel, parcel_mutation, household,
collective, right_encumbrance by (id, county_code)) and the county columns of the
coordinator-local tables that point at them."""
from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from app.certificates import operations as certificates
from app.parcels import operations as parcel_ops
from app.rights import operations as rights
from tests.test_rights import _contract, _household_with_land


def _other(county: str) -> str:
    """A county code that is not `county` (same shape)."""
    return ("9" if county[0] != "9" else "8") + county[1:]


def _refused(dbs, sql: str, params: dict) -> bool:
    try:
        with dbs.begin_nested():
            dbs.execute(text(sql), params)
    except DBAPIError:
        return True
    return False


def _inconsistent(dbs) -> list:
    """Rows whose county is not their parent's."""
    return dbs.execute(text("""
        SELECT 'household_member', m.id FROM household_member m
          JOIN household h ON h.id = m.household_id WHERE m.county_code <> h.county_code
        UNION ALL SELECT 'membership', m.id FROM membership m
          JOIN collective c ON c.id = m.collective_id WHERE m.county_code <> c.county_code
        UNION ALL SELECT 'certificate', c.id FROM certificate c
          JOIN land_right r ON r.id = c.right_id WHERE c.county_code <> r.county_code
        UNION ALL SELECT 'land_right_parcel', p.id FROM land_right_parcel p
          JOIN land_right r ON r.id = p.right_id WHERE p.county_code <> r.county_code""")).all()


def test_a_child_county_updated_to_another_county_is_overwritten(dbs):
    hh, fields, _ = _household_with_land(dbs)
    r = _contract(dbs, hh, fields)
    certificates.issue("bureau", r)
    other = _other(hh.county_code)
    for table in ("household_member", "membership", "certificate", "land_right_parcel",
                  "charter_clause"):
        _refused(dbs, f"UPDATE {table} SET county_code = :c", {"c": other})  # noqa: S608
        n = dbs.execute(text(f"SELECT count(*) FROM {table} "  # noqa: S608
                             "WHERE county_code = :c"), {"c": other}).scalar()
        assert n == 0, table
    assert _inconsistent(dbs) == []


def test_a_child_inserted_with_a_forged_county_gets_its_parent_s(dbs):
    hh, _, _ = _household_with_land(dbs)
    other = _other(hh.county_code)
    person = dbs.execute(text("SELECT person_id FROM household_member WHERE household_id = :h "
                              "LIMIT 1"), {"h": hh.id}).scalar()
    got = dbs.execute(text("""
        INSERT INTO membership (person_id, collective_id, basis, began_on, county_code)
        SELECT :p, c.id, 'birth', DATE '2000-01-01', :c FROM collective c
        WHERE c.id <> :own ORDER BY c.id LIMIT 1 RETURNING county_code, collective_id"""),
        {"p": person, "c": other, "own": hh.collective_id}).first()
    if got is not None:
        assert got.county_code != other
    assert _inconsistent(dbs) == []


def test_a_household_moved_to_another_county_takes_its_members_or_is_refused(dbs):
    """Its members may not stay behind in the old county (a household in county B, its
    members' rows in county A)."""
    hh, _, _ = _household_with_land(dbs)
    moved = _other(hh.county_code) + hh.cbfbm[6:]
    refused = _refused(dbs, "UPDATE household SET cbfbm = :c WHERE id = :i",
                       {"c": moved, "i": hh.id})
    if not refused:
        assert _inconsistent(dbs) == []


def test_a_forged_id_cannot_repeat_another_county_s_key(dbs):
    """The primary key is (id, county_code): the id alone is no longer unique in the index.
    A row forged with another county's id would make every `WHERE id = …` (the ORM's
    identity, the guards' lookups, the cancellation's UPDATE) reach two rows."""
    hh, fields, _ = _household_with_land(dbs)
    r = _contract(dbs, hh, fields)
    other = _other(hh.county_code)
    _refused(dbs, """
        INSERT INTO land_right (id, kind, holder_name, fbfbm, contract_code)
        VALUES (:i, 'land_contract', '伪造', :f, :k)""",
        {"i": r.id, "f": other + "00000000", "k": other + "000000000001J"})
    n = dbs.execute(text("SELECT count(*) FROM land_right WHERE id = :i"), {"i": r.id}).scalar()
    assert n == 1, "a second land_right with the id of an existing one was accepted"
    # nor may an update give a row another's id
    cert = certificates.issue("bureau", r)
    assert _refused(dbs, "UPDATE certificate SET id = :j WHERE id = :i",
                    {"i": cert.id, "j": cert.id + 1000})
    assert _refused(dbs, "UPDATE household_member SET id = id + 100000 WHERE household_id = :h",
                    {"h": hh.id})
    # a member with the id of an existing member
    m = dbs.execute(text("SELECT id, person_id, household_id FROM household_member "
                         "WHERE left_on IS NULL ORDER BY id LIMIT 1")).one()
    hh2 = dbs.execute(text("SELECT id FROM household WHERE id <> :h ORDER BY id LIMIT 1"),
                      {"h": m.household_id}).scalar()
    dup = _refused(dbs, """INSERT INTO household_member (id, household_id, person_id, relation)
                           VALUES (:i, :h, :p, '99')""",
                   {"i": m.id, "h": hh2, "p": m.person_id})
    n = dbs.execute(text("SELECT count(*) FROM household_member WHERE id = :i"),
                    {"i": m.id}).scalar()
    assert dup or n == 1


def test_one_household_one_homestead_across_a_forged_collective_code(dbs):
    """uq_land_right_one_homestead is (holder_household_code, county_code) and a right's county
    comes from fbfbm first: a second current homestead of the same household, naming another
    county's collective, would pass it (一户一宅, 土地管理法 art 62)."""
    hh, _, home = _household_with_land(dbs)
    rights.register_homestead("bureau", hh.cbfbm, home, reason="确权")
    second = _refused(dbs, """
        INSERT INTO land_right (kind, holder_household_code, holder_name, fbfbm)
        VALUES ('homestead', :h, '伪造', :f)""",
        {"h": hh.cbfbm, "f": _other(hh.county_code) + "00000000"})
    n = dbs.execute(text("""SELECT count(*) FROM land_right WHERE holder_household_code = :h
                            AND kind = 'homestead' AND status = 'current'
                            AND end_lifespan IS NULL"""), {"h": hh.cbfbm}).scalar()
    assert second and n == 1


def test_a_right_s_codes_agree_on_its_county(dbs):
    """The county is derived from the first of three codes; they must not disagree."""
    hh, _, _ = _household_with_land(dbs)
    other = _other(hh.county_code)
    assert _refused(dbs, """
        INSERT INTO land_right (kind, holder_household_code, holder_name, fbfbm, contract_code)
        VALUES ('land_contract', :h, 'x', :f, :k)""",
        {"h": hh.cbfbm, "f": other + hh.cbfbm[6:14], "k": hh.cbfbm + "J"})


def test_verification_by_a_token_two_counties_share_is_never_ambiguous(dbs, client):
    """A certificate forged in another county with a real certificate's token: the public
    page must not show either one as verified (it cannot tell which), and must not 500."""
    hh, fields, _ = _household_with_land(dbs)
    r = _contract(dbs, hh, fields)
    cert = certificates.issue("bureau", r)
    assert certificates.by_token(cert.token).id == cert.id
    # a second token-holder: the token is unique per county only.  The schema forbids a second
    # right in another county with the same id, so build a real one in another county if the
    # seed has none: forge one with codes of another county (its own id from the sequence).
    other = _other(hh.county_code)
    fb = other + hh.cbfbm[6:14]
    rid = dbs.execute(text("""
        INSERT INTO land_right (kind, holder_name, fbfbm, holder_household_code, contract_code,
                                term_start, term_end)
        VALUES ('land_contract', '伪', :f, :h, :k, DATE '1999-01-01', DATE '2028-12-31')
        RETURNING id"""), {"f": fb, "h": fb + "0001", "k": fb + "0001J"}).scalar()
    dbs.execute(text("""
        INSERT INTO certificate (kind, number, right_uid, right_id, token, authority, issued_by,
                                 content, content_sha256)
        SELECT 'land_contract', :n, uid, id, :t, '伪造机关', 'x', CAST(:c AS jsonb), 'x'
        FROM land_right WHERE id = :r"""),
        {"n": fb + "0001J", "t": cert.token, "c": '{"verify_url": "x"}', "r": rid})
    n = dbs.execute(text("SELECT count(DISTINCT county_code) FROM certificate WHERE token = :t"),
                    {"t": cert.token}).scalar()
    assert n == 2
    assert certificates.by_token(cert.token) is None
    resp = client.get(f"/verify/{cert.token}")
    assert resp.status_code in (404, 200)
    assert "伪造机关" not in resp.get_data(as_text=True)
    assert cert.authority not in resp.get_data(as_text=True)


@pytest.mark.parametrize("sql", [
    "DELETE FROM household WHERE id = :h",
    "UPDATE household_member SET household_id = household_id WHERE household_id = :h",
])
def test_through_the_composite_keys_nothing_is_left_dangling(dbs, sql):
    hh, _, _ = _household_with_land(dbs)
    _refused(dbs, sql, {"h": hh.id})
    assert _inconsistent(dbs) == []


def test_a_right_has_one_current_version_across_counties(dbs):
    """uq_land_right_current_version is (uid, county_code): a first version forged with an
    existing right's uid and another county's codes would be a second current version of the
    same right (every `WHERE uid = … AND end_lifespan IS NULL` then finds two)."""
    hh, fields, _ = _household_with_land(dbs)
    r = _contract(dbs, hh, fields)
    fb = _other(hh.county_code) + hh.cbfbm[6:14]
    _refused(dbs, """
        INSERT INTO land_right (uid, version, kind, holder_name, fbfbm, holder_household_code,
                                contract_code, term_start, term_end)
        VALUES (:u, 1, 'land_contract', '伪', :f, :h, :k, DATE '1999-01-01',
                DATE '2028-12-31')""",
             {"u": r.uid, "f": fb, "h": fb + "0001", "k": fb + "0001J"})
    n = dbs.execute(text("SELECT count(*) FROM land_right WHERE uid = :u "
                         "AND end_lifespan IS NULL"), {"u": r.uid}).scalar()
    assert n == 1



def test_a_number_another_county_also_holds_is_refused(dbs):
    """Certificate numbers are unique per county only in the indexes; the edition chain
    (certificate_edition_chain, by number alone) still refuses another county's row with the
    same number — as a first edition, and as a next edition (its replaces_id would point
    across counties, which the composite foreign key refuses)."""
    hh, fields, _ = _household_with_land(dbs)
    r = _contract(dbs, hh, fields)
    cert = certificates.issue("bureau", r)
    fb = _other(hh.county_code) + hh.cbfbm[6:14]
    rid = dbs.execute(text("""
        INSERT INTO land_right (kind, holder_name, fbfbm, holder_household_code, contract_code,
                                term_start, term_end)
        VALUES ('land_contract', '伪', :f, :h, :k, DATE '1999-01-01', DATE '2028-12-31')
        RETURNING id"""), {"f": fb, "h": fb + "0001", "k": fb + "0001J"}).scalar()
    for edition, replaces, kind in ((1, None, "first"), (2, cert.id, "reissue")):
        assert _refused(dbs, """
            INSERT INTO certificate (kind, number, edition, issue_kind, replaces_id, right_uid,
                                     right_id, token, authority, issued_by, content,
                                     content_sha256)
            SELECT 'land_contract', :n, :e, :k, :rep, uid, id, 'forged', '伪造机关', 'x',
                   CAST('{}' AS jsonb), 'x' FROM land_right WHERE id = :r""",
            {"n": cert.number, "e": edition, "k": kind, "rep": replaces, "r": rid})
    assert [c.id for c in certificates.editions(cert)] == [cert.id]


# ---------------------------------------------------------------------------------------------
# 0041_citus2: parcel, parcel_mutation, household, collective and right_encumbrance keyed by
# (id, county_code); the coordinator-local tables that point at them carry the parent's county.

KEYED = ("parcel", "parcel_mutation", "household", "collective", "right_encumbrance")
# (table, id column, county column, parent)
LOCAL_REFS = [("import_feature", "parcel_id", "parcel_county_code", "parcel"),
              ("objection", "correction_parcel_id", "correction_parcel_county_code", "parcel"),
              ("membership_charter_rule", "collective_id", "collective_county_code", "collective"),
              ("membership_application", "collective_id", "collective_county_code", "collective"),
              ("member_assembly", "collective_id", "collective_county_code", "collective"),
              ("roll_notice", "collective_id", "collective_county_code", "collective"),
              ("share_quantification", "collective_id", "collective_county_code", "collective"),
              ("distribution", "collective_id", "collective_county_code", "collective"),
              ("share_holding", "household_id", "household_county_code", "household"),
              ("distribution_payout", "household_id", "household_county_code", "household"),
              ("market_encumbrance_consent", "encumbrance_id", "encumbrance_county_code",
               "right_encumbrance")]
LARGE_REFS = [("parcel", "collective_id", "collective"), ("household", "collective_id", "collective"),
              ("parcel_lineage", "parent_id", "parcel"), ("parcel_lineage", "child_id", "parcel"),
              ("parcel_lineage", "mutation_id", "parcel_mutation")]


def _stray_rows(dbs) -> list:
    """Rows whose (copied or own) county is not the county of the row they point at, and rows
    that point at nothing."""
    parts = [f"SELECT '{t}.{col}', count(*) FROM {t} x LEFT JOIN {p} y ON y.id = x.{col} "
             f"WHERE x.{col} IS NOT NULL AND (y.id IS NULL OR x.{cc} IS DISTINCT FROM "
             f"y.county_code) GROUP BY 1" for t, col, cc, p in LOCAL_REFS]
    parts += [f"SELECT '{t}.{col}', count(*) FROM {t} x LEFT JOIN {p} y ON y.id = x.{col} "
              f"WHERE x.{col} IS NOT NULL AND (y.id IS NULL OR x.county_code <> y.county_code) "
              "GROUP BY 1" for t, col, p in LARGE_REFS]
    return dbs.execute(text(" UNION ALL ".join(parts))).all()  # noqa: S608


def _elsewhere(dbs, county: str):
    """A collective and a household in another county than `county` (made with SQL)."""
    other = _other(county)
    village = other + "001001"
    dbs.execute(text("INSERT INTO division (code, name, level) VALUES (:v, '外县村', 'village') "
                     "ON CONFLICT DO NOTHING"), {"v": village})
    c = dbs.execute(text("INSERT INTO collective (fbfbm, name, village_code) "
                         "VALUES (:f, '外县组', :v) RETURNING id, county_code"),
                    {"f": village + "01", "v": village}).one()
    h = dbs.execute(text("INSERT INTO household (cbfbm, collective_id, name) "
                         "VALUES (:b, :c, '外县户') RETURNING id, county_code"),
                    {"b": village + "010001", "c": c.id}).one()
    assert c.county_code == h.county_code == other
    return c, h


def test_an_id_of_another_county_s_row_is_never_taken(dbs):
    """The key is (id, county_code): a row inserted naming an existing row's id, in another
    county, gets an id of its own from the sequence; an UPDATE of an id is refused."""
    hh, fields, _ = _household_with_land(dbs)
    c, h = _elsewhere(dbs, hh.county_code)
    col_id = dbs.execute(text("""
        INSERT INTO collective (id, fbfbm, name, village_code)
        VALUES (:i, :f, 'x', :v) RETURNING id"""),
        {"i": hh.collective_id, "f": _other(hh.county_code) + "00100102",
         "v": _other(hh.county_code) + "001001"}).scalar()
    hh_id = dbs.execute(text("""
        INSERT INTO household (id, cbfbm, collective_id, name)
        VALUES (:i, :b, :c, 'x') RETURNING id"""),
        {"i": hh.id, "b": _other(hh.county_code) + "001001010002", "c": c.id}).scalar()
    m_id = dbs.execute(text("""
        INSERT INTO parcel_mutation (id, kind, by, reason, county_code)
        SELECT id, 'split', 'x', 'x', :k FROM parcel_mutation ORDER BY id LIMIT 1
        RETURNING id"""), {"k": _other(hh.county_code)}).scalar()
    assert col_id != hh.collective_id and hh_id != hh.id
    r = _contract(dbs, hh, fields)
    from app.market import operations as market
    e = market.record_encumbrance("bureau", r, "seizure", "某县人民法院", "（2026）冀0101执2号",
                                  "查封")
    for table, i in (("collective", hh.collective_id), ("household", hh.id),
                     ("parcel", fields[0].id), ("right_encumbrance", e.id)):
        n = dbs.execute(text(f"SELECT count(*) FROM {table} WHERE id = :i"),  # noqa: S608
                        {"i": i}).scalar()
        assert n == 1, table
        assert _refused(dbs, f"UPDATE {table} SET id = id + 1000000 WHERE id = :i",  # noqa: S608
                        {"i": i}), table
    if m_id is not None:
        n = dbs.execute(text("SELECT count(*) FROM parcel_mutation WHERE id = :i"),
                        {"i": m_id}).scalar()
        assert n == 1
    # the parcel itself (its guard refuses an UPDATE anyway): an INSERT naming its id
    _refused(dbs, """
        INSERT INTO parcel (id, kind, code, collective_id, scmj, scmjm, survey_srid, geom)
        SELECT id, kind, :code, :c, scmj, scmjm, survey_srid, ST_Translate(geom, 0.5, 0)
        FROM parcel WHERE id = :i""",
        {"i": fields[0].id, "code": _other(hh.county_code) + "00100101" + "00001", "c": c.id})
    assert dbs.execute(text("SELECT count(*) FROM parcel WHERE id = :i"),
                       {"i": fields[0].id}).scalar() == 1


def test_a_forged_county_on_a_reference_is_refused_or_replaced(dbs):
    """The coordinator-local tables carry their parent's county: filled by the database when
    left out, refused by the composite foreign key when named wrong (on insert or update)."""
    hh, _, _ = _household_with_land(dbs)
    c, _h = _elsewhere(dbs, hh.county_code)
    # left out: filled with the collective's
    got = dbs.execute(text("""
        INSERT INTO membership_charter_rule (collective_id, updated_by) VALUES (:c, 'x')
        RETURNING collective_county_code"""), {"c": c.id}).scalar()
    assert got == c.county_code
    # named wrong: refused
    assert _refused(dbs, "UPDATE membership_charter_rule SET collective_county_code = :k "
                         "WHERE collective_id = :c", {"k": hh.county_code, "c": c.id})
    assert _refused(dbs, """
        INSERT INTO membership_charter_rule (collective_id, updated_by, collective_county_code)
        VALUES (:c, 'x', :k)""", {"c": hh.collective_id, "k": c.county_code})
    # on every table that has rows: an update naming another county is refused
    for table, _col, cc, _p in LOCAL_REFS:
        _refused(dbs, f"UPDATE {table} SET {cc} = :k WHERE {cc} IS NOT NULL",  # noqa: S608
                 {"k": _other(hh.county_code)[:5] + "7"})
    # a dangling id with no county cannot slip past MATCH FULL
    assert _refused(dbs, "INSERT INTO membership_charter_rule (collective_id, updated_by) "
                         "VALUES (-1, 'x')", {})
    assert _stray_rows(dbs) == []


def test_a_child_moved_to_another_county_s_parent(dbs):
    """A household or a parcel cannot point at another county's collective; a lineage cannot
    join two counties or cite another county's mutation; a collective or a household cannot
    change county under the rows that point at it.  A coordinator-local row moved to another
    county's parent takes that parent's county."""
    hh, fields, _ = _household_with_land(dbs)
    c, h = _elsewhere(dbs, hh.county_code)
    assert _refused(dbs, "UPDATE household SET collective_id = :c WHERE id = :h",
                    {"c": c.id, "h": hh.id})
    assert _refused(dbs, "UPDATE collective SET fbfbm = :f, village_code = :v WHERE id = :c",
                    {"f": _other(hh.county_code) + "00100109",
                     "v": _other(hh.county_code) + "001001", "c": hh.collective_id})
    assert _refused(dbs, "UPDATE household SET cbfbm = :b WHERE id = :h",
                    {"b": _other(hh.county_code) + hh.cbfbm[6:], "h": hh.id})
    m = dbs.execute(text("INSERT INTO parcel_mutation (kind, by, reason, county_code) "
                         "VALUES ('split', 'x', 'x', :k) RETURNING id"),
                    {"k": c.county_code}).scalar()
    p, q = fields[0].id, fields[-1].id
    # a lineage citing another county's mutation
    assert _refused(dbs, "INSERT INTO parcel_lineage (parent_id, child_id, mutation_id) "
                         "VALUES (:p, :q, :m)", {"p": p, "q": q, "m": m})
    # ... or forging the mutation's county afterwards
    # a lineage of the county's own (an amendment: lineage rows link only versions ended and
    # made by the same change, 0051)
    new = parcel_ops.amend("bureau", fields[0], "更名", name="新名")
    own = dbs.execute(text("SELECT mutation_id FROM parcel_lineage WHERE child_id = :c"),
                      {"c": new.id}).scalar()
    assert _refused(dbs, "UPDATE parcel_mutation SET county_code = :k WHERE id = :m",
                    {"k": c.county_code, "m": own})
    # the lineage's own county is its child's, whatever an UPDATE names (0036's trigger)
    _refused(dbs, "UPDATE parcel_lineage SET county_code = :k WHERE mutation_id = :m",
             {"k": c.county_code, "m": own})
    assert dbs.execute(text("SELECT county_code FROM parcel_lineage WHERE mutation_id = :m"),
                       {"m": own}).scalar() == hh.county_code
    # a coordinator-local row moved to another county's collective follows it
    dbs.execute(text("INSERT INTO membership_charter_rule (collective_id, updated_by) "
                     "VALUES (:c, 'x') ON CONFLICT DO NOTHING"), {"c": hh.collective_id})
    got = dbs.execute(text("""
        UPDATE membership_charter_rule SET collective_id = :c WHERE collective_id = :own
        RETURNING collective_county_code"""), {"c": c.id, "own": hh.collective_id}).scalar()
    assert got == c.county_code
    assert _stray_rows(dbs) == []


def test_ids_advance_by_one_and_come_back_to_the_orm(dbs):
    """The id of each table keyed (id, county_code) comes from its sequence once per row (the
    trigger; no column default spending a second value), and the ORM gets it back."""
    from app.rights import operations as rops
    from app.rights.models import Right

    def last(seq: str) -> int:
        return dbs.execute(text(f"SELECT last_value FROM {seq}")).scalar()

    hh, fields, _ = _household_with_land(dbs)
    r = _contract(dbs, hh, fields)
    assert r.id == last("land_right_id_seq")
    new = rops.extend_contract("bureau", r, 30, "第二轮土地承包到期后再延长三十年")
    assert new.id == r.id + 1 == last("land_right_id_seq")
    dbs.expire_all()
    assert dbs.get(Right, new.id).uid == r.uid
    ids = sorted(p.id for p in dbs.get(Right, new.id).parcels)
    assert ids == list(range(ids[0], ids[0] + len(fields))) and ids[-1] == last(
        "land_right_parcel_id_seq")
    cert = certificates.issue("bureau", new)
    assert cert.id == last("certificate_id_seq")
    for t in ("land_right", "land_right_parcel", "certificate", "household_member",
              "membership", "charter_clause"):
        assert dbs.execute(text("SELECT column_default FROM information_schema.columns WHERE "
                                "table_name = :t AND column_name = 'id'"),
                           {"t": t}).scalar() is None, t
