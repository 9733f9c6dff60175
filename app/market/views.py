"""Market pages.  Public (no login): the market with filters and a map of listed parcels, a
listing's page, an applicant's registration and their own page (by the key they were given).
Farmer: list from 我的权益, my listings, consents.  Collective and exchange: mandates, listing on
a household's behalf, collective items.  Exchange operator: review queue, applicants,
qualification, deposits, the ledger.  Views parse, call one operation, render."""
from __future__ import annotations

import datetime as dt

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user
from shapely import from_wkb
from sqlalchemy import select

from app.access import Scope, access, jurisdiction_like, require_scope, user_can
from app.collectives import operations as collectives
from app.extensions import db, limiter, reads_replica
from app.parcels import queries as parcel_queries
from app.people.idnumber import mask, mask_name, mask_phone
from app.people.models import Person
from app.rights import operations as rights
from gis.svg import plan

from . import clock, queries
from . import operations as ops
from .charts import market_charts
from .models import Application, Encumbrance, LedgerTxn, Listing, Mandate
from .operations import PUBLIC_STATES

bp = Blueprint("market", __name__)
LISTERS = ("farmer", "collective_officer", "exchange_operator")
AGENTS = ("collective_officer", "exchange_operator")
OPERATOR = ("exchange_operator",)
READERS = ("farmer", "collective_officer", "exchange_operator", "bureau_staff", "auditor")


def listing_scope(listing_id: int, **_) -> Scope | None:
    x = db.session.get(Listing, listing_id)
    if x is None:
        return None
    return Scope([x.fbfbm], {x.household_code} if x.household_code else set())


def application_scope(market_app_id: int, **_) -> Scope | None:
    a = db.session.get(Application, market_app_id)
    return None if a is None else listing_scope(a.listing_id)


def mandate_scope(mandate_id: int, **_) -> Scope | None:
    m = db.session.get(Mandate, mandate_id)
    return None if m is None else Scope([m.household_code[:14]], {m.household_code})


def encumbrance_scope(encumbrance_id: int, **_) -> Scope | None:
    e = db.session.get(Encumbrance, encumbrance_id)
    if e is None:
        return None
    fbfbm = rights.issuing_party_of(e.right_uid)
    return Scope([fbfbm or ""])


def _date(name: str, required: bool = True) -> dt.date | None:
    v = (request.form.get(name) or "").strip()
    if not v:
        if required:
            abort(400)
        return None
    try:
        return dt.date.fromisoformat(v)
    except ValueError:
        abort(400)


def _int(name: str, default=None):
    v = (request.form.get(name) or "").strip()
    if not v:
        return default
    try:
        return int(v)
    except ValueError:
        abort(400)


def _listing(listing_id: int) -> Listing:
    x = db.session.get(Listing, listing_id)
    if x is None:
        abort(404)
    return x


# ------------------------------------------------------------------ public


def _public_filters():
    a = request.args
    f = {k: (a.get(k) or "").strip() for k in ("county", "township", "use", "method",
                                                "min_area", "max_area", "min_price",
                                                "max_price", "min_years", "max_years")}
    return f


@bp.get("/market")
@access(public=True)
@reads_replica
def market():
    f = _public_filters()
    try:
        rows = queries.public_listings(f, 200)
    except (ArithmeticError, ValueError):
        abort(400)
    townships, counties = queries.listing_places()
    return render_template("market/index.html", rows=rows, f=f, ops=ops, townships=townships,
                           counties=counties, today=clock.today(), charts=market_charts())


@bp.get("/market/map.geojson")
@access(public=True)
@reads_replica
def map_geojson():
    """Listed parcels as their own layer: announced (and ended, awaiting trade) listings only;
    codes, area and price — no holder, no personal data."""
    rows = queries.listed_parcels()
    import json

    feats = [{"type": "Feature", "geometry": json.loads(r.g),
              "properties": {"listing": r.id, "title": r.title, "price": r.price,
                             "status": r.status, "code": r.parcel_code, "area_mu": r.area}}
             for r in rows]
    return jsonify({"type": "FeatureCollection", "features": feats})


def _sketch(listing: Listing) -> str:
    if not listing.parcels:
        return ""
    rows = parcel_queries.current_geometries([lp.parcel_uid for lp in listing.parcels])
    return plan([from_wkb(r.wkb) for r in rows], [r.code[-5:] for r in rows], size=420,
                css_class="listing-parcels") if rows else ""


@bp.get("/market/listings/<int:listing_id>")
@access(public=True)
@reads_replica
def listing_page(listing_id: int):
    x = _listing(listing_id)
    if x.status not in PUBLIC_STATES:
        if not (current_user.is_authenticated and user_can(
                current_user, READERS, listing_scope(listing_id))):
            abort(404)
    applicants = [(mask_name(a.applicant.name) if a.applicant.kind == "person"
                   else a.applicant.name, a) for a in x.applications]
    return render_template("market/listing.html", x=x, ops=ops, sketch=_sketch(x),
                           applicants=applicants, today=clock.today(),
                           open_for_applications=x.status == "announced" and
                           clock.today() <= x.announcement_ends_on)


@bp.post("/market/listings/<int:listing_id>/apply")
@access(public=True)
@limiter.limit("30 per hour")
def apply(listing_id: int):
    """Anyone registers as an intending transferee during the announcement."""
    x = _listing(listing_id)
    f = request.form
    kind = f.get("kind") or "person"
    applicant, key = ops.register_applicant(
        current_user if current_user.is_authenticated else None, kind,
        (f.get("name") or "").strip() or "—", f.get("phone") or "",
        f.get("farming_capacity") or "", id_number=f.get("id_number") or None,
        credit_code=f.get("credit_code") or None, contact_name=f.get("contact_name") or None)
    ops.apply(current_user if current_user.is_authenticated else None, x, applicant,
              priority=bool(f.get("priority")))
    db.session.commit()
    flash(_("Registered. Keep the address of your page: it is your key to your applications "
            "and deposits."), "success")
    return redirect(url_for(".applicant_page", key=key), 303)


@bp.get("/market/applicant/<key>")
@access(public=True)
def applicant_page(key: str):
    a = ops.applicant_by_key(key)
    if a is None:
        abort(404)
    apps = queries.applications_of_applicant(a.id)
    return render_template("market/applicant.html", a=a, apps=apps, ops=ops, key=key,
                           id_masked=mask(a.id_number) if a.id_number else None,
                           phone_masked=mask_phone(a.phone))


# ------------------------------------------------------------------ listers


@bp.get("/me/market")
@access("farmer")
def mine():
    hh = current_user.household_code or "-"
    rows = db.session.scalars(select(Listing).where(Listing.household_code == hh)
                              .order_by(Listing.id.desc())).all()
    mandates = db.session.scalars(select(Mandate).where(Mandate.household_code == hh)
                                  .order_by(Mandate.id.desc())).all()
    contracts = rights.current_contracts_of(hh)
    pending = [x for x in db.session.scalars(select(Listing).where(
        Listing.household_code == hh, Listing.status.in_(("draft", "returned", "review"))))
        if current_user.person_id in {p.id for p in ops.missing_consents(x)}]
    return render_template("market/mine.html", rows=rows, mandates=mandates, rights=contracts,
                           pending=pending, ops=ops)


@bp.get("/market/listings/new")
@access(*LISTERS)
def new_listing():
    right = ops.current_contract(request.args.get("right_uid", type=int) or 0)
    if right is None:
        abort(404)
    require_scope(Scope([right.fbfbm], {right.holder_household_code}), LISTERS)
    mandates = [] if current_user.role == "farmer" else db.session.scalars(
        select(Mandate).where(Mandate.household_code == right.holder_household_code)
        .order_by(Mandate.id.desc())).all()
    parcels = rights.current_parcels_of(right)
    # Map selection: the i-th highlighted shape of the sketch is the i-th parcel of the list.
    svg = plan([from_wkb(p.wkb) for p in parcels], [p.code[-5:] for p in parcels], size=420,
               css_class="parcel-picker") if parcels else ""
    county = right.fbfbm[:6]
    defaults = {k: ops.setting(k, county) for k in ("announcement_days", "reannounce_max",
                                                    "deposit_percent", "method")}
    return render_template("market/new.html", right=right, parcels=parcels, mandates=mandates,
                           svg=svg,
                           encumbrances=ops.encumbrances(right.uid), defaults=defaults, ops=ops,
                           today=clock.today())


@bp.post("/market/listings")
@access(*LISTERS)
def create_listing():
    f = request.form
    right = ops.current_contract(_int("right_uid", 0))
    if right is None:
        abort(404)
    require_scope(Scope([right.fbfbm], {right.holder_household_code}), LISTERS)
    mandate = db.session.get(Mandate, _int("mandate_id", 0)) if _int("mandate_id") else None
    x = ops.create_listing(
        current_user, right, f.get("kind") or "lease", f.getlist("parcel"),
        _date("term_start"), _date("term_end"), f.get("land_use") or "",
        f.get("reserve_price") or "", f.get("payment_schedule") or "",
        retransfer_allowed=f.get("retransfer_allowed") == "1",
        transferee_conditions=f.get("transferee_conditions") or None,
        deposit_yuan=f.get("deposit") or None, method=f.get("method") or None,
        announcement_days=_int("announcement_days"), reannounce_max=_int("reannounce_max"),
        mortgaged=bool(f.get("mortgaged")), seized=bool(f.get("seized")),
        use_description=f.get("use_description") or None, mandate=mandate,
        swap_household_code=f.get("swap_household_code") or None,
        issuing_party_consent_ref=f.get("issuing_party_consent_ref") or None)
    db.session.commit()
    flash(_("Listing %(id)s saved as a draft.", id=x.id), "success")
    return redirect(url_for(".manage", listing_id=x.id), 303)


@bp.get("/market/listings/<int:listing_id>/manage")
@access(*READERS, scope=listing_scope)
def manage(listing_id: int):
    x = _listing(listing_id)
    missing = ops.missing_consents(x)
    enc = ops.encumbrances(x.right_uid) if x.right_uid else []
    apps = [(a, ops.held(a), ops.held(a, "risk")) for a in x.applications]
    return render_template("market/manage.html", x=x, ops=ops, missing=missing,
                           coholders=ops.adult_coholders(x), encumbrances=enc, apps=apps,
                           sketch=_sketch(x), today=clock.today())


@bp.post("/market/listings/<int:listing_id>/consent")
@access(*LISTERS, scope=listing_scope)
def consent(listing_id: int):
    x = _listing(listing_id)
    person = db.session.get(Person, _int("person_id", 0) or 0)
    if person is None:
        abort(400)
    doc = request.files.get("document")
    data = doc.read() if doc and doc.filename else None
    ops.consent(current_user, x, person, data)
    db.session.commit()
    flash(_("Consent of %(name)s recorded.", name=person.name), "success")
    return redirect(request.form.get("next") or url_for(".manage", listing_id=x.id), 303)


@bp.post("/market/listings/<int:listing_id>/submit")
@access(*LISTERS, scope=listing_scope)
def submit(listing_id: int):
    x = _listing(listing_id)
    ops.submit(current_user, x)
    db.session.commit()
    flash(_("The legal checks passed; the listing is with the exchange for review."), "success")
    return redirect(url_for(".manage", listing_id=x.id), 303)


@bp.post("/market/listings/<int:listing_id>/withdraw")
@access(*LISTERS, scope=listing_scope)
def withdraw(listing_id: int):
    x = _listing(listing_id)
    ops.withdraw(current_user, x)
    db.session.commit()
    return redirect(url_for(".manage", listing_id=x.id), 303)


# ------------------------------------------------------------------ exchange operator


@bp.get("/market/review")
@access(*OPERATOR, "auditor")
def review_queue():
    rows = queries.review_queue(jurisdiction_like(current_user))
    return render_template("market/review.html", rows=rows, ops=ops, today=clock.today())


@bp.post("/market/listings/<int:listing_id>/review")
@access(*OPERATOR, scope=listing_scope)
def review(listing_id: int):
    x = _listing(listing_id)
    decision = request.form.get("decision")
    if decision not in ("accept", "return"):
        abort(400)
    ops.review(current_user, x, decision == "accept", request.form.get("reasons"))
    db.session.commit()
    if x.status == "announced":
        flash(_("Announced from %(a)s until %(b)s.", a=x.announced_on, b=x.announcement_ends_on),
              "success")
    return redirect(url_for(".manage", listing_id=x.id), 303)


@bp.post("/market/listings/<int:listing_id>/encumbrance-consent")
@access(*OPERATOR, scope=listing_scope)
def encumbrance_consent(listing_id: int):
    x = _listing(listing_id)
    e = db.session.get(Encumbrance, _int("encumbrance_id", 0) or 0)
    if e is None or e.right_uid != x.right_uid:
        abort(400)
    ops.record_encumbrance_consent(current_user, x, e, request.form.get("reference") or "")
    db.session.commit()
    return redirect(url_for(".manage", listing_id=x.id), 303)


@bp.post("/market/listings/<int:listing_id>/close")
@access(*OPERATOR, scope=listing_scope)
def close(listing_id: int):
    x = _listing(listing_id)
    ops.close_announcement(current_user, x)
    db.session.commit()
    return redirect(url_for(".manage", listing_id=x.id), 303)


@bp.post("/market/applications/<int:market_app_id>/payment")
@access(*OPERATOR, scope=application_scope)
def payment(market_app_id: int):
    a = db.session.get(Application, market_app_id)
    what = request.form.get("what") or "deposit"
    if what not in ("deposit", "risk"):
        abort(400)
    amount = ops.yuan_to_fen(request.form.get("amount") or "")
    ops.record_payment(current_user, a, amount, request.form.get("reference") or "", what)
    db.session.commit()
    flash(_("Payment of %(y)s yuan recorded.", y=ops.fen(amount)), "success")
    return redirect(url_for(".manage", listing_id=a.listing_id) + "#applications", 303)


@bp.post("/market/applications/<int:market_app_id>/qualify")
@access(*OPERATOR, "bureau_staff", scope=application_scope)
def qualify(market_app_id: int):
    a = db.session.get(Application, market_app_id)
    ops.qualify(current_user, a, request.form.get("decision") == "pass",
                request.form.get("note") or "")
    db.session.commit()
    return redirect(url_for(".manage", listing_id=a.listing_id) + "#applications", 303)


@bp.get("/market/ledger")
@access(*OPERATOR, "auditor")
def ledger():
    txns = db.session.scalars(select(LedgerTxn).order_by(LedgerTxn.id.desc()).limit(500)).all()
    return render_template("market/ledger.html", txns=txns, rec=ops.reconciliation(), ops=ops)


# ------------------------------------------------------------------ mandates, encumbrances


@bp.get("/market/mandates")
@access(*AGENTS, "auditor")
def mandates():
    rows = queries.mandates(jurisdiction_like(current_user), 200)
    return render_template("market/mandates.html", rows=rows, today=clock.today())


@bp.post("/market/mandates")
@access(*AGENTS)
def upload_mandate():
    f = request.form
    hh = (f.get("household_code") or "").strip()
    if len(hh) != 18:
        abort(400)
    require_scope(Scope([hh[:14]]), AGENTS)
    doc = request.files.get("file")
    if doc is None:
        abort(400)
    m = ops.upload_mandate(current_user, hh, "collective" if current_user.role ==
                           "collective_officer" else "exchange",
                           f.get("agent_name") or current_user.display_name, f.get("scope") or "",
                           _date("valid_from"), _date("valid_until"), doc.filename or "",
                           doc.read())
    db.session.commit()
    flash(_("Mandate %(id)s kept.", id=m.id), "success")
    return redirect(url_for(".mandates"), 303)


@bp.get("/market/mandates/<int:mandate_id>/file")
@access("farmer", *AGENTS, "auditor", scope=mandate_scope)
def mandate_file(mandate_id: int):
    m = db.session.get(Mandate, mandate_id)
    return Response(m.content, mimetype="application/octet-stream", headers={
        "Content-Disposition": f"attachment; filename=mandate-{m.id}",
        "X-Content-SHA256": m.sha256})


@bp.get("/market/encumbrances")
@access(*OPERATOR, "bureau_staff", "auditor")
def encumbrance_list():
    rows = db.session.scalars(select(Encumbrance).order_by(Encumbrance.id.desc()).limit(300)).all()
    return render_template("market/encumbrances.html", rows=rows)


@bp.post("/market/encumbrances")
@access(*OPERATOR, "bureau_staff")
def record_encumbrance():
    f = request.form
    right = ops.current_contract(_int("right_uid", 0) or 0)
    if right is None:
        abort(404)
    require_scope(Scope([right.fbfbm]), (*OPERATOR, "bureau_staff"))
    ops.record_encumbrance(current_user, right, f.get("kind") or "", f.get("holder") or "",
                           f.get("reference") or "", f.get("reason") or "")
    db.session.commit()
    return redirect(url_for(".encumbrance_list"), 303)


@bp.post("/market/encumbrances/<int:encumbrance_id>/release")
@access(*OPERATOR, "bureau_staff", scope=encumbrance_scope)
def release_encumbrance(encumbrance_id: int):
    e = db.session.get(Encumbrance, encumbrance_id)
    ops.release_encumbrance(current_user, e, request.form.get("reason") or "")
    db.session.commit()
    return redirect(url_for(".encumbrance_list"), 303)


# ------------------------------------------------------------------ collective items


@bp.get("/market/collective/new")
@access("collective_officer")
def new_collective():
    like = jurisdiction_like(current_user)
    colls = collectives.collectives(like)
    return render_template("market/collective_new.html", collectives=colls, ops=ops,
                           today=clock.today())


@bp.post("/market/collective")
@access("collective_officer")
def create_collective():
    f = request.form
    fbfbm = (f.get("fbfbm") or "").strip()
    if len(fbfbm) != 14:
        abort(400)
    require_scope(Scope([fbfbm]), ("collective_officer",))
    codes = [c for c in (f.get("parcels") or "").replace(",", " ").split() if c]
    x = ops.create_collective_listing(
        current_user, fbfbm, f.get("kind") or "", f.get("resolution_ref") or "",
        _date("term_start"), _date("term_end"), f.get("land_use") or "",
        f.get("reserve_price") or "", f.get("payment_schedule") or "", codes,
        asset_description=f.get("asset_description") or None,
        asset_valuation=f.get("asset_valuation") or None, title=f.get("title") or None,
        method=f.get("method") or None)
    db.session.commit()
    return redirect(url_for(".manage", listing_id=x.id), 303)
from . import trading_views as _trading_views  # noqa: E402,F401  (routes on this blueprint)
