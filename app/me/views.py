"""The farmer's own page: my household, my rights, my parcels on a map, my certificates, my
withdrawals and memberships. It reads across many features, so it sits in the top layer (beside
app.main): each feature answers through its own query function."""
from flask import Blueprint, render_template
from flask_login import current_user
from shapely import from_wkb

from app.access import access
from app.certificates import operations as certificates
from app.collectives import operations as collectives
from app.parcels import operations as parcels
from app.people import operations as people
from app.rights import operations as rights
from app.withdrawal import operations as withdrawal
from gis.svg import plan

bp = Blueprint("me", __name__)


@bp.get("/me")
@access("farmer")
def mine():
    hh = people.household_by_code(current_user.household_code)
    held = rights.current_rights(hh.cbfbm) if hh else []
    mine_parcels = parcels.current_of_household(hh.cbfbm) if hh else []
    svg = plan([from_wkb(p.wkb) for p in mine_parcels],
               [p.code[-5:] if p.kind == "contract" else p.code[14:19] for p in mine_parcels],
               size=520, css_class="my-parcels") if mine_parcels else ""
    return render_template(
        "rights/mine.html", hh=hh, rights=held, parcels=mine_parcels, svg=svg,
        certificates=certificates.of_household(hh.cbfbm) if hh else [],
        pilot={r.uid: withdrawal.pilot_enabled(r.fbfbm[:6]) for r in held},
        withdrawals=withdrawal.of_household(hh.cbfbm) if hh else [],
        memberships=collectives.memberships_of(current_user.person_id)
        if current_user.person_id else [],
        membership_grounds=collectives.GROUND_LABELS,
        transferred=rights.transferred_from(hh.cbfbm) if hh else [])
