"""Reporting coercion (举报): a public form (no login, CSRF-protected, rate-limited) reached from
the public notice page, the certificate verification page and the farmer's own page; the
compliance supervisor's list, report page and steps."""
from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import HiddenField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from app.access import access, jurisdiction_like
from app.extensions import db, limiter
from app.people.idnumber import mask_phone

from . import operations as ops
from .models import CoercionReport

bp = Blueprint("reports", __name__)


class ReportForm(FlaskForm):
    what_happened = TextAreaField(
        _l("What happened: who asked you to give up which right (land, homestead, "
           "collective income or membership) in order to settle in town, and when"),
        validators=[DataRequired(), Length(max=4000)])
    who_asked = StringField(_l("Who asked (office or person), optional"),
                            validators=[Optional(), Length(max=200)])
    contact = StringField(_l("Your contact (phone or address), optional"),
                          validators=[Optional(), Length(max=100)])
    channel = HiddenField(default="public")
    context = HiddenField()


class StepForm(FlaskForm):
    to_status = SelectField(_l("New status"), choices=[
        (k, v) for k, v in ops.STATUS_LABELS.items() if k != "received"])
    note = TextAreaField(_l("Note (what was found and done)"),
                         validators=[DataRequired(), Length(max=4000)])


def _limit() -> str:
    return current_app.config["REPORT_RATE_LIMIT"]


@bp.route("/report", methods=["GET", "POST"])
@access(public=True)
@limiter.limit(_limit, methods=["POST"])
def report():
    """Anyone may report being asked to give up a right in order to settle in town."""
    form = ReportForm()
    if request.method == "GET":
        form.channel.data = request.args.get("channel", "public")
        form.context.data = request.args.get("context", "")
        return render_template("reports/form.html", form=form)
    if not form.validate_on_submit():
        return render_template("reports/form.html", form=form), 422
    channel = form.channel.data or "public"
    if current_user.is_authenticated and current_user.role == "farmer":
        channel = "farmer_page"
    elif channel == "farmer_page":
        channel = "public"
    farmer = current_user if current_user.is_authenticated and \
        current_user.role == "farmer" else None
    context, division = ops.locate(channel, form.context.data, farmer)
    actor = current_user if current_user.is_authenticated else "public"
    r = ops.submit(actor, channel, form.what_happened.data, form.who_asked.data,
                   form.contact.data, context, division,
                   current_user.id if current_user.is_authenticated else None)
    db.session.commit()
    return render_template("reports/thanks.html", number=r.id), 201


@bp.get("/reports")
@access(*ops.SUPERVISORS)
def listing():
    status = request.args.get("status") or None
    like = jurisdiction_like(current_user)
    return render_template("reports/list.html", rows=ops.listing(like, status),
                           counts=ops.counts(like), status=status, mask_phone=mask_phone,
                           status_labels=ops.STATUS_LABELS, channel_labels=ops.CHANNEL_LABELS)


@bp.get("/reports/<int:report_id>")
@access(*ops.SUPERVISORS)
def detail(report_id: int, form: StepForm | None = None):
    r = db.session.get(CoercionReport, report_id)
    if r is None:
        abort(404)
    like = jurisdiction_like(current_user)
    if like and r.division_code and not r.division_code.startswith(like.rstrip("%")):
        abort(403)
    if ops.opened(current_user, r):  # who read a reporter's contact is logged
        db.session.commit()
    return render_template("reports/detail.html", rep=r, form=form or StepForm(),
                           status_labels=ops.STATUS_LABELS, channel_labels=ops.CHANNEL_LABELS)


@bp.post("/reports/<int:report_id>")
@access(*ops.SUPERVISORS)
def act(report_id: int):
    r = db.session.get(CoercionReport, report_id)
    if r is None:
        abort(404)
    like = jurisdiction_like(current_user)
    if like and r.division_code and not r.division_code.startswith(like.rstrip("%")):
        abort(403)
    form = StepForm()
    if not form.validate_on_submit():
        return detail.__wrapped__(report_id, form), 422
    ops.step(current_user, r, form.to_status.data, form.note.data)
    db.session.commit()
    flash(_("Recorded."), "success")
    return redirect(url_for("reports.detail", report_id=r.id), 303)
