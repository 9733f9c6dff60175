from flask import Blueprint, render_template
from flask_login import current_user
from sqlalchemy import func, select

from app.access import ROLES, access, jurisdiction_like
from app.collectives.models import Collective, Membership
from app.extensions import db
from app.parcels.models import Parcel
from app.people.models import Household

bp = Blueprint("main", __name__)


@bp.get("/")
@access(*ROLES)
def dashboard():
    like = jurisdiction_like(current_user)
    coll = select(Collective.id)
    if like:
        coll = coll.where(Collective.fbfbm.like(like))
    counts = {}
    if current_user.role != "farmer":
        ids = coll.scalar_subquery()
        counts = {
            "collectives": db.session.scalar(select(func.count()).select_from(coll.subquery())),
            "households": db.session.scalar(
                select(func.count(Household.id)).where(Household.collective_id.in_(ids))),
            "members": db.session.scalar(select(func.count(Membership.id)).where(
                Membership.collective_id.in_(ids), Membership.status == "active")),
            "parcels": db.session.scalar(select(func.count(Parcel.id)).where(
                Parcel.collective_id.in_(ids), Parcel.end_lifespan.is_(None))),
        }
    household = None
    if current_user.role == "farmer" and current_user.household_code:
        household = db.session.scalar(
            select(Household).where(Household.cbfbm == current_user.household_code))
    return render_template("dashboard.html", counts=counts, household=household)
