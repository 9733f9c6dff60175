"""Shared helpers of the demo story: who acts, which villages, a marker per step."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from app.audit import operations as audit
from app.audit.models import AuditLog
from app.auth.models import User
from app.collectives.models import Collective
from app.extensions import db
from app.market import clock
from app.parcels.models import Parcel
from app.people.models import Household

COUNTY = "140404"


def user(username: str):

    return db.session.scalar(select(User).where(User.username == username))


def done(step: str) -> bool:
    """A step of the story already ran (its marker is in the audit log): loading is idempotent."""
    return db.session.scalar(select(AuditLog.id).where(
        AuditLog.action == "demo.story", AuditLog.object_id == step).limit(1)) is not None


def mark(step: str, detail: dict) -> None:
    audit.record(None, "demo.story", "demo", step, detail, "demo data")


def villages() -> list[str]:
    """The generated villages of the county, in code order (the farmer's is the first)."""
    return list(db.session.scalars(select(Collective.village_code).distinct()
                                   .where(Collective.village_code.like(COUNTY + "2%"))
                                   .order_by(Collective.village_code)))


def groups(village_code: str) -> list[Collective]:
    return list(db.session.scalars(select(Collective).where(
        Collective.village_code == village_code).order_by(Collective.fbfbm)))


def households(c: Collective) -> list[Household]:
    return list(db.session.scalars(select(Household).where(
        Household.collective_id == c.id, Household.ended_on.is_(None)).order_by(Household.cbfbm)))


def fields_of(household_code: str, kind: str = "contract") -> list[Parcel]:
    return list(db.session.scalars(select(Parcel).where(
        Parcel.household_code == household_code, Parcel.kind == kind,
        Parcel.end_lifespan.is_(None)).order_by(Parcel.code)))


def today() -> dt.date:

    return clock.today()
