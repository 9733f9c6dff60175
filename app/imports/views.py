import json

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from sqlalchemy.exc import DBAPIError
from wtforms import DecimalField, IntegerField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from app.access import Scope, access, jurisdiction_like
from app.errors import DomainError
from app.extensions import db
from app.jobs import operations as jobs
from app.jobs.models import Job
from app.security import expensive

from . import operations as ops
from . import queries, uploads, validation
from .models import ImportBatch, ImportFeature, ImportRecord

bp = Blueprint("imports", __name__)


def _upload_limit():
    """Per-route request size limits (settings, with defaults): deliveries may be large, the
    other forms of this feature are small.  An upload over the limit is refused with a page
    that says what the limit is and what to do, before any of its body is read."""
    if request.endpoint == "imports.upload":
        mb = int(current_app.config.get("IMPORT_MAX_UPLOAD_MB", 512))
        request.max_content_length = mb * 1024 ** 2
        if request.content_length and request.content_length > request.max_content_length:
            abort(413, description=_(
                "The upload is larger than %(mb)s MB, the limit for survey deliveries. Nothing "
                "was kept. Split the delivery (for example one zip per township or village) or "
                "ask an administrator to raise IMPORT_MAX_UPLOAD_MB.", mb=mb))
    elif request.endpoint and request.endpoint.startswith("imports."):
        request.max_content_length = int(current_app.config.get(
            "IMPORT_MAX_FORM_KB", 2048)) * 1024


# First of all before-request functions: CSRF protection reads the form, and the limit must
# be in place before anything parses the body.
bp.record_once(lambda state: state.app.before_request_funcs.setdefault(None, []).insert(
    0, _upload_limit))


STAFF = ("bureau_staff",)
READERS = ("bureau_staff", "auditor")


class UploadForm(FlaskForm):
    file = FileField(_l("Delivery (a .zip of the NY/T 2539 package, or a .gpkg / .geojson file)"),
                     validators=[FileRequired()])
    srid = IntegerField(_l("Declared CRS (EPSG code), when the files do not say"),
                        validators=[Optional(), NumberRange(2000, 999999)])
    encoding = SelectField(_l("Encoding of .dbf files without .cpg"),
                           choices=[("", "—"), ("GBK", "GBK"), ("UTF-8", "UTF-8")],
                           validators=[Optional()])
    tolerance = DecimalField(_l("Overlap tolerance (m²)"), places=3,
                             validators=[Optional(), NumberRange(0, 100)])


class AcceptForm(FlaskForm):
    mode = SelectField(choices=[("all", "all"), ("valid", "valid")])
    reason = StringField(_l("Reason for the record"), validators=[DataRequired(),
                                                                  Length(max=500)])


class CorrectForm(FlaskForm):
    attrs = TextAreaField(_l("Attributes (JSON)"), validators=[DataRequired()])
    wkt = TextAreaField(_l("Geometry (WKT, in the delivery's CRS; empty keeps it)"),
                        validators=[Optional()])
    reason = StringField(_l("Reason for the record"), validators=[DataRequired(),
                                                                  Length(max=500)])


def batch_scope(batch_id: int, **_) -> Scope | None:
    if db.session.get(ImportBatch, batch_id) is None:
        return None
    codes = queries.division_codes(batch_id)
    # a delivery with pre-2018 codes belongs to the district that succeeded them
    return Scope(codes + [ops.current_district(c[:6]) + c[6:] for c in codes])


def feature_scope(feature_id: int, **_) -> Scope | None:
    f = db.session.get(ImportFeature, feature_id)
    return None if f is None else batch_scope(f.batch_id)


def record_scope(record_id: int, **_) -> Scope | None:
    r = db.session.get(ImportRecord, record_id)
    return None if r is None else batch_scope(r.batch_id)


def job_scope(job_id: int, **_) -> Scope | None:
    job = db.session.get(Job, job_id)
    if job is None:
        return None
    if job.created_by == current_user.id or current_user.role == "admin":
        return Scope([current_user.jurisdiction_code or ""])
    batch = queries.batch_of_job(job.id)
    return batch_scope(batch.id) if batch else Scope([])


@bp.get("/imports")
@access(*READERS)
def batches():
    rows = queries.recent_batches(50, jurisdiction_like(current_user),
                                  current_user.username)
    return render_template("imports/list.html", form=UploadForm(), batches=rows)


@bp.post("/imports")
@access(*STAFF)
def upload():
    form = UploadForm()
    if not form.validate_on_submit():
        flash(_("Please correct the form: %(errors)s", errors=form.errors), "error")
        return redirect(url_for(".batches"))
    path = uploads.save(form.file.data)  # checked and extracted in the background job
    job = jobs.submit("import", {"path": str(path), "srid": form.srid.data,
                                 "encoding": form.encoding.data or None,
                                 "tolerance": float(form.tolerance.data)
                                 if form.tolerance.data is not None else None},
                      current_user)
    return redirect(url_for(".job_page", job_id=job.id))


@bp.get("/jobs/<int:job_id>")
@access(*READERS, scope=job_scope)
def job_page(job_id: int):
    return render_template("imports/job.html", job=db.session.get(Job, job_id))


@bp.get("/jobs/<int:job_id>.json")
@access(*READERS, scope=job_scope)
def job_json(job_id: int):
    job = db.session.get(Job, job_id)
    db.session.refresh(job)
    result = job.result or {}
    nxt = url_for(".batch", batch_id=result["batch_id"]) if result.get("batch_id") else \
        url_for("campaigns.detail", campaign_id=result["campaign"]) if result.get("campaign") \
        else None
    return jsonify({"id": job.id, "kind": job.kind, "status": job.status, "done": job.done,
                    "total": job.total, "percent": job.percent, "message": job.message,
                    "error": job.error, "next": nxt})


@bp.get("/imports/<int:batch_id>")
@access(*READERS, scope=batch_scope)
def batch(batch_id: int):
    b = db.session.get(ImportBatch, batch_id)
    faults = ops.faults(batch_id, open_only=False)
    statuses = ops.progress_of(b)
    return render_template("imports/batch.html", b=b, faults=faults, statuses=statuses,
                           rules=validation.RULES, form=AcceptForm())


@bp.get("/imports/<int:batch_id>/report.csv")
@access(*READERS, scope=batch_scope)
@expensive
def report(batch_id: int):
    return Response("\ufeff" + ops.report_csv(batch_id), mimetype="text/csv",
                    headers={"Content-Disposition":
                             f"attachment; filename=import-{batch_id}-report.csv"})


@bp.get("/imports/<int:batch_id>/faults.geojson")
@access(*READERS, scope=batch_scope)
def faults_geojson(batch_id: int):
    rows = queries.open_fault_locations(batch_id)
    return Response(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "id": r.id, "geometry": r.g,
         "properties": {"rule": r.rule, "code": r.code, "detail": r.detail,
                        "feature_id": r.feature_id}} for r in rows]}, ensure_ascii=False),
        mimetype="application/geo+json")


@bp.post("/imports/<int:batch_id>/accept")
@access(*STAFF, scope=batch_scope)
def accept(batch_id: int):
    b = db.session.get(ImportBatch, batch_id)
    form = AcceptForm()
    if not form.validate_on_submit():
        flash(_("Please give a reason."), "error")
        return redirect(url_for(".batch", batch_id=batch_id))
    result = ops.accept(current_user, b, valid_part=form.mode.data == "valid",
                        reason=form.reason.data)
    db.session.commit()
    if result.get("failed"):
        flash(result["failed"], "error")
        return redirect(url_for(".batch", batch_id=batch_id))
    flash(_("Registered %(n)s parcels; %(q)s wait in quarantine.", n=result["parcels"],
            q=result["quarantined"]), "success")
    return redirect(url_for(".batch", batch_id=batch_id))


def _correct(obj, is_feature: bool):
    form = CorrectForm()
    if request.method == "GET":
        form.attrs.data = json.dumps(obj.attrs, ensure_ascii=False, indent=1)
        if is_feature:
            form.wkt.data = queries.feature_wkt(obj.id)
    elif form.validate_on_submit():
        try:
            attrs = ops.parse_attrs(form.attrs.data)
        except DomainError as e:
            flash(e.message(), "error")
            return render_template("imports/correct.html", obj=obj, form=form,
                                   is_feature=is_feature)
        changed = {k: v for k, v in attrs.items() if obj.attrs.get(k) != v}
        if is_feature:
            current = queries.feature_wkt(obj.id)
            wkt = form.wkt.data.strip() if form.wkt.data and form.wkt.data.strip() != current \
                else None
            try:
                fixed = ops.correct_feature(current_user, obj, changed, wkt, form.reason.data)
            except DomainError as e:
                if e.rule is not ops.BAD_WKT:
                    raise
                db.session.rollback()
                flash(e.message(), "error")
                return render_template("imports/correct.html", obj=obj, form=form,
                                       is_feature=True)
            except DBAPIError:  # logged; the page shows no database text
                db.session.rollback()
                current_app.logger.exception("correction of feature %s failed", obj.id)
                flash(_("The geometry could not be stored; check the WKT."), "error")
                return render_template("imports/correct.html", obj=obj, form=form,
                                       is_feature=True)
        else:
            fixed = ops.correct_record(current_user, obj, changed, form.reason.data)
        db.session.commit()
        if fixed.status == "registered":
            flash(_("Corrected and registered."), "success")
        else:
            flash(_("Corrected, but it still has faults; it waits in quarantine."), "error")
        return redirect(url_for(".batch", batch_id=obj.batch_id))
    return render_template("imports/correct.html", obj=obj, form=form, is_feature=is_feature)


@bp.route("/imports/features/<int:feature_id>/correct", methods=["GET", "POST"])
@access(*STAFF, scope=feature_scope)
def correct_feature(feature_id: int):
    return _correct(db.session.get(ImportFeature, feature_id), True)


@bp.route("/imports/records/<int:record_id>/correct", methods=["GET", "POST"])
@access(*STAFF, scope=record_scope)
def correct_record(record_id: int):
    return _correct(db.session.get(ImportRecord, record_id), False)

