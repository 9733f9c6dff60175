"""The home page's overview figures (the views hold no SQL)."""
from __future__ import annotations

from sqlalchemy import func, select, text

from app.access import jurisdiction_like
from app.collectives.models import Collective, Membership
from app.extensions import db
from app.parcels.models import Parcel
from app.people.models import Household


def overview(user) -> dict:
    """Collectives, households, members and parcels within the user's jurisdiction."""
    if user.role == "farmer":
        return {}
    like = jurisdiction_like(user)
    coll = select(Collective.id)
    if like:
        coll = coll.where(Collective.fbfbm.like(like))
    ids = coll.scalar_subquery()
    return {
        "collectives": db.session.scalar(select(func.count()).select_from(coll.subquery())),
        "households": db.session.scalar(
            select(func.count(Household.id)).where(Household.collective_id.in_(ids))),
        "members": db.session.scalar(select(func.count(Membership.id)).where(
            Membership.collective_id.in_(ids), Membership.status == "active")),
        "parcels": db.session.scalar(select(func.count(Parcel.id)).where(
            Parcel.collective_id.in_(ids), Parcel.end_lifespan.is_(None))),
    }


def my_household(user):
    if user.role != "farmer" or not user.household_code:
        return None
    return db.session.scalar(select(Household).where(Household.cbfbm == user.household_code))


def my_holdings(user) -> list:
    """The farmer household's current rights (kind, code, certificate number if issued)."""
    if user.role != "farmer" or not user.household_code:
        return []
    return db.session.execute(text("""
        SELECT r.kind, coalesce(r.contract_code, string_agg(rp.parcel_code, ', ')) AS code,
               (SELECT c.number FROM certificate c WHERE c.right_uid = r.uid
                  AND c.status = 'valid' LIMIT 1) AS certificate
        FROM land_right r LEFT JOIN land_right_parcel rp ON rp.right_id = r.id
        WHERE r.holder_household_code = :h AND r.status = 'current' AND r.end_lifespan IS NULL
        GROUP BY r.id, r.kind, r.contract_code, r.uid ORDER BY r.kind"""),
        {"h": user.household_code}).all()
