import datetime as dt

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import DateField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from app import signals
from app.access import Scope, access, jurisdiction_like
from app.extensions import db

from . import operations as ops
from .models import Collective, Membership

bp = Blueprint("collectives", __name__)
READERS = ("collective_officer", "bureau_staff", "hukou_officer", "auditor")
WRITERS = ("collective_officer", "bureau_staff")


def collective_scope(collective_id: int, **_) -> Scope | None:
    c = db.session.get(Collective, collective_id)
    return None if c is None else Scope([c.fbfbm])


def membership_scope(collective_id: int, membership_id: int, **_) -> Scope | None:
    m = db.session.get(Membership, membership_id)
    if m is None or m.collective_id != collective_id:
        return None
    return Scope([m.collective.fbfbm])


class EndForm(FlaskForm):
    ground = SelectField(_l("Ground (农村集体经济组织法 art 17)"), validators=[DataRequired()],
                         choices=[(k, v) for k, v in ops.GROUND_LABELS.items()])
    ended_on = DateField(_l("Date"), validators=[DataRequired()], default=dt.date.today)
    note = TextAreaField(_l("Basis / document"), validators=[Optional(), Length(max=1000)])
    law = SelectField(_l("Named law (for another ground set by law)"),
                      choices=[("", "—")] + [(x, x) for x in ops.NAMED_LAWS],
                      validators=[Optional()])
    article = StringField(_l("Article"), validators=[Optional(), Length(max=20)])
    charter_clause_id = SelectField(_l("Charter clause (for another ground set by the charter)"),
                                    choices=[], validate_choice=False, validators=[Optional()])
    reason = StringField(_l("Reason for the record"), validators=[DataRequired(), Length(max=500)])


class AdmitForm(FlaskForm):
    id_number = StringField(_l("ID number of the person"), validators=[DataRequired(),
                                                                        Length(max=18)])
    basis = SelectField(_l("Basis"), choices=[(k, v) for k, v in ops.BASIS_LABELS.items()])
    began_on = DateField(_l("Member since"), validators=[DataRequired()], default=dt.date.today)
    reason = StringField(_l("Reason for the record"), validators=[DataRequired(), Length(max=500)])


@bp.get("/collectives")
@access(*READERS)
def collective_list():
    collectives = ops.collectives(jurisdiction_like(current_user))
    counts = ops.active_member_counts()
    return render_template("collectives/list.html", collectives=collectives, counts=counts)


@bp.get("/collectives/<int:collective_id>")
@access(*READERS, scope=collective_scope)
def collective_detail(collective_id: int):
    c = db.session.get(Collective, collective_id)
    show_ended = request.args.get("ended") == "1"
    members = ops.roll(c, include_ended=show_ended)
    extra = {"households": []}  # what higher features show (app.people: the households)
    for ctx in signals.send(signals.collective_page, c):
        extra.update(ctx)
    return render_template("collectives/detail.html", collective=c, members=members,
                           show_ended=show_ended, **extra,
                           admit_form=AdmitForm(), can_write=current_user.role in WRITERS
                           or current_user.role == "admin")


@bp.route("/collectives/<int:collective_id>/members/<int:membership_id>/end",
          methods=["GET", "POST"])
@access(*WRITERS, scope=membership_scope)
def end_member(collective_id: int, membership_id: int):
    m = db.session.get(Membership, membership_id)
    form = EndForm()
    form.charter_clause_id.choices = [("", "—")] + [
        (str(c.id), f"{c.clause_no} {c.text[:40]}") for c in ops.charter(m.collective)
        if c.ends_membership]
    if request.method == "POST":
        # The ground is checked by the operation, not the form's choice list, so that a
        # forged ground is refused with the law's message and recorded.
        ground = request.form.get("ground", "")
        if form.ended_on.data and form.reason.data:
            ops.end_membership(current_user, m, ground, form.ended_on.data, form.note.data,
                               reason=form.reason.data, law=form.law.data or None,
                               article=form.article.data or None,
                               charter_clause=request.form.get("charter_clause_id", type=int))
            db.session.commit()
            flash(_("The membership was ended."), "success")
            return redirect(url_for(".collective_detail", collective_id=collective_id))
        flash(_("Please give the date and the reason."), "error")
    return render_template("collectives/end.html", m=m, form=form)
