from flask import Blueprint, render_template
from flask_login import current_user

from app import todo
from app.access import ROLES, access

from . import queries

bp = Blueprint("main", __name__)


@bp.get("/")
@access(*ROLES)
def dashboard():
    return render_template("dashboard.html", todos=todo.items(current_user),
                           counts=queries.overview(current_user),
                           household=queries.my_household(current_user),
                           holdings=queries.my_holdings(current_user))
