"""Where persons and households belong, for the access check."""
from sqlalchemy import select

from app.access import Scope
from app.collectives.models import Collective, Membership
from app.extensions import db

from .models import Household, HouseholdMember, Person


def person_scope(person_id: int, **_) -> Scope | None:
    """Where a person belongs *now*: current memberships, current household places, hukou.
    Ended records give no one access (an officer who once admitted a person, or whose village the
    person left, no longer reaches them)."""
    person = db.session.get(Person, person_id)
    if person is None:
        return None
    # the person's places in every county: every row of their ID number (one row per county,
    # docs/scaling.md §3)
    ids = select(Person.id).where(Person.id_number == person.id_number)
    codes = set(db.session.scalars(
        select(Collective.fbfbm).join(Membership, Membership.collective_id == Collective.id)
        .where(Membership.person_id.in_(ids), Membership.status == "active")))
    rows = db.session.execute(
        select(Household.cbfbm).join(HouseholdMember, HouseholdMember.household_id == Household.id)
        .where(HouseholdMember.person_id.in_(ids), HouseholdMember.left_on.is_(None))).all()
    households = {r.cbfbm for r in rows}
    codes |= {h[:14] for h in households}
    if person.hukou_division_code:
        codes.add(person.hukou_division_code)
    return Scope(sorted(codes), households, {person_id})


def household_scope(household_id: int, **_) -> Scope | None:
    hh = db.session.get(Household, household_id)
    if hh is None:
        return None
    return Scope([hh.cbfbm[:14]], {hh.cbfbm}, set())
