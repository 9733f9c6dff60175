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
from tests.test_person_counties import _elsewhere, _rows, certified  # noqa: F401

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
