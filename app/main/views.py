from flask import Blueprint, render_template
from flask_login import current_user

from app import todo
from app.access import ROLES, access, jurisdiction_like
from app.collectives import operations as collectives
from app.parcels import operations as parcels
from app.people import operations as people

from . import queries

bp = Blueprint("main", __name__)


@bp.get("/")
@access(*ROLES)
def dashboard():
    counts = {}
    if current_user.role != "farmer":
        like = jurisdiction_like(current_user)
        counts = {"collectives": len(collectives.collectives(like)),
                  "households": people.count_households(like),
                  "members": collectives.count_active_members(like),
                  "parcels": parcels.count_current(like)}
    household = people.household_by_code(current_user.household_code) \
        if current_user.role == "farmer" else None
    return render_template("dashboard.html", todos=todo.items(current_user), counts=counts,
                           household=household, holdings=queries.my_holdings(current_user))
