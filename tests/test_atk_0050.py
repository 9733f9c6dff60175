"""Attacks on 0050_mutation_hands_on: ending a land-contract or homestead right on the ground
'mutation' without the split or merge that handed one of its parcels to successor parcels —
through the operation (app.rights.operations.end_right) with crafted mutation ids, and with SQL
on the app's own connection (the `dbs` session: the app role) forging the mutation's record.

Each test asserts the safe behaviour: it fails while the hole is there.  Fixes: 0051_atk_mutation.
"""
from __future__ import annotations

import datetime as dt

import pytest
import shapely
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from app.errors import DomainError
from app.parcels import operations as parcels
from app.parcels.models import Parcel
from app.people.models import Household
from app.rights import operations as rights
from app.rights.models import Right
from tests.test_atk_db_evening import _fails
from tests.test_rights import _contract, _household_with_land

END = """UPDATE land_right SET status = 'ended', end_ground = 'mutation',
    ended_on = current_date, end_record_id = :m WHERE id = :id"""


def _halves(dbs, p: Parcel, tag: str) -> list[tuple[str, str]]:
    g = shapely.from_wkt(dbs.execute(text(
        "SELECT ST_AsText(ST_Transform(geom, survey_srid)) FROM parcel WHERE id = :i"),
        {"i": p.id}).scalar())
    minx, miny, maxx, maxy = g.bounds
    cut = (minx + maxx) / 2
    return [(p.code[:14] + tag + "1", g.intersection(
                shapely.box(minx - 1, miny - 1, cut, maxy + 1)).wkt),
            (p.code[:14] + tag + "2", g.intersection(
                shapely.box(cut, miny - 1, maxx + 1, maxy + 1)).wkt)]


def _mutation_of(dbs, child: Parcel) -> int:
    return dbs.scalar(text("SELECT mutation_id FROM parcel_lineage WHERE child_id = :c"),
                      {"c": child.id})


def _current(dbs, uid) -> Right:
    dbs.expire_all()
    return dbs.scalar(select(Right).where(Right.uid == uid, Right.end_lifespan.is_(None)))


def _other_household_field(dbs, hh):
    """A current contract parcel of another household of the same collective."""
    other = dbs.scalars(select(Household).where(
        Household.collective_id == hh.collective_id, Household.cbfbm != hh.cbfbm)
        .order_by(Household.id)).first()
    return dbs.scalars(select(Parcel).where(
        Parcel.household_code == other.cbfbm, Parcel.kind == "contract",
        Parcel.end_lifespan.is_(None))).first()


def assert_end_refused(dbs, r: Right, m) -> None:
    """The right does not end on mutation m: the operation and the database both refuse it,
    each naming the rule, and the right stays current."""
    with pytest.raises(DomainError) as e:
        rights.end_right("bureau", r, "mutation", dt.date.today(), evidence="变更",
                         reason="地块变更", record=m)
    assert e.value.code == "right.end.evidence", e.value.code
    err = _fails(dbs, END, {"m": m, "id": r.id})
    assert err is not None and "split or merge" in err, err
    assert _current(dbs, r.uid).status == "current"


# --- 1. the operation with crafted mutation ids (pinned: refused) ------------------------------

def test_a_split_of_another_households_parcel_is_no_ground(dbs):
    hh, fields, _ = _household_with_land(dbs)
    r = _contract(dbs, hh, fields)
    theirs = _other_household_field(dbs, hh)
    kids = parcels.split("bureau", theirs, _halves(dbs, theirs, "9300"), "分割")
    assert_end_refused(dbs, r, _mutation_of(dbs, kids[0]))


def test_a_merge_that_made_the_rights_parcel_is_no_ground(dbs):
    """The right was registered over the merge's successor: the merge handed nothing of it."""
    hh, fields, _ = _household_with_land(dbs)
    a, b = (parcels.split("bureau", fields[0], _halves(dbs, fields[0], "9310"), "分割"))
    merged = parcels.merge("bureau", [a, b], fields[0].code[:14] + "93200", "合并")
    r = _contract(dbs, hh, [merged] + list(fields[1:]))
    assert_end_refused(dbs, r, _mutation_of(dbs, merged))


def test_a_split_into_one_part_is_a_renaming_and_no_ground(dbs):
    """A 'split' into a single part covering the whole parcel hands the right to nobody: it is
    a new number for the same land.  Refused by the split itself, and such a record (made on
    the app's connection) proves nothing to the database."""
    hh, fields, _ = _household_with_land(dbs)
    r = _contract(dbs, hh, fields)
    p = fields[0]
    whole = dbs.execute(text("SELECT ST_AsText(ST_Transform(geom, survey_srid)) FROM parcel "
                             "WHERE id = :i"), {"i": p.id}).scalar()
    with pytest.raises(DomainError) as e:
        parcels.split("bureau", p, [(p.code[:14] + "93301", whole)], "分割")
    assert e.value.code == "parcel.split.parts"
    assert "art 27" in e.value.full("en") and "第二十七条" in e.value.full("zh")
    assert "分割" in e.value.message("zh")
    # the same by hand: the parcel ended, one successor, a lineage row under a 'split'
    m = dbs.scalar(text("INSERT INTO parcel_mutation (kind, by, reason, county_code) "
                        "VALUES ('split', 'x', 'x', :k) RETURNING id"), {"k": p.code[:6]})
    dbs.execute(text("UPDATE parcel SET end_lifespan = clock_timestamp() WHERE id = :i"),
                {"i": p.id})
    kid = dbs.scalar(text("""INSERT INTO parcel (kind, code, collective_id, household_code,
        scmj, scmjm, survey_srid, geom) SELECT kind, :c, collective_id, household_code, scmj,
        scmjm, survey_srid, geom FROM parcel WHERE id = :i RETURNING id"""),
        {"c": p.code[:14] + "93302", "i": p.id})
    dbs.execute(text("INSERT INTO parcel_lineage (parent_id, child_id, mutation_id) "
                     "VALUES (:p, :c, :m)"), {"p": p.id, "c": kid, "m": m})
    err = _fails(dbs, END, {"m": m, "id": r.id})
    assert err is not None and "split or merge" in err, err


def test_the_mutation_ground_cannot_carry_settling_in_town(dbs):
    """A lawful split, and the settlement written beside it: the forbidden ground in disguise."""
    hh, fields, _ = _household_with_land(dbs)
    r = _contract(dbs, hh, fields)
    kids = parcels.split("bureau", fields[0], _halves(dbs, fields[0], "9340"), "分割")
    r = _current(dbs, r.uid)
    with pytest.raises(DomainError) as e:
        rights.end_right("bureau", r, "mutation", dt.date.today(), evidence="分割",
                         reason="户主已进城落户", record=_mutation_of(dbs, kids[0]))
    assert e.value.code in ("guard.text", "right.end.forbidden_ground"), e.value.code
    assert _current(dbs, r.uid).status == "current"


# --- 2. SQL on the app's own connection ----------------------------------------------------------

def test_a_rename_cannot_be_relabelled_a_split(dbs):
    hh, fields, _ = _household_with_land(dbs)
    r = _contract(dbs, hh, fields)
    new = parcels.amend("bureau", fields[0], "更名", name="新名")
    m = _mutation_of(dbs, new)
    assert _fails(dbs, "UPDATE parcel_mutation SET kind = 'split' WHERE id = :m", {"m": m})
    dbs.execute(text("SAVEPOINT s"))
    try:  # even were the relabel to go through, the end is refused in the same transaction
        dbs.execute(text("UPDATE parcel_mutation SET kind = 'split' WHERE id = :m"), {"m": m})
    except Exception:  # noqa: BLE001 — refused: nothing more to try
        dbs.execute(text("ROLLBACK TO SAVEPOINT s"))
        return
    err = _fails(dbs, END, {"m": m, "id": r.id})
    dbs.execute(text("ROLLBACK TO SAVEPOINT s"))
    assert err is not None, "a rename relabelled a split ended the right"


def test_a_lineage_row_cannot_be_pointed_at_the_rights_parcel(dbs):
    """Someone else's split, its lineage row re-pointed (UPDATE) or a new one added (INSERT)
    with the right's own current parcel as the parent."""
    hh, fields, _ = _household_with_land(dbs)
    r = _contract(dbs, hh, fields)
    theirs = _other_household_field(dbs, hh)
    kids = parcels.split("bureau", theirs, _halves(dbs, theirs, "9350"), "分割")
    m = _mutation_of(dbs, kids[0])
    assert _fails(dbs, "UPDATE parcel_lineage SET parent_id = :p WHERE mutation_id = :m",
                  {"p": fields[0].id, "m": m})
    assert _fails(dbs, "INSERT INTO parcel_lineage (parent_id, child_id, mutation_id) "
                       "VALUES (:p, :c, :m)", {"p": fields[0].id, "c": kids[0].id, "m": m})
    # a fresh 'split' of the right's (still current) parcel into parcels that already exist
    f = dbs.scalar(text("INSERT INTO parcel_mutation (kind, by, reason, county_code) "
                        "VALUES ('split', 'x', 'x', :k) RETURNING id"), {"k": hh.cbfbm[:6]})
    for k in kids:
        assert _fails(dbs, "INSERT INTO parcel_lineage (parent_id, child_id, mutation_id) "
                           "VALUES (:p, :c, :m)", {"p": fields[0].id, "c": k.id, "m": f})
    err = _fails(dbs, END, {"m": m, "id": r.id})
    assert err is not None and "split or merge" in err, err
    err = _fails(dbs, END, {"m": f, "id": r.id})
    assert err is not None and "split or merge" in err, err


def test_a_parcel_cannot_be_slipped_into_a_right_to_borrow_its_split(dbs):
    """Another household's parcel was split; a land_right_parcel row naming that parcel is
    added to the right's current version (or an old one) so that 'any version of the right'
    held it.  A version's parcels are fixed when it is made, and the split handed on a parcel
    the right did not hold then."""
    hh, fields, _ = _household_with_land(dbs)
    r = _contract(dbs, hh, fields)
    theirs = _other_household_field(dbs, hh)
    kids = parcels.split("bureau", theirs, _halves(dbs, theirs, "9360"), "分割")
    m = _mutation_of(dbs, kids[0])
    assert _fails(dbs, "INSERT INTO land_right_parcel (right_id, parcel_uid, parcel_code) "
                       "VALUES (:r, :u, :c)", {"r": r.id, "u": theirs.uid, "c": theirs.code})
    dbs.execute(text("SAVEPOINT s"))
    try:
        dbs.execute(text("INSERT INTO land_right_parcel (right_id, parcel_uid, parcel_code) "
                         "VALUES (:r, :u, :c)"), {"r": r.id, "u": theirs.uid, "c": theirs.code})
    except Exception:  # noqa: BLE001 — refused
        dbs.execute(text("ROLLBACK TO SAVEPOINT s"))
        return
    err = _fails(dbs, END, {"m": m, "id": r.id})
    dbs.execute(text("ROLLBACK TO SAVEPOINT s"))
    assert err is not None and "split or merge" in err, err


def test_a_parcel_the_right_let_go_before_its_split_is_no_ground(dbs):
    """The right's version drops a parcel (a new version without it, made on the app's
    connection), the parcel passes to another household's contract, and is split there: the
    split handed on a parcel of the other right.  'Any version of the right' once held it —
    but none held it when it was handed on."""
    hh, fields, _ = _household_with_land(dbs)
    assert len(fields) >= 2
    r = _contract(dbs, hh, fields)
    dropped = fields[0]
    v = next_version_by_hand(dbs, r.id)
    for p in fields[1:]:
        dbs.execute(text("INSERT INTO land_right_parcel (right_id, parcel_uid, parcel_code) "
                         "VALUES (:r, :u, :c)"), {"r": v, "u": p.uid, "c": p.code})
    theirs = _other_household_field(dbs, hh)
    other = rights.add_parcels("bureau", theirs.household_code, [(dropped, dropped.scmj)],
                               dt.date(2058, 12, 31), "互换")
    kids = parcels.split("bureau", dropped, _halves(dbs, dropped, "9370"), "分割")
    assert _current(dbs, other.uid).version == other.version + 1  # carried: the other right's
    m = _mutation_of(dbs, kids[0])
    once_held = dbs.scalar(text("""SELECT count(*) FROM parcel_lineage l
        JOIN parcel_mutation m ON m.id = l.mutation_id AND m.kind IN ('split', 'merge')
        JOIN parcel p ON p.id = l.parent_id JOIN land_right_parcel rp ON rp.parcel_uid = p.uid
        JOIN land_right v ON v.id = rp.right_id AND v.uid = :u WHERE l.mutation_id = :m"""),
        {"u": r.uid, "m": m})
    assert once_held  # 0050's test: passed
    assert_end_refused(dbs, _current(dbs, r.uid), m)


def test_the_proof_cannot_be_shadowed_or_its_triggers_switched_off(dbs):
    for sql in ("CREATE FUNCTION public.land_right_end_proof(r land_right) RETURNS void "
                "LANGUAGE sql AS 'SELECT'",
                "CREATE OR REPLACE FUNCTION land_right_end_proof(r land_right) RETURNS void "
                "LANGUAGE sql AS 'SELECT'",
                "ALTER TABLE land_right DISABLE TRIGGER land_right_proof",
                "ALTER TABLE parcel_lineage DISABLE TRIGGER ALL",
                "SET LOCAL session_replication_role = replica"):
        assert _fails(dbs, sql), sql
    hh, fields, _ = _household_with_land(dbs)
    r = _contract(dbs, hh, fields)
    new = parcels.amend("bureau", fields[0], "更名", name="新名")
    # a temporary schema first on the path: the function's own path (public, pg_temp) wins
    err = None
    try:
        with dbs.begin_nested():
            dbs.execute(text("SET LOCAL search_path = pg_temp, public"))
            dbs.execute(text(END), {"m": _mutation_of(dbs, new), "id": r.id})
    except DBAPIError as e:
        err = str(e.orig).split("\n")[0]
    dbs.execute(text("SET LOCAL search_path = \"$user\", public"))
    assert err is not None and "split or merge" in err, err


def test_a_version_cannot_be_kept_alive_past_its_replacement(dbs):
    """A version closed at a future time would "still hold" a parcel its successor no longer
    names when that parcel is later split under someone else's right."""
    hh, fields, _ = _household_with_land(dbs)
    r = _contract(dbs, hh, fields)
    assert _fails(dbs, "UPDATE land_right SET end_lifespan = '2100-01-01' WHERE id = :i",
                  {"i": r.id})


# --- 3. concurrency: the record another session could change or delete under the end -----------

def test_no_session_can_change_or_delete_a_mutation_or_its_lineage(dbs):
    """A race between ending a right on a mutation and changing that mutation needs the
    mutation to be changeable: its row and its lineage are history for every session of the
    app role (no UPDATE, no DELETE), so an end that saw a lawful split keeps a lawful split."""
    hh, fields, _ = _household_with_land(dbs)
    kids = parcels.split("bureau", fields[0], _halves(dbs, fields[0], "9380"), "分割")
    m = _mutation_of(dbs, kids[0])
    for sql in ("UPDATE parcel_mutation SET reason = 'x' WHERE id = :m",
                "UPDATE parcel_mutation SET kind = 'attribute' WHERE id = :m",
                "DELETE FROM parcel_mutation WHERE id = :m",
                "UPDATE parcel_lineage SET mutation_id = mutation_id WHERE mutation_id = :m",
                "DELETE FROM parcel_lineage WHERE mutation_id = :m"):
        assert _fails(dbs, sql, {"m": m}), sql
    assert dbs.scalar(text("SELECT count(*) FROM parcel_lineage WHERE mutation_id = :m"),
                      {"m": m}) == 2


# --- 4. settling in town, with the 'mutation' ground as its disguise ---------------------------

def test_a_settlement_cannot_end_the_right_under_the_mutation_ground(dbs):
    """The holder's hukou moves to town and, in the same change, the right ends on a lawful
    split of one of its parcels: settling in town ends no right (乡村振兴促进法 art 55) — the
    database refuses any change to a right in a transaction that moves a hukou."""
    hh, fields, _ = _household_with_land(dbs)
    r = _contract(dbs, hh, fields)
    kids = parcels.split("bureau", fields[0], _halves(dbs, fields[0], "9390"), "分割")
    r = _current(dbs, r.uid)
    m = _mutation_of(dbs, kids[0])
    assert dbs.scalar(text("SELECT mutation_handed_on(:u, :m)"), {"u": r.uid, "m": m})
    # the household's land re-registered under a new contract, so that the split alone would
    # be a lawful ground (0053: a right carried over its successors does not end on its split)
    rights.register_land_contract("bureau", hh.cbfbm, hh.cbfbm + "J", [
        (p, None) for p in dbs.scalars(select(Parcel).where(
            Parcel.uid.in_([rp.parcel_uid for rp in r.parcels]),
            Parcel.end_lifespan.is_(None)))], dt.date.today(), r.term_end, reason="换发")
    dbs.execute(text("""INSERT INTO hukou_move (person_id, to_division_code, to_address,
        moved_on, moved_by) VALUES (:p, '140403', '城区某小区', current_date, 'hukou')"""),
                {"p": hh.current_members[0].person_id})
    err = _fails(dbs, END, {"m": m, "id": r.id})
    assert err is not None and "settlement.rights_guard" in err, err
    with pytest.raises(DBAPIError) as e:  # the operation meets the same refusal
        with dbs.begin_nested():
            rights.end_right("bureau", r, "mutation", dt.date.today(), evidence="分割",
                             reason="地块分割", record=m)
    assert "settlement.rights_guard" in str(e.value.orig)
    assert _current(dbs, r.uid).status == "current"


def test_a_homestead_right_does_not_end_on_its_parcels_amendment_or_a_neighbours_split(dbs):
    """The homestead right (宅基地使用权) goes the same way: its parcel amended (the house
    parcel renamed, its boundary corrected) or a neighbour's parcel split hands it to nobody."""
    hh, fields, home = _household_with_land(dbs)
    h = rights.register_homestead("bureau", hh.cbfbm, home, "确权")
    renamed = parcels.amend("bureau", home, "更名", name="新宅")
    assert_end_refused(dbs, h, _mutation_of(dbs, renamed))
    theirs = _other_household_field(dbs, hh)
    kids = parcels.split("bureau", theirs, _halves(dbs, theirs, "9400"), "分割")
    assert_end_refused(dbs, h, _mutation_of(dbs, kids[0]))


def next_version_by_hand(dbs, right_id: int) -> int:
    """As the app role, past the operation: the right's current version ended and a copy of it
    inserted as the next version, with no parcels yet; its id."""
    dbs.execute(text("UPDATE land_right SET end_lifespan = clock_timestamp() WHERE id = :i"),
                {"i": right_id})
    return dbs.scalar(text("""INSERT INTO land_right (uid, version, kind, holder_household_code,
        contract_code, obtained_by, fbfbm, term_start, term_end, begin_lifespan)
        SELECT uid, version + 1, kind, holder_household_code, contract_code, obtained_by, fbfbm,
               term_start, term_end, clock_timestamp() FROM land_right WHERE id = :i
        RETURNING id"""), {"i": right_id})
