"""The farmer's own page: my household, my rights, my parcels on a map, my certificates."""
from flask import Blueprint, render_template
from flask_login import current_user
from shapely import from_wkb
from sqlalchemy import select, text

from app.access import access
from app.certificates.models import Certificate
from app.collectives.operations import GROUND_LABELS
from app.extensions import db
from app.people.models import Household
from gis.svg import plan

from . import operations as ops

bp = Blueprint("rights", __name__)


@bp.get("/me")
@access("farmer")
def mine():
    hh = db.session.scalar(select(Household).where(
        Household.cbfbm == current_user.household_code)) if current_user.household_code else None
    rights = ops.current_rights(hh.cbfbm) if hh else []
    parcels = db.session.execute(text("""
        SELECT p.id, p.code, p.name, p.kind, p.scmj, p.scmjm,
               ST_AsBinary(ST_Transform(p.geom, p.survey_srid)) AS wkb
        FROM parcel p WHERE p.end_lifespan IS NULL AND p.household_code = :h
        ORDER BY p.kind, p.code"""), {"h": hh.cbfbm}).all() if hh else []
    svg = plan([from_wkb(p.wkb) for p in parcels],
               [p.code[-5:] if p.kind == "contract" else p.code[14:19] for p in parcels],
               size=520, css_class="my-parcels") if parcels else ""
    certs = db.session.scalars(select(Certificate).where(
        Certificate.household_code == hh.cbfbm).order_by(Certificate.id.desc())).all() \
        if hh else []
    from app.withdrawal import operations as withdrawal
    from app.withdrawal.models import Withdrawal

    pilot = {r.uid: withdrawal.pilot_enabled(r.fbfbm[:6]) for r in rights}
    mine_w = db.session.scalars(select(Withdrawal).where(
        Withdrawal.household_code == hh.cbfbm).order_by(Withdrawal.id.desc())).all() if hh else []
    memberships = db.session.execute(text("""
        SELECT c.name, c.fbfbm, ms.status, ms.basis, ms.began_on, ms.ended_on, ms.end_ground,
               ms.end_note, ms.rights_kept_until FROM membership ms
        JOIN collective c ON c.id = ms.collective_id
        WHERE ms.person_id = :p ORDER BY ms.status, ms.began_on"""),
        {"p": current_user.person_id}).all() if current_user.person_id else []
    # 三权分置: land of ours under another's management right (a registered transfer).
    transferred = db.session.execute(text("""
        SELECT r.uid, r.holder_name, r.term_start, r.term_end, rp.parcel_code
        FROM land_right r JOIN land_right_parcel rp ON rp.right_id = r.id
        JOIN parcel p ON p.uid = rp.parcel_uid AND p.end_lifespan IS NULL
        WHERE r.kind = 'management' AND r.status = 'current' AND r.end_lifespan IS NULL
          AND p.household_code = :h AND r.term_end >= CURRENT_DATE
        ORDER BY r.term_start, rp.parcel_code"""), {"h": hh.cbfbm}).all() if hh else []
    return render_template("rights/mine.html", hh=hh, rights=rights, parcels=parcels, svg=svg,
                           certificates=certs, pilot=pilot, withdrawals=mine_w,
                           memberships=memberships, membership_grounds=GROUND_LABELS,
                           transferred=transferred)
