"""Withdrawal pilot pages: the farmer starts or revokes their own; staff record a withdrawal
made in person (with the signed statement), consents, compensation, payment, the
voluntariness check and the moment it takes effect."""
from decimal import Decimal, InvalidOperation

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from app.access import Scope, access, jurisdiction_like, require_scope
from app.auth import operations as auth_ops
from app.extensions import db
from app.people.models import Person
from app.rights import operations as rights
from app.rights.models import Right

from . import operations as ops
from .models import Withdrawal
from .operations import withdrawal_scope

bp = Blueprint("withdrawal", __name__)
STAFF = ("bureau_staff", "collective_officer")
READERS = ("bureau_staff", "collective_officer", "auditor")


def _right(uid) -> Right | None:
    return rights.current_version(uid)


@bp.get("/withdrawals")
@access(*READERS)
def withdrawal_list():
    return render_template("withdrawal/list.html",
                           rows=ops.withdrawals(jurisdiction_like(current_user), 200))


@bp.post("/withdrawals")
@access(*STAFF)
def start_in_person():
    right = _right(request.form.get("right_uid", type=int))
    if right is None:
        abort(404)
    require_scope(Scope([right.fbfbm]), STAFF)
    statement = request.files.get("statement")
    data = statement.read() if statement else b""
    # The second officer witnesses by signing in under their own name, on this very form.
    witness = auth_ops.authenticate(request.form.get("witness", "").strip(),
                                    request.form.get("witness_password", ""))
    w = ops.start(current_user, right, "in_person", request.form.get("land_to", "collective"),
                  request.form.get("transferee") or None, data or None,
                  statement.filename if statement else None,
                  witness=witness)  # None unless the witness signed in: refused, recorded
    db.session.commit()
    return redirect(url_for(".detail", withdrawal_id=w.id), 303)


@bp.post("/me/withdrawals")
@access("farmer")
def start_own():
    right = _right(request.form.get("right_uid", type=int))
    if right is None:
        abort(404)
    w = ops.start(current_user, right, "own_account", request.form.get("land_to", "collective"),
                  request.form.get("transferee") or None)
    db.session.commit()
    flash(_("Your withdrawal has been recorded. You may revoke it until %(d)s.",
            d=w.cooling_until), "success")
    return redirect(url_for(".detail", withdrawal_id=w.id), 303)


@bp.get("/withdrawals/<int:withdrawal_id>")
@access("farmer", *READERS, scope=withdrawal_scope)
def detail(withdrawal_id: int):
    w = db.session.get(Withdrawal, withdrawal_id)
    import datetime as dt

    return render_template("withdrawal/detail.html", w=w,
                           missing=ops.missing_consents(w, dt.date.today()))


@bp.post("/withdrawals/<int:withdrawal_id>/revoke")
@access("farmer", *STAFF, scope=withdrawal_scope)
def revoke(withdrawal_id: int):
    w = db.session.get(Withdrawal, withdrawal_id)
    ops.revoke(current_user, w)
    db.session.commit()
    flash(_("The withdrawal is revoked; the right stays as it was."), "success")
    return redirect(url_for(".detail", withdrawal_id=w.id), 303)


@bp.post("/me/withdrawals/<int:withdrawal_id>/consent")
@access("farmer", scope=withdrawal_scope)
def consent_own(withdrawal_id: int):
    """A co-holder agrees for themselves, signed in to their own account."""
    w = db.session.get(Withdrawal, withdrawal_id)
    person = db.session.get(Person, current_user.person_id or 0)
    if person is None:  # an account that is no person agrees for nobody
        flash(_("Only a co-holder agrees, from their own account."), "error")
        return redirect(url_for(".detail", withdrawal_id=w.id), 303)
    ops.consent(current_user, w, person)
    db.session.commit()
    flash(_("Your agreement has been recorded."), "success")
    return redirect(url_for(".detail", withdrawal_id=w.id), 303)


@bp.post("/withdrawals/<int:withdrawal_id>/step")
@access(*STAFF, scope=withdrawal_scope)
def step(withdrawal_id: int):
    w = db.session.get(Withdrawal, withdrawal_id)
    action = request.form.get("action")
    if action == "consent":
        person = db.session.get(Person, request.form.get("person_id", type=int) or 0)
        doc = request.files.get("document")
        if person is None or doc is None:
            abort(400)
        ops.consent(current_user, w, person, doc.read(), document_name=doc.filename)
    elif action == "compensation":
        try:
            amount = Decimal(request.form.get("amount", ""))
        except InvalidOperation:
            amount = Decimal(0)
        ops.agree_compensation(current_user, w, amount)
    elif action == "payment":
        ops.record_payment(current_user, w, request.form.get("reference", "").strip())
    elif action == "check":
        ops.check(current_user, w, request.form.get("interview", ""))
    elif action == "effect":
        ops.take_effect(current_user, w)
    else:
        abort(400)
    db.session.commit()
    flash(_("Recorded."), "success")
    return redirect(url_for(".detail", withdrawal_id=w.id), 303)
