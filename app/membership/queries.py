"""Reads for the membership pages and API (views hold no SQL)."""
from __future__ import annotations

from sqlalchemy import select

from app.collectives.models import Collective
from app.extensions import db
from app.people import operations as people_ops
from app.people.models import Household, Person

from . import operations as ops
from .models import (
    Distribution,
    MemberAssembly,
    MembershipApplication,
    Quantification,
    RollNotice,
    RollObjection,
)


def commit() -> None:
    db.session.commit()


def collective(collective_id: int) -> Collective | None:
    return db.session.get(Collective, collective_id)


def collectives(like: str | None) -> list[Collective]:
    s = select(Collective)
    if like:
        s = s.where(Collective.fbfbm.like(like))
    return list(db.session.scalars(s.order_by(Collective.fbfbm)))


def distribution(distribution_id: int) -> Distribution | None:
    return db.session.get(Distribution, distribution_id)


def notice(notice_id: int) -> RollNotice | None:
    return db.session.get(RollNotice, notice_id)


def assembly(assembly_id: int) -> MemberAssembly | None:
    return db.session.get(MemberAssembly, assembly_id)


def quantification(quantification_id: int) -> Quantification | None:
    return db.session.get(Quantification, quantification_id)


def household(household_id: int) -> Household | None:
    return db.session.get(Household, household_id)


def person(person_id: int) -> Person | None:
    return db.session.get(Person, person_id)


def person_by_id_number(number: str) -> Person | None:
    try:
        info = people_ops.parse_id(number)
    except Exception:  # noqa: BLE001 — a malformed number finds nobody
        return None
    return db.session.scalar(select(Person).where(Person.id_number == info.number)
                             .order_by(Person.id).limit(1))  # the first registered row


def desk(collective_id: int) -> dict:
    c = collective(collective_id)
    assemblies = list(db.session.scalars(select(MemberAssembly).where(
        MemberAssembly.collective_id == c.id).order_by(MemberAssembly.id.desc())))
    notices = list(db.session.scalars(select(RollNotice).where(
        RollNotice.collective_id == c.id).order_by(RollNotice.id.desc())))
    qn = ops.latest_quantification(c)
    households = {}
    if qn is not None:
        for h in ops.holdings(qn):
            if h.household_id:
                households.setdefault(h.household_id, h.household)
    return {"collective": c, "rule": ops.charter_rule(c), "applications": ops.applications(c),
            "assemblies": [(a, ops.attended(a), ops.resolutions(a)) for a in assemblies],
            "notices": [(n, ops.objections(n)) for n in notices], "roll": ops.roll_rows(c),
            "quantification": qn, "households": list(households.values()),
            "distributions": ops.distributions(c)}


def membership_application(application_id: int):

    return db.session.get(MembershipApplication, application_id)


def objection(objection_id: int):

    return db.session.get(RollObjection, objection_id)
