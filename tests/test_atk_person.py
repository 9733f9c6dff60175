"""Attacks on one person row per county (0045_citus_person; docs/scaling.md §3).

Since a human may have a row in each county, the ID number — not the row — is who they are:
every rule about "this person" (a withdrawal consent from one's own account, the settlement
checks, a farmer's own pages) joins rows by ID number.  Before the split, UNIQUE (id_number)
stopped a row from taking another human's number; now only (id_number, county_code) is unique,
so an UPDATE of a row's ID number can merge it into another human in another county (their
account then "is" that human) or split one human in two (a settlement on one half is no longer
seen by the other).  Real PostgreSQL, as the app's own role.
"""
from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from app.people.idnumber import check_digit
from app.people.models import Person
from tests.test_person_counties import (  # noqa: F401
    _elsewhere,
    _rows,
    certified,
    split_register_at_0044,
)

TODAY = dt.date.today()


def _valid_id(county: str, birth: dt.date, seq: str) -> str:
    first = f"{county}{birth:%Y%m%d}{seq}"
    return first + check_digit(first)


def assert_sql_refused(dbs, sql, params, match="person.id_number.one_human"):
    with pytest.raises(DBAPIError, match=match):
        with dbs.begin_nested():
            dbs.execute(text(sql), params)


def _stranger_in(dbs, county: str) -> Person:
    """Another human, registered in `county` only."""
    pid = dbs.execute(text(
        "INSERT INTO person (id_number, name, sex, birth_date, county_code) "
        "VALUES (:n, '外县某人', '1', DATE '1980-05-06', :c) RETURNING id"),
        {"n": _valid_id(county, dt.date(1980, 5, 6), "135"), "c": county}).scalar()
    return dbs.get(Person, pid)


def test_a_row_cannot_take_another_humans_id_number(dbs, certified):  # noqa: F811
    """A row of county B renumbered to the ID number of a person registered in county A only:
    UNIQUE (id_number, county_code) lets it through, and the row (with whatever account,
    consents or settlements name it) becomes that person's for every rule that reads rows by ID
    number (withdrawal consent from one's own account, settlement and withdrawal checks)."""
    hh = certified
    head = hh.head
    _, other = _elsewhere(dbs, hh)
    stranger = _stranger_in(dbs, other.cbfbm[:6])
    assert _rows(dbs, head) == {hh.cbfbm[:6]: head.id}
    assert_sql_refused(dbs, "UPDATE person SET id_number = :n WHERE id = :p",
                       {"n": head.id_number, "p": stranger.id})
    assert _rows(dbs, head) == {hh.cbfbm[:6]: head.id}
    # the other way round too: the head's row takes the stranger's number
    assert_sql_refused(dbs, "UPDATE person SET id_number = :n WHERE id = :p",
                       {"n": stranger.id_number, "p": head.id})


def test_one_human_cannot_be_split_by_renumbering_one_row(dbs, certified):  # noqa: F811
    """A human with rows in two counties: renumbering one row only makes two humans of one
    (a settlement in town on one half would no longer be seen by the other's rules)."""
    hh = certified
    head = hh.head
    _, other = _elsewhere(dbs, hh)
    dbs.execute(text("INSERT INTO household_member (household_id, person_id, relation) "
                     "VALUES (:h, :p, '10')"), {"h": other.id, "p": head.id})
    rows = _rows(dbs, head)
    assert len(rows) == 2
    fresh = _valid_id(hh.cbfbm[:6], head.birth_date, "977")
    assert_sql_refused(dbs, "UPDATE person SET id_number = :n WHERE id = :p",
                       {"n": fresh, "p": head.id})
    # a correction of the number renumbers every county's row of the human at once: allowed
    old = head.id_number
    dbs.execute(text("UPDATE person SET id_number = :n WHERE id_number = :o"),
                {"n": fresh, "o": old})
    assert dict(dbs.execute(select(Person.county_code, Person.id).where(
        Person.id_number == fresh)).all()) == rows


def test_the_split_re_points_a_collectives_share_holdings_with_its_membership(app):
    """0045 re-pointed the memberships of a person's second county at their new row there, but
    left the shares quantified on those memberships (a coordinator-local table) on the old
    row: the database's own distribution check — every member on the roll holds current shares,
    matched by person row (distribution_payout_open, 乡村振兴促进法 art 55) — then found the
    member without shares, and the collective could never pay a distribution again."""
    from flask_migrate import downgrade, upgrade

    with split_register_at_0044(app, "_atk_person") as (_s, eng, ids):
        pid, cb = ids["pid"], ids["cb"]
        with eng.begin() as c:
            # the shares of the membership in the second county's collective
            c.execute(text("ALTER TABLE share_quantification DISABLE TRIGGER USER"))
            q = c.execute(text(
                "INSERT INTO share_quantification (collective_id, base_date, asset_value_fen, "
                "collective_share_bp, member_centi, collective_centi, management, "
                "created_by, collective_county_code) "
                "VALUES (:c, '2020-01-01', 0, 0, 100, 0, 'static', 'x', '140405') "
                "RETURNING id"), {"c": cb}).scalar()
            c.execute(text("ALTER TABLE share_quantification ENABLE TRIGGER USER"))
            c.execute(text("INSERT INTO share_holding (quantification_id, person_id, "
                           "population_centi, labour_centi, shares_centi, source) "
                           "VALUES (:q, :p, 100, 0, 100, 'quantified')"), {"q": q, "p": pid})
        upgrade(revision="heads")
        with eng.begin() as c:
            # the criterion of the database's distribution check, for the collective
            unshared = c.execute(text("""
                SELECT count(*) FROM membership m WHERE m.collective_id = :c
                  AND NOT EXISTS (SELECT 1 FROM share_holding h WHERE h.quantification_id = :q
                                  AND h.person_id = m.person_id AND h.ended_on IS NULL)"""),
                                 {"c": cb, "q": q}).scalar()
            assert unshared == 0
            assert c.execute(text("SELECT person_county_code FROM share_holding")).scalar() \
                == "140405"
        # the fixes on top of 0045 go down and up again on the split register
        downgrade(revision="0045_citus_person")
        upgrade(revision="heads")
        with eng.begin() as c:
            assert c.execute(text("SELECT count(*) FROM pg_trigger WHERE tgname IN "
                                  "('person_one_human', 'person_human', 'person_one_hukou', "
                                  "'settlement_member_once')")).scalar() == 4


def test_a_settlement_lists_a_human_once(dbs, certified):  # noqa: F811
    """The applicant's row of another county listed as their own "spouse" moving with them:
    one row per person made the pair (application, person row) unique no more per human —
    two hukou moves of one human, the second from the town to the town."""
    from app.errors import DomainError
    from app.people import operations as people
    from app.settlement import operations as settlement
    from tests.test_settlement import basis_fields, town

    hh = certified
    head = hh.head
    _, other = _elsewhere(dbs, hh)
    people.add_member("bureau", other, head, "10", joined_on=TODAY)
    twin = _rows(dbs, head)[other.cbfbm[:6]]
    t = town(dbs)
    with pytest.raises(DomainError) as e:
        settlement.apply("hukou", head, t, [{"person_id": twin, "relation": "spouse"}],
                         **basis_fields(dbs, "owned_house", head, t, TODAY))
    assert e.value.code == "settlement.relation"
    # and in SQL, as the app role: a second row of one human on one application
    a = settlement.apply("hukou", head, t, [], **basis_fields(dbs, "owned_house", head, t, TODAY))
    assert_sql_refused(dbs, "INSERT INTO settlement_member (application_id, person_id, relation, "
                       "lives_with_applicant) VALUES (:a, :p, 'spouse', true)",
                       {"a": a.id, "p": twin}, match="settlement.member_once")


def test_a_second_countys_row_is_the_same_human_with_one_hukou(dbs, certified):  # noqa: F811
    """The import inserts a person's row for a household of another county with the delivery's
    name and a hukou in the delivery's village (insert_persons_from_staging): for a human who
    settled in town, their new row said their hukou was in a village again (and a settlement
    could be applied for on it).  Before one row per county the delivery kept the registered
    person (ON CONFLICT DO NOTHING).  A new row of a registered ID number takes the human's
    personal data; and the rows of one human never part on their hukou."""
    from app.settlement import operations as settlement
    from tests.test_settlement import basis_fields, town

    hh = certified
    head = hh.head
    _, other = _elsewhere(dbs, hh)
    t = town(dbs)
    a = settlement.apply("hukou", head, t, [], **basis_fields(dbs, "owned_house", head, t, TODAY))
    settlement.approve("hukou", a, conditions=["present_originals"], note="材料齐全，准予落户")
    dbs.flush()
    dbs.refresh(head)
    assert head.hukou_division_code == t.division_code
    there = other.cbfbm[:6]
    # the import's statement (app.people.operations.insert_persons_from_staging), in SQL
    pid = dbs.execute(text(
        "INSERT INTO person (id_number, name, sex, birth_date, hukou_division_code, "
        "hukou_address, county_code) VALUES (:n, '交付名', :s, :b, :v, '某村', :c) "
        "ON CONFLICT (id_number, county_code) DO NOTHING RETURNING id"),
        {"n": head.id_number, "s": head.sex, "b": head.birth_date, "v": other.cbfbm[:12],
         "c": there}).scalar()
    row = dbs.get(Person, pid)
    assert (row.name, row.hukou_division_code, row.hukou_address, row.county_code) == \
        (head.name, head.hukou_division_code, head.hukou_address, there)
    # one row's hukou moved alone (no settlement moves it so): refused by commit time
    with pytest.raises(DBAPIError, match="person.hukou.one_human"):
        with dbs.begin_nested():
            dbs.execute(text("UPDATE person SET hukou_division_code = :v WHERE id = :p"),
                        {"v": other.cbfbm[:12], "p": pid})
            dbs.execute(text("SET CONSTRAINTS person_one_hukou IMMEDIATE"))


def test_a_residence_permit_on_the_persons_other_row_is_theirs(dbs, certified):  # noqa: F811
    """The other direction: the residence permit recorded on the person's row of their home
    county, the application made from their row of the other county (person_by_id_number
    gives the first registered row; a form may name either).  The permit is the applicant's
    (the same ID number), and a lawful settlement must not be refused as "not the
    applicant's"."""
    from app.people import operations as people
    from app.settlement import operations as settlement
    from tests.test_settlement import basis_fields, town

    hh = certified
    head = hh.head
    _, other = _elsewhere(dbs, hh)
    people.add_member("bureau", other, head, "10", joined_on=TODAY)
    twin = dbs.get(Person, _rows(dbs, head)[other.cbfbm[:6]])
    t = town(dbs)
    fields = basis_fields(dbs, "rental", head, t, TODAY)  # the permit names the head's row
    a = settlement.apply("hukou", twin, t, [], **fields)
    assert a.applicant_id == twin.id and a.residence_permit_id == fields["residence_permit_id"]
