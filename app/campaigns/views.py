"""Campaign pages: list and progress, the notice (printable PDF and public page), objections
lodged online or recorded by staff, resolution, registration and batch certificate issuance."""
import datetime as dt
from pathlib import Path

from flask import Blueprint, abort, flash, redirect, render_template, request, send_from_directory, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import DateField, IntegerField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, NumberRange, Optional, Regexp

from app.access import Scope, access, jurisdiction_like, require_scope, user_can
from app.certificates import operations as certificates
from app.collectives import operations as collectives
from app.errors import DomainError
from app.extensions import db, login_manager, reads_replica
from app.imports import queries as imports_queries
from app.jobs import operations as jobs
from app.printing import printed
from app.security import expensive, public_url

from . import charts
from . import operations as ops
from .models import Campaign, Objection

bp = Blueprint("campaigns", __name__)
READERS = ("collective_officer", "bureau_staff", "auditor")
STAFF = ("bureau_staff",)
SUBJECT_CHOICES = [("parcel", _l("the parcel")), ("boundary", _l("a boundary")),
                   ("area", _l("the area")), ("holder", _l("the holder"))]


def campaign_scope(campaign_id: int, **_) -> Scope | None:
    c = db.session.get(Campaign, campaign_id)
    return None if c is None else Scope([c.fbfbm])


def objection_scope(campaign_id: int, objection_id: int, **_) -> Scope | None:
    o = db.session.get(Objection, objection_id)
    if o is None or o.campaign_id != campaign_id:
        return None
    return Scope([o.campaign.fbfbm])


class OpenForm(FlaskForm):
    fbfbm = StringField(_l("Villagers' group (FBFBM, 14 digits)"),
                        validators=[DataRequired(), Regexp(r"^\d{14}$")])
    batch = SelectField(_l("Survey delivery"), coerce=int, validators=[Optional()])
    reason = StringField(_l("Reason for the record"), validators=[DataRequired(),
                                                                  Length(max=500)])


class NoticeForm(FlaskForm):
    start = DateField(_l("Notice starts"), validators=[DataRequired()])
    days = IntegerField(_l("Days"), validators=[Optional(), NumberRange(min=1, max=90)])


class ObjectionForm(FlaskForm):
    parcel_code = StringField(_l("Parcel code"), validators=[Optional(), Length(max=28)])
    subject = SelectField(_l("About"), choices=SUBJECT_CHOICES)
    text = TextAreaField(_l("What is wrong"), validators=[DataRequired(), Length(max=2000)])
    lodged_by = StringField(_l("Lodged by"), validators=[Optional(), Length(max=100)])


class ResolveForm(FlaskForm):
    outcome = SelectField(_l("Outcome"), choices=[
        ("upheld", _l("upheld (the correction is in the register)")),
        ("dismissed", _l("dismissed (with reasons)"))])
    resolution = TextAreaField(_l("Resolution and reasons"),
                               validators=[DataRequired(), Length(max=2000)])


@bp.get("/campaigns")
@access(*READERS)
def campaign_list():
    like = jurisdiction_like(current_user)
    rows = ops.campaigns(like, 200)
    form = OpenForm()
    form.batch.choices = [(0, "—")] + [(b.id, f"#{b.id} {b.source}") for b in
                                        imports_queries.recent_batches(50)]
    return render_template("campaigns/list.html", rows=[(c, ops.progress(c)) for c in rows],
                           form=form, chart=charts.county_chart(like))


@bp.post("/campaigns")
@access(*STAFF)
def campaign_open():
    form = OpenForm()
    form.batch.choices = [(0, "—")] + [(b, b) for b in imports_queries.batch_ids()]
    if not form.validate_on_submit():
        flash(_("Please correct the form: %(errors)s", errors=form.errors), "error")
        return redirect(url_for(".campaign_list"))
    require_scope(Scope([form.fbfbm.data]), STAFF)
    c = ops.open_campaign(current_user, form.fbfbm.data, form.batch.data or None,
                          form.reason.data)
    db.session.commit()
    return redirect(url_for(".detail", campaign_id=c.id), 303)


@bp.get("/campaigns/<int:campaign_id>")
@access(*READERS, scope=campaign_scope)
def detail(campaign_id: int):
    c = db.session.get(Campaign, campaign_id)
    group = collectives.by_code(c.fbfbm)
    job = jobs.latest("certificates", campaign=c.id)
    p = ops.progress(c)
    return render_template("campaigns/detail.html", c=c, group=group, p=p,
                           chart=charts.campaign_chart(p),
                           job=job, notice_form=NoticeForm(start=dt.date.today()),
                           objection_form=ObjectionForm(), resolve_form=ResolveForm(),
                           today=dt.date.today(), notice_has_run=ops.notice_has_run(c))


@bp.post("/campaigns/<int:campaign_id>/notice")
@access(*STAFF, scope=campaign_scope)
def publish(campaign_id: int):
    c = db.session.get(Campaign, campaign_id)
    form = NoticeForm()
    if not form.validate_on_submit():
        flash(_("Please correct the form: %(errors)s", errors=form.errors), "error")
    else:
        ops.publish_notice(current_user, c, form.start.data, form.days.data)
        db.session.commit()
        flash(_("The public notice runs from %(a)s to %(b)s.", a=c.notice_start,
                b=c.notice_end), "success")
    return redirect(url_for(".detail", campaign_id=c.id), 303)


@bp.post("/campaigns/<int:campaign_id>/objections")
@access(*STAFF, scope=campaign_scope)
def record_objection(campaign_id: int):
    """Staff record an objection made in person or in writing."""
    c = db.session.get(Campaign, campaign_id)
    form = ObjectionForm()
    if not form.validate_on_submit() or not (form.lodged_by.data or "").strip():
        flash(_("Please correct the form: %(errors)s", errors=form.errors or
                {"lodged_by": [_("Who lodged it?")]}), "error")
    else:
        ops.lodge_objection(current_user, c, form.subject.data, form.text.data,
                            form.lodged_by.data, form.parcel_code.data or None)
        db.session.commit()
        flash(_("Objection recorded."), "success")
    return redirect(url_for(".detail", campaign_id=c.id), 303)


@bp.post("/campaigns/<int:campaign_id>/objections/<int:objection_id>")
@access(*STAFF, scope=objection_scope)
def resolve(campaign_id: int, objection_id: int):
    o = db.session.get(Objection, objection_id)
    form = ResolveForm()
    if not form.validate_on_submit():
        flash(_("Please correct the form: %(errors)s", errors=form.errors), "error")
    else:
        if form.outcome.data == "upheld":
            ops.uphold(current_user, o, form.resolution.data)
        else:
            ops.dismiss(current_user, o, form.resolution.data)
        db.session.commit()
        flash(_("Objection resolved."), "success")
    return redirect(url_for(".detail", campaign_id=campaign_id), 303)


@bp.post("/campaigns/<int:campaign_id>/register")
@access(*STAFF, scope=campaign_scope)
def register(campaign_id: int):
    c = db.session.get(Campaign, campaign_id)
    made = ops.register(current_user, c)
    db.session.commit()
    flash(_("Registered: %(c)s land-contract rights, %(h)s homestead rights.",
            c=made.get("land_contract", 0), h=made.get("homestead", 0)), "success")
    return redirect(url_for(".detail", campaign_id=c.id), 303)


@bp.post("/campaigns/<int:campaign_id>/certificates")
@access(*STAFF, scope=campaign_scope)
def issue_certificates(campaign_id: int):
    job = certificates.start_batch(current_user, db.session.get(Campaign, campaign_id),
                                   certificates.base_url())
    return redirect(url_for("imports.job_page", job_id=job.id), 303)


@bp.get("/campaigns/<int:campaign_id>/print/<name>")
@access(*STAFF, scope=campaign_scope)
def print_package(campaign_id: int, name: str):
    if not name.startswith(f"campaign-{campaign_id}-") or not name.endswith(".zip"):
        abort(404)
    return send_from_directory(certificates.print_dir(), Path(name).name, as_attachment=True)


@bp.get("/campaigns/<int:campaign_id>/notice.pdf")
@access(*READERS, scope=campaign_scope)
@expensive
def notice_pdf(campaign_id: int):
    c = db.session.get(Campaign, campaign_id)
    group = collectives.by_code(c.fbfbm)
    return printed("campaigns/notice_print.html", f"notice-{c.fbfbm}-{c.id}.pdf", c=c,
                   group=group, households=ops.notice_by_household(c),
                   public_url=public_url(".public_notice", campaign_id=c.id))


@bp.route("/notice/<int:campaign_id>", methods=["GET", "POST"])
@access(public=True)
@reads_replica
def public_notice(campaign_id: int):
    """The public notice (公示): anyone may read it while it runs, afterwards staff who reach the
    group and the households on it; a person whose household is on it may object online."""
    c = db.session.get(Campaign, campaign_id)
    if c is None or c.status == "draft":
        abort(404)
    running = ops.notice_running(c)
    if not running and not (user_can(current_user, READERS, campaign_scope(c.id))
                            or ops.concerned(current_user, c)):
        if not current_user.is_authenticated:
            return login_manager.unauthorized()
        abort(403)
    form = ObjectionForm()
    if request.method == "POST":
        if not current_user.is_authenticated:
            return login_manager.unauthorized()
        if form.validate_on_submit():
            try:
                ops.check_online_objector(current_user, c)
            except DomainError as err:  # the refusal is recorded (committed) by the operation
                flash(err.full(), "error")
                return redirect(url_for(".public_notice", campaign_id=c.id), 303)
            who = current_user.display_name or current_user.username
            o = ops.lodge_objection(current_user, c, form.subject.data, form.text.data, who,
                                    form.parcel_code.data or None)
            db.session.commit()
            flash(_("Your objection no. %(n)s has been lodged; the land bureau will answer it "
                    "before the rights are registered.", n=o.id), "success")
            return redirect(url_for(".public_notice", campaign_id=c.id), 303)
        flash(_("Please correct the form: %(errors)s", errors=form.errors), "error")
    group = collectives.by_code(c.fbfbm)
    mine = []
    if current_user.is_authenticated:
        who = current_user.display_name or current_user.username
        mine = [o for o in c.objections if o.lodged_by == who]
    return render_template("campaigns/notice.html", c=c, group=group, form=form,
                           households=ops.notice_by_household(c), mine=mine,
                           open_now=running, may_object=ops.concerned(current_user, c))
