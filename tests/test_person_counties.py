"""One person row per county (issue 18 §3; docs/scaling.md §3; migrations 0044, 0045).

A person placed on the rolls of a second county (a household place, a membership) gets a row
there: the same ID number, an id of its own.  Every rule about the human — what settling in town
must leave untouched and what the notice says is kept, a withdrawal's check against a recent
settlement, a place ended on "joined another household", a person's memberships and places —
reads every row of the ID number, so none of them sees one county only.  Real PostgreSQL; the
second county is made here (a division, a collective, a household).
"""
from __future__ import annotations

import contextlib
import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from app.certificates import operations as certificates
from app.collectives import operations as collectives
from app.collectives.models import Collective
from app.errors import DomainError
from app.membership import operations as membership
from app.people import operations as people
from app.people.models import Household, HouseholdMember, Person
from app.rights import operations as rights
from app.settlement import operations as settlement
from app.withdrawal import operations as withdrawal
from tests.conftest import user
from tests.test_rights import _contract, _household_with_land
from tests.test_settlement import basis_fields, family, snapshot, town
from tests.test_withdrawal import _all_consents

TODAY = dt.date.today()


@pytest.fixture()
def certified(dbs):
    """A household with a land-contract right, a homestead right and certificates (as in
    tests/test_settlement.py)."""
    hh, fields, home = _household_with_land(dbs)
    contract = _contract(dbs, hh, fields, end=dt.date(2058, 12, 31))
    homestead = rights.register_homestead("bureau", hh.cbfbm, home, reason="确权")
    certificates.issue("bureau", contract)
    certificates.issue("bureau", homestead)
    return hh


@pytest.fixture()
def holder(dbs):
    """The demo farmer's household with a certified land-contract right, in a pilot county (as
    in tests/test_withdrawal.py)."""
    hh, fields, _ = _household_with_land(dbs)
    assert user("farmer").household_code == hh.cbfbm
    right = _contract(dbs, hh, fields, end=dt.date(2058, 12, 31))
    certificates.issue("bureau", right)
    withdrawal.enable_pilot("bureau", hh.cbfbm[:6])
    return hh, right


def _elsewhere(dbs, hh: Household) -> tuple[Collective, Household]:
    """A collective and a household of another county than `hh`'s."""
    county = str(int(hh.cbfbm[:6]) % 999_999 + 1).zfill(6)
    village = county + "001001"
    dbs.execute(text("INSERT INTO division (code, name, level) VALUES (:v, '外县某村', 'village')"),
                {"v": village})
    cid = dbs.execute(text("INSERT INTO collective (fbfbm, name, village_code) "
                           "VALUES (:f, '外县某村民小组', :v) RETURNING id"),
                      {"f": village + "01", "v": village}).scalar()
    hid = dbs.execute(text("INSERT INTO household (cbfbm, collective_id, name) "
                           "VALUES (:c, :k, '外县某户') RETURNING id"),
                      {"c": village + "010001", "k": cid}).scalar()
    return dbs.get(Collective, cid), dbs.get(Household, hid)


def _rows(dbs, person: Person) -> dict[str, int]:
    """county -> id of every row with this person's ID number."""
    return dict(dbs.execute(select(Person.county_code, Person.id).where(
        Person.id_number == person.id_number)).all())


def test_placement_in_a_second_county_makes_the_persons_row_there(dbs, certified):
    hh = certified
    head = hh.head
    coll, other = _elsewhere(dbs, hh)
    here, there = hh.cbfbm[:6], other.cbfbm[:6]
    assert head.county_code == here and _rows(dbs, head) == {here: head.id}
    place = people.add_member("bureau", other, head, "10", joined_on=TODAY)
    m = collectives.admit("bureau", head, coll, "marriage", TODAY)
    rows = _rows(dbs, head)
    assert set(rows) == {here, there} and rows[here] == head.id
    # the place and the membership name the person's row in their own county, one row only
    assert place.person_id == m.person_id == rows[there] != head.id
    twin = dbs.get(Person, rows[there])
    assert (twin.name, twin.birth_date, twin.hukou_division_code) == \
        (head.name, head.birth_date, head.hukou_division_code)
    assert sorted(people.rows_of([head.id])) == sorted(people.rows_of([twin.id])) == \
        sorted(rows.values())
    assert people.same_person(head.id, twin.id)
    assert not people.same_person(head.id, family(hh)[1][0]["person_id"])
    # a second place in that county reuses the row; the same household twice is refused
    with pytest.raises(DomainError) as e:
        people.add_member("bureau", other, head, "10", joined_on=TODAY)
    assert e.value.code == "household.member.duplicate"
    assert len(_rows(dbs, head)) == 2
    # what the person page shows: both counties' places and memberships
    memberships, places = people.places_of(head.id)
    assert {x.county_code for x in memberships} == {here, there}
    assert {x.household_id for x in places} >= {hh.id, other.id}
    assert {r.fbfbm for r in collectives.memberships_of(head.id)} >= {coll.fbfbm}
    assert {x.id for x in membership.my_membership(twin.id)["memberships"]} == \
        {x.id for x in memberships}


def test_settling_from_one_county_keeps_the_other_countys_rights_too(dbs, certified):
    """The settlement names the person's row of their home county; the snapshot the guard
    compares, the notice of rights kept and the person's applications reach the other
    county's place and membership, and the hukou moves on both rows — their counties do not."""
    hh = certified
    head = hh.head
    coll, other = _elsewhere(dbs, hh)
    people.add_member("bureau", other, head, "10", joined_on=TODAY)
    collectives.admit("bureau", head, coll, "marriage", TODAY)
    rows = _rows(dbs, head)
    persons = [head.id]
    before = snapshot(dbs, persons)
    assert {r["county_code"] for r in before["household_member"]} == set(rows)
    assert {r["county_code"] for r in before["membership"]} == set(rows)
    t = town(dbs)
    a = settlement.apply("hukou", head, t, [], **basis_fields(dbs, "owned_house", head, t, TODAY))
    settlement.approve("hukou", a, conditions=["present_originals"], note="材料齐全，准予落户")
    dbs.expire_all()
    assert snapshot(dbs, persons) == before
    for county, pid in rows.items():
        p = dbs.get(Person, pid)
        assert (p.hukou_division_code, p.county_code) == (t.division_code, county)
    kept = settlement.rights_kept(a)["people"]
    assert {h.cbfbm for h in kept[0]["households"]} >= {hh.cbfbm, other.cbfbm}
    assert coll.fbfbm in {m.fbfbm for m in kept[0]["memberships"]}
    assert [x.id for x in settlement.applications_of_person(rows[other.cbfbm[:6]])] == [a.id]
    assert membership.settled_in_town(rows[other.cbfbm[:6]])


def test_a_settlement_recorded_in_another_county_flags_the_withdrawal(dbs, holder):
    """The household head's row of another county (their membership there) settled in town 40
    days ago: the withdrawal of the household's right is flagged, by the application and by
    the database (withdrawal_flag_after_settlement), and the settling officer is a participant
    (withdrawal_participants) who cannot check voluntariness."""
    hh, right = holder
    head = hh.head
    coll, _ = _elsewhere(dbs, hh)
    collectives.admit("bureau", head, coll, "marriage", TODAY - dt.timedelta(days=400))
    there = _rows(dbs, head)[coll.fbfbm[:6]]
    assert there != head.id
    app_id = dbs.execute(text("""
        INSERT INTO settlement_application (applicant_id, town_id, basis,
            property_certificate_no, living_there, residence_address, destination,
            destination_address, status, created_by)
        SELECT :p, min(id), 'owned_house', 'X', true, 'addr', 'house_address', 'addr',
               'submitted', 'hukou' FROM settlement_town RETURNING id"""), {"p": there}).scalar()
    dbs.execute(text("""INSERT INTO hukou_move (person_id, application_id, to_division_code,
        to_address, moved_on, moved_by, txid) VALUES (:p, :a, '140403', 'addr', :d, 'hukou',
        0)"""), {"p": there, "a": app_id, "d": TODAY - dt.timedelta(days=40)})
    w = withdrawal.start(user("farmer"), right, "own_account")
    assert w.flagged and "40 days" in w.flag_reason
    assert "hukou" in dbs.execute(text("SELECT withdrawal_participants(w) FROM withdrawal w "
                                       "WHERE id = :i"), {"i": w.id}).scalar()
    _all_consents(w, hh)
    withdrawal.agree_compensation("bureau", w, Decimal("50000"))
    with pytest.raises(DomainError) as e:
        withdrawal.check(user("hukou"), w, "谈话记录")
    assert e.value.code == "withdrawal.checker"


def test_the_database_flags_a_withdrawal_after_another_countys_settlement(dbs, holder,
                                                                          monkeypatch):
    """withdrawal_flag_after_settlement() alone: the application's own check is switched off,
    the flag still comes (0044 matches the move to the place by ID number)."""
    hh, right = holder
    head = hh.head
    coll, _ = _elsewhere(dbs, hh)
    collectives.admit("bureau", head, coll, "marriage", TODAY - dt.timedelta(days=400))
    there = _rows(dbs, head)[coll.fbfbm[:6]]
    app_id = dbs.execute(text("""
        INSERT INTO settlement_application (applicant_id, town_id, basis,
            property_certificate_no, living_there, residence_address, destination,
            destination_address, status, created_by)
        SELECT :p, min(id), 'owned_house', 'X', true, 'addr', 'house_address', 'addr',
               'submitted', 'hukou' FROM settlement_town RETURNING id"""), {"p": there}).scalar()
    dbs.execute(text("""INSERT INTO hukou_move (person_id, application_id, to_division_code,
        to_address, moved_on, moved_by, txid) VALUES (:p, :a, '140403', 'addr', :d, 'hukou',
        0)"""), {"p": there, "a": app_id, "d": TODAY - dt.timedelta(days=40)})
    monkeypatch.setattr(withdrawal, "_settlement_before", lambda *_a, **_k: None)
    w = withdrawal.start(user("farmer"), right, "own_account")
    dbs.expire(w)
    assert w.flagged and "40 days" in w.flag_reason


def test_joining_a_household_in_another_county_ends_the_old_place(dbs, certified):
    """household_member_successor(): "joined another household" needs a current place in
    another household — here in another county, under the person's row there (0044)."""
    hh = certified
    _, moving = family(hh)
    member = next(m for m in hh.current_members if m.person_id == moving[0]["person_id"])
    _, other = _elsewhere(dbs, hh)
    new = people.move_member("bureau", member, other, "10", TODAY, "嫁入外县")
    dbs.execute(text("SET CONSTRAINTS ALL IMMEDIATE"))  # the commit-time check, now
    assert member.end_ground == "joined_other_household" and member.left_on == TODAY
    assert new.person_id != member.person_id
    assert people.same_person(new.person_id, member.person_id)
    assert dbs.get(Person, new.person_id).county_code == other.cbfbm[:6]


def test_membership_of_a_collective_in_another_county_is_another_membership(dbs, certified):
    """Ending a membership on "membership of another collective" needs an active membership
    elsewhere — under the person's row of the other county when it is there (art 17); and
    where the person belongs, for the access check, spans both counties."""
    from app.people.scopes import person_scope

    hh = certified
    head = hh.head
    coll, other = _elsewhere(dbs, hh)
    home = collectives.active_membership(head.id, hh.collective_id)
    assert home is not None and home.person_id == head.id
    with pytest.raises(DomainError) as e:  # no other membership yet: the ground does not apply
        collectives.end_membership("bureau", home, "other_membership", TODAY)
    assert e.value.code == "membership.end.no_other_membership"
    joined = collectives.admit("bureau", head, coll, "marriage", TODAY)
    assert joined.person_id != head.id
    # the same human is already a member there, whichever row is named
    assert collectives.active_membership(head.id, coll.id).id == joined.id
    with pytest.raises(DomainError) as e:
        collectives.admit("bureau", head, coll, "marriage", TODAY)
    assert e.value.code == "membership.duplicate"
    people.add_member("bureau", other, head, "10", joined_on=TODAY)
    scope = person_scope(head.id)
    assert {hh.cbfbm, other.cbfbm} <= scope.household_codes
    assert coll.fbfbm in scope.division_codes
    ended = collectives.end_membership("bureau", home, "other_membership", TODAY)
    assert ended.status == "ended" and ended.end_ground == "other_membership"


def test_person_keys_hold(dbs, certified):
    """Attacks with SQL as the app role: a second row in one county, an id named or changed,
    a place naming another county's row, a forged county on a coordinator-local row."""
    hh = certified
    head = hh.head
    _, other = _elsewhere(dbs, hh)
    here = hh.cbfbm[:6]
    with pytest.raises(DBAPIError, match="uq_person_id_number"):
        with dbs.begin_nested():
            dbs.execute(text("INSERT INTO person (id_number, name, sex, birth_date, county_code) "
                             "SELECT id_number, name, sex, birth_date, county_code FROM person "
                             "WHERE id = :p"), {"p": head.id})
    got = dbs.execute(text("INSERT INTO person (id, id_number, name, sex, birth_date, "
                           "county_code) SELECT id, id_number, name, sex, birth_date, '999999' "
                           "FROM person WHERE id = :p RETURNING id"), {"p": head.id}).scalar()
    assert got != head.id  # the id comes from the sequence, whatever was named
    with pytest.raises(DBAPIError, match="never changes"):
        with dbs.begin_nested():
            dbs.execute(text("UPDATE person SET id = id + 1000000 WHERE id = :p"),
                        {"p": head.id})
    # a place in `other` naming the person's row of this county gets their row there
    pid = dbs.execute(text("INSERT INTO household_member (household_id, person_id, relation) "
                           "VALUES (:h, :p, '10') RETURNING person_id"),
                      {"h": other.id, "p": head.id}).scalar()
    assert pid != head.id and dbs.get(Person, pid).county_code == other.cbfbm[:6]
    assert dbs.scalar(select(HouseholdMember.county_code).where(
        HouseholdMember.person_id == pid)) == other.cbfbm[:6]
    # a coordinator-local row: a left-out county is filled, a forged one refused
    dbs.execute(text("DELETE FROM member_bank_account WHERE person_id = :p"), {"p": head.id})
    cc = dbs.execute(text("INSERT INTO member_bank_account (person_id, bank_name, account_no, "
                          "recorded_by) VALUES (:p, 'x', '6222000011112222', 'x') "
                          "RETURNING person_county_code"), {"p": head.id}).scalar()
    assert cc == here
    with pytest.raises(DBAPIError, match="member_bank_account_person_id_fkey"):
        with dbs.begin_nested():
            dbs.execute(text("UPDATE member_bank_account SET person_county_code = :c "
                             "WHERE person_id = :p"), {"p": head.id, "c": other.cbfbm[:6]})


@contextlib.contextmanager
def split_register_at_0044(app, suffix: str):
    """A scratch database at migration 0044 holding one person with a household place in a
    county-140404 household and memberships in a collective of 140404 and one of 140405 (the
    register 0045 must split); yields (the scratch app, an owner engine, ids: pid, ca, cb, hh)
    inside the scratch app's context, and drops the database afterwards."""
    import urllib.parse

    from sqlalchemy import create_engine

    from app import create_app
    from app.extensions import db
    from tests.conftest import admin_url

    def scratch(u: str) -> str:
        parts = urllib.parse.urlsplit(u)
        return urllib.parse.urlunsplit(parts._replace(path=parts.path + suffix))

    base = app.config["SQLALCHEMY_DATABASE_URI"]
    url, owner = scratch(base), scratch(app.config["MIGRATE_DATABASE_URL"])
    admin_base = admin_url(base)
    name = urllib.parse.urlsplit(url).path.lstrip("/")
    admin = create_engine(admin_base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        role = urllib.parse.urlsplit(owner).username
        conn.execute(text(f'CREATE DATABASE "{name}" OWNER "{role}"'))
    admin.dispose()
    with create_engine(scratch(admin_base), isolation_level="AUTOCOMMIT").connect() as conn:
        conn.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))
    try:
        s = create_app({"SQLALCHEMY_DATABASE_URI": url, "MIGRATE_DATABASE_URL": owner,
                        "TESTING": True})
        with s.app_context():
            from flask_migrate import upgrade

            upgrade(revision="0044_person_rows")
            eng = create_engine(owner)
            with eng.begin() as c:
                for v in ("140404001001", "140405001001"):
                    c.execute(text("INSERT INTO division (code, name, level) "
                                   "VALUES (:v, 'x', 'village')"), {"v": v})
                ca, cb = (c.execute(text("INSERT INTO collective (fbfbm, name, village_code) "
                                         "VALUES (:f, 'x', :v) RETURNING id"),
                                    {"f": v + "01", "v": v}).scalar()
                          for v in ("140404001001", "140405001001"))
                hh = c.execute(text("INSERT INTO household (cbfbm, collective_id, name) "
                                    "VALUES ('140404001001010001', :c, 'x') RETURNING id"),
                               {"c": ca}).scalar()
                pid = c.execute(text("INSERT INTO person (id_number, name, sex, birth_date) "
                                     "VALUES ('11010519491231002X', '某', '2', '1949-12-31') "
                                     "RETURNING id")).scalar()
                c.execute(text("INSERT INTO household_member (household_id, person_id, relation) "
                               "VALUES (:h, :p, '02')"), {"h": hh, "p": pid})
                for coll in (ca, cb):
                    c.execute(text("INSERT INTO membership (person_id, collective_id, basis, "
                                   "began_on) VALUES (:p, :c, 'birth', '1990-01-01')"),
                              {"p": pid, "c": coll})
            try:
                yield s, eng, {"pid": pid, "ca": ca, "cb": cb, "hh": hh}
            finally:
                eng.dispose()
                db.session.remove()
                db.engine.dispose()
    finally:
        admin = create_engine(admin_base, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_the_migration_splits_a_person_on_two_counties_rolls(app):
    """0045 on a register holding a person with a household place in one county and a
    membership in another: their row stays in the household's county (the place comes first),
    a second row is made for the other, and that county's membership is re-pointed at it; the
    downgrade refuses while the two rows exist."""
    from flask_migrate import downgrade, upgrade

    with split_register_at_0044(app, "_person_split") as (_s, eng, ids):
        pid = ids["pid"]
        upgrade(revision="0045_citus_person")
        with eng.begin() as c:
            rows = dict(c.execute(text("SELECT county_code, id FROM person "
                                       "WHERE id_number = '11010519491231002X'")).all())
            assert set(rows) == {"140404", "140405"} and rows["140404"] == pid
            assert c.execute(text("SELECT person_id FROM household_member")).scalar() == pid
            assert dict(c.execute(text(
                "SELECT county_code, person_id FROM membership")).all()) == rows
        with pytest.raises(Exception, match="rows in two counties"):
            downgrade(revision="0044_person_rows")
