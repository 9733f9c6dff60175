"""The JSON API of survey imports (issue 19): upload a delivery (a background job), follow the
job, read the report as JSON or CSV, accept, and correct quarantined features and records.
The same operations and rules as the pages (imports/views.py)."""
from flask import Response, abort, current_app, request
from flask_login import current_user
from flask_smorest import Blueprint
from flask_smorest.fields import Upload
from marshmallow import Schema, fields, validate
from sqlalchemy.exc import DBAPIError

from app.access import access, jurisdiction_like
from app.errors import problem_response
from app.extensions import db
from app.jobs import operations as jobs
from app.jobs.models import Job
from app.pagination import PageArgs, page_schema, paginate
from app.security import expensive

from . import operations as ops
from . import uploads
from .models import ImportBatch, ImportFeature, ImportRecord
from .views import READERS, STAFF, batch_scope, feature_scope, job_scope, record_scope

blp = Blueprint("api_imports", __name__, url_prefix="/imports",
                description="Survey imports (NY/T 2539 deliveries): upload, job, report, "
                            "accept, corrections")


@blp.before_request
def _limit():
    # The same size limits as the pages: deliveries may be large, everything else is small.
    if request.endpoint == "api_imports.upload":
        request.max_content_length = int(current_app.config.get(
            "IMPORT_MAX_UPLOAD_MB", 512)) * 1024 ** 2
    else:
        request.max_content_length = int(current_app.config.get(
            "IMPORT_MAX_FORM_KB", 2048)) * 1024


class BatchSchema(Schema):
    id = fields.Int()
    source = fields.Str()
    srid = fields.Int(allow_none=True)
    encoding = fields.Str(allow_none=True)
    status = fields.Str()
    error = fields.Str(allow_none=True)
    job_id = fields.Int(allow_none=True)
    created_by = fields.Str()


class ImportJobSchema(Schema):
    id = fields.Int()
    kind = fields.Str()
    status = fields.Str()
    done = fields.Int()
    total = fields.Int()
    percent = fields.Int()
    message = fields.Str(allow_none=True)
    error = fields.Str(allow_none=True)
    batch_id = fields.Int(allow_none=True)


class FaultSchema(Schema):
    id = fields.Int()
    rule = fields.Str()
    rule_zh = fields.Str()
    rule_en = fields.Str()
    legal_source = fields.Str()
    code = fields.Str(allow_none=True)
    detail = fields.Str()
    feature_id = fields.Int(allow_none=True)
    record_id = fields.Int(allow_none=True)
    cause_id = fields.Int(allow_none=True)
    open = fields.Bool()


class ReportSchema(Schema):
    batch_id = fields.Int()
    status = fields.Str()
    srid = fields.Int(allow_none=True)
    source = fields.Str()
    features = fields.Dict(keys=fields.Str(), values=fields.Int(),
                           metadata={"description": "features per status"})
    faults = fields.List(fields.Nested(FaultSchema))


class UploadArgs(Schema):
    file = Upload(required=True, metadata={
        "description": "a .zip of the NY/T 2539 package, or a .gpkg / .geojson file"})


class UploadOptions(Schema):
    srid = fields.Int(load_default=None, validate=validate.Range(2000, 999999),
                      metadata={"description": "declared CRS (EPSG), when the files do not say"})
    encoding = fields.Str(load_default=None, validate=validate.OneOf(["GBK", "UTF-8"]))
    tolerance = fields.Float(load_default=None, validate=validate.Range(0, 100),
                             metadata={"description": "overlap tolerance, m²"})


class AcceptArgs(Schema):
    valid_part = fields.Bool(load_default=False, metadata={
        "description": "register the valid part; faulty features wait in quarantine"})
    reason = fields.Str(required=True, validate=validate.Length(min=1, max=500))


class AcceptResult(Schema):
    parcels = fields.Int()
    quarantined = fields.Int()
    failed = fields.Str(allow_none=True)


class CorrectArgs(Schema):
    attrs = fields.Dict(keys=fields.Str(validate=validate.Length(max=40)), load_default=dict)
    wkt = fields.Str(load_default=None, validate=validate.Length(max=1_000_000),
                     metadata={"description": "features only: the geometry in the delivery's "
                                              "CRS; empty keeps it"})
    reason = fields.Str(required=True, validate=validate.Length(min=1, max=500))


class CorrectedSchema(Schema):
    id = fields.Int()
    batch_id = fields.Int()
    status = fields.Str()


def _job(job: Job) -> dict:
    db.session.refresh(job)
    b = ops.batch_of_job(job.id)
    return {**ImportJobSchema().dump(job), "batch_id": (job.result or {}).get("batch_id")
            or (b.id if b else None)}


@blp.route("")
@access(*READERS)
@blp.arguments(PageArgs, location="query")
@blp.response(200, page_schema(BatchSchema, "ImportBatchPage"))
def list_batches(args):
    return paginate(ops.batches_query(jurisdiction_like(current_user), current_user.username),
                    args)


@blp.route("", methods=["POST"])
@access(*STAFF)
@blp.arguments(UploadOptions, location="query")
@blp.arguments(UploadArgs, location="files")
@blp.response(202, ImportJobSchema)
def upload(options, files):
    """Upload a delivery; it is checked, staged and validated by a background job."""
    path = uploads.save(files["file"])
    job = jobs.submit("import", {"path": str(path), "srid": options["srid"],
                                 "encoding": options["encoding"],
                                 "tolerance": options["tolerance"]}, current_user)
    return _job(job)


@blp.route("/jobs/<int:job_id>")
@access(*READERS, scope=job_scope)
@blp.response(200, ImportJobSchema)
def job_status(job_id: int):
    return _job(db.session.get(Job, job_id))


@blp.route("/<int:batch_id>")
@access(*READERS, scope=batch_scope)
@blp.response(200, ReportSchema)
def report(batch_id: int):
    return ops.report(db.session.get(ImportBatch, batch_id))


@blp.route("/<int:batch_id>/report.csv")
@access(*READERS, scope=batch_scope)
@expensive
@blp.response(200, {"type": "string"}, content_type="text/csv")
def report_csv(batch_id: int):
    return Response("\ufeff" + ops.report_csv(batch_id), mimetype="text/csv",
                    headers={"Content-Disposition":
                             f"attachment; filename=import-{batch_id}-report.csv"})


@blp.route("/<int:batch_id>/accept", methods=["POST"])
@access(*STAFF, scope=batch_scope)
@blp.arguments(AcceptArgs)
@blp.response(200, AcceptResult)
def accept(args, batch_id: int):
    result = ops.accept(current_user, db.session.get(ImportBatch, batch_id),
                        valid_part=args["valid_part"], reason=args["reason"])
    db.session.commit()
    return result


def _stored_or_problem(fn):
    try:
        fixed = fn()
    except DBAPIError:  # logged; the answer shows no database text
        db.session.rollback()
        current_app.logger.exception("correction failed")
        return problem_response({"type": "about:blank", "title": "Unprocessable", "status": 422,
                                 "code": "import.correction.unstored",
                                 "detail": "The correction could not be stored; check the WKT "
                                           "and the attributes."}, 422)
    db.session.commit()
    return fixed


@blp.route("/features/<int:feature_id>/correct", methods=["POST"])
@access(*STAFF, scope=feature_scope)
@blp.arguments(CorrectArgs)
@blp.response(200, CorrectedSchema)
def correct_feature(args, feature_id: int):
    f = db.session.get(ImportFeature, feature_id)
    wkt = (args["wkt"] or "").strip() or None
    if wkt == ops.feature_wkt(f):
        wkt = None
    changed = {k: v for k, v in args["attrs"].items() if f.attrs.get(k) != v}
    return _stored_or_problem(lambda: ops.correct_feature(current_user, f, changed, wkt,
                                                          args["reason"]))


@blp.route("/records/<int:record_id>/correct", methods=["POST"])
@access(*STAFF, scope=record_scope)
@blp.arguments(CorrectArgs)
@blp.response(200, CorrectedSchema)
def correct_record(args, record_id: int):
    r = db.session.get(ImportRecord, record_id)
    if r is None:
        abort(404)
    changed = {k: v for k, v in args["attrs"].items() if r.attrs.get(k) != v}
    return _stored_or_problem(lambda: ops.correct_record(current_user, r, changed,
                                                         args["reason"]))
