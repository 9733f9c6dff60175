"""The JSON API of the parcel register (issue 19): search, read with versions and lineage,
attribute amendments (a new version, like every change), and exports.  Queries and rules live
in operations.py and exports.py; this module only parses, checks access and renders."""
import shutil

from flask import send_file, url_for
from flask_login import current_user
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from app.access import Scope, access, jurisdiction_like, require_scope
from app.extensions import db
from app.pagination import PageArgs, page_schema, paginate
from app.security import expensive

from . import exports
from . import operations as ops
from .models import Parcel
from .views import STAFF, export_scope, parcel_scope

blp = Blueprint("api_parcels", __name__, url_prefix="/parcels",
                description="Parcels (地块): search, versions, lineage, amendments")
eblp = Blueprint("api_exports", __name__, url_prefix="/exports",
                 description="Exports of a selection: GeoPackage, Shapefile, GeoJSON (one "
                             "collection, `layer` = DK or ZJD), NY/T 2539 package")
WRITERS = ("collective_officer", "bureau_staff")


class ParcelSchema(Schema):
    id = fields.Int()
    uid = fields.Int()
    version = fields.Int()
    kind = fields.Str()
    code = fields.Str()
    household_code = fields.Str(allow_none=True)
    name = fields.Str(allow_none=True)
    dklb = fields.Str(allow_none=True)
    tdlylx = fields.Str(allow_none=True)
    dldj = fields.Str(allow_none=True)
    tdyt = fields.Str(allow_none=True)
    sfjbnt = fields.Str(allow_none=True)
    scmj = fields.Decimal(as_string=True, metadata={"description": "area, m²"})
    scmjm = fields.Decimal(as_string=True, metadata={"description": "area, mu"})
    east = fields.Str(allow_none=True)
    south = fields.Str(allow_none=True)
    west = fields.Str(allow_none=True)
    north = fields.Str(allow_none=True)
    remarks = fields.Str(allow_none=True)
    survey_srid = fields.Int()
    change_kind = fields.Str()
    change_reason = fields.Str(allow_none=True)
    current = fields.Function(lambda p: p["current"] if isinstance(p, dict)
                              else p.end_lifespan is None)


class LinkSchema(Schema):
    id = fields.Int()
    code = fields.Str()
    kind = fields.Str()
    at = fields.DateTime()
    reason = fields.Str()


class LineageSchema(Schema):
    parents = fields.List(fields.Nested(LinkSchema))
    children = fields.List(fields.Nested(LinkSchema))


class ParcelDetail(ParcelSchema):
    geometry = fields.Dict(metadata={"description": "GeoJSON, CGCS2000 (EPSG:4490)"})
    versions = fields.List(fields.Nested(ParcelSchema))
    lineage = fields.Nested(LineageSchema)


class SearchArgs(PageArgs):
    q = fields.Str(load_default="", validate=validate.Length(max=50),
                   metadata={"description": "code or household code prefix, or holder name"})
    kind = fields.Str(load_default=None, validate=validate.OneOf(["contract", "homestead"]))
    scope = fields.Str(load_default=None, validate=validate.Regexp(r"^[0-9]{2,19}$"),
                       metadata={"description": "division, group, household or parcel code "
                                                "prefix"})
    include_ended = fields.Bool(load_default=False)


class AmendArgs(Schema):
    reason = fields.Str(required=True, validate=validate.Length(min=2, max=500))
    name = fields.Str(validate=validate.Length(max=50))
    east = fields.Str(validate=validate.Length(max=50))
    south = fields.Str(validate=validate.Length(max=50))
    west = fields.Str(validate=validate.Length(max=50))
    north = fields.Str(validate=validate.Length(max=50))
    witness = fields.Str(validate=validate.Length(max=50))
    remarks = fields.Str(validate=validate.Length(max=254))


def _detail(p: Parcel) -> dict:
    out = ParcelSchema().dump(p)
    out.update(geometry=ops.geometry_geojson(p), versions=ops.history(p),
               lineage={k: [dict(r._mapping) for r in v] for k, v in ops.lineage(p).items()})
    return out


@blp.route("")
@access(*STAFF)
@blp.arguments(SearchArgs, location="query")
@blp.response(200, page_schema(ParcelSchema, "ParcelPage"))
def search(args):
    return paginate(ops.search_query(jurisdiction_like(current_user), args["q"].strip(),
                                     args["kind"], args["scope"], args["include_ended"]), args)


@blp.route("/<int:parcel_id>")
@access("farmer", *STAFF, scope=parcel_scope)
@blp.response(200, ParcelDetail)
def read(parcel_id: int):
    return _detail(db.session.get(Parcel, parcel_id))


@blp.route("/<int:parcel_id>/amend", methods=["POST"])
@access(*WRITERS, scope=parcel_scope)
@blp.arguments(AmendArgs)
@blp.response(200, ParcelDetail)
def amend(args, parcel_id: int):
    reason = args.pop("reason")
    new = ops.amend(current_user, db.session.get(Parcel, parcel_id), reason, **args)
    db.session.commit()
    return _detail(new)


class ExportArgs(Schema):
    format = fields.Str(load_default="gpkg", validate=validate.OneOf(exports.FORMATS))
    scope = fields.Str(required=True, validate=validate.Regexp(r"^[0-9]{6,19}$"))
    full = fields.Bool(load_default=False, metadata={
        "description": "unmasked ID numbers and phones (land bureau, with a purpose)"})
    purpose = fields.Str(load_default="", validate=validate.Length(max=500))


def _export_scope(**_) -> Scope | None:
    return export_scope()


@eblp.route("")
@access("collective_officer", "bureau_staff", "auditor", scope=_export_scope)
@expensive
@eblp.arguments(ExportArgs, location="query")
@eblp.response(200, {"format": "binary", "type": "string"},
               content_type="application/octet-stream",
               description="the export file (.gpkg, .geojson, or .zip for Shapefile and NY/T)")
def export(args):
    """Build an export and download it in the same request (small selections; for large ones
    `POST /api/exports` starts it as a background job)."""
    if args["full"]:
        exports.check_full_export(current_user, args["purpose"])
    path = exports.export_for(current_user, args["format"], args["scope"], args["full"],
                              args["purpose"])
    db.session.commit()
    resp = send_file(path, as_attachment=True, download_name=path.name,
                     mimetype=exports.MIMETYPES.get(path.suffix, "application/octet-stream"))
    resp.call_on_close(lambda: shutil.rmtree(path.parent, ignore_errors=True))
    return resp


class ExportStartArgs(Schema):
    format = fields.Str(load_default="gpkg", validate=validate.OneOf(exports.FORMATS))
    scope = fields.Str(required=True, validate=validate.Regexp(r"^[0-9]{6,19}$"), metadata={
        "description": "township, village, villagers' group, household or parcel code"})
    full = fields.Bool(load_default=False, metadata={
        "description": "unmasked ID numbers and phones (land bureau, with a purpose)"})
    purpose = fields.Str(load_default="", validate=validate.Length(max=500))


class ExportJobSchema(Schema):
    id = fields.Int()
    status = fields.Str(metadata={"description": "queued, running, done or failed"})
    format = fields.Str()
    scope = fields.Str()
    full = fields.Bool()
    done = fields.Int()
    total = fields.Int()
    percent = fields.Int()
    message = fields.Str(allow_none=True)
    error = fields.Str(allow_none=True)
    rows = fields.Int(allow_none=True)
    bytes = fields.Int(allow_none=True)
    sha256 = fields.Str(allow_none=True)
    file_url = fields.Str(allow_none=True, metadata={"description": "once done: the download"})
    created_at = fields.DateTime()


def _job_scope(export_id: int, **_) -> Scope | None:
    job = exports.export_job(export_id)
    return exports.job_scope(job, current_user) if job is not None else None


def _export_job(job) -> dict:
    db.session.refresh(job)
    result = job.result or {}
    done = job.status == "done"
    return {"id": job.id, "status": job.status, "format": job.params.get("format"),
            "scope": job.params.get("scope"), "full": bool(job.params.get("full")),
            "done": job.done, "total": job.total, "percent": job.percent,
            "message": job.message, "error": job.error, "rows": result.get("rows"),
            "bytes": result.get("bytes"), "sha256": result.get("sha256"),
            "file_url": url_for("api_exports.download", export_id=job.id) if done else None,
            "created_at": job.created_at}


@eblp.route("", methods=["POST"])
@access(*exports.EXPORT_ROLES)
@expensive
@eblp.arguments(ExportStartArgs)
@eblp.response(202, ExportJobSchema, headers={"Location": {
    "description": "the export job", "schema": {"type": "string"}}})
def start(args):
    """Start an export as a background job; follow it at `Location`, download at `file_url`."""
    require_scope(Scope([args["scope"]]))
    job = exports.start(current_user, args["format"], args["scope"], args["full"],
                        args["purpose"])
    return _export_job(job), {"Location": url_for("api_exports.status", export_id=job.id)}


@eblp.route("/<int:export_id>")
@access(*exports.EXPORT_ROLES, scope=_job_scope, conceal=True)
@eblp.response(200, ExportJobSchema)
def status(export_id: int):
    """An export job's status and progress; once done, `Location` and `file_url` name the
    file."""
    job = exports.export_job(export_id)
    out = _export_job(job)
    return (out, {"Location": out["file_url"]}) if out["file_url"] else out


@eblp.route("/<int:export_id>/file")
@access(*exports.EXPORT_ROLES, scope=_job_scope, conceal=True)
@eblp.response(200, {"format": "binary", "type": "string"},
               content_type="application/octet-stream",
               description="the export file (.gpkg, .geojson, or .zip for Shapefile and NY/T); "
                           "ETag: its SHA-256")
def download(export_id: int):
    """Download a finished export (its requester, or staff whose jurisdiction reaches it)."""
    job = exports.export_job(export_id)
    path = exports.job_file(current_user, job)
    db.session.commit()
    return send_file(path, as_attachment=True, download_name=path.name,
                     mimetype=exports.MIMETYPES.get(path.suffix, "application/octet-stream"),
                     etag=job.result["sha256"], conditional=True, max_age=0)
