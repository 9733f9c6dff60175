from flask import Blueprint, current_app, jsonify, render_template, request
from flask_login import current_user
from shapely import from_wkb

from app import signals
from app.access import ROLES, Scope, access, jurisdiction_like
from app.audit import operations as audit
from app.extensions import db
from app.people import operations as people
from app.security import expensive
from gis.svg import sketch

from . import exports, queries
from . import operations as ops
from .models import Parcel

bp = Blueprint("parcels", __name__)
STAFF = ("collective_officer", "bureau_staff", "exchange_operator", "hukou_officer", "auditor")


def parcel_scope(parcel_id: int, **_) -> Scope | None:
    p = db.session.get(Parcel, parcel_id)
    if p is None:
        return None
    return Scope([queries.collective_code(p)], {p.household_code} if p.household_code else set(), set())


@bp.get("/map")
@access(*ROLES)
def map_page():
    bounds = queries.map_bounds(
        household_code=(current_user.household_code or "-") if current_user.role == "farmer"
        else None, like=jurisdiction_like(current_user))
    return render_template("parcels/map.html", bounds=bounds, cap=queries.NAME_CAP,
                           basemap=current_app.config.get("BASEMAP_URL"))


@bp.get("/parcels/search")
@access(*STAFF)
def search():
    q = (request.args.get("q") or "").strip()
    if len(q) < 2:
        return jsonify([])
    hits, cut = queries.search_page(q, jurisdiction_like(current_user))
    resp = jsonify(hits)
    if cut:  # the map page shows its message (templates/parcels/map.html): narrow the name
        resp.headers["X-Search-Cut"] = "holder-name"
    return resp


@bp.get("/parcels/<int:parcel_id>")
@access("farmer", *STAFF, scope=parcel_scope)
def detail(parcel_id: int):
    p = db.session.get(Parcel, parcel_id)
    geom = queries.survey_geometry(p)
    neigh = ops.neighbours(p) if p.end_lifespan is None else []
    svg = sketch(geom, [from_wkb(n.wkb) for n in neigh], label=p.code[-5:],
                 neighbour_labels=[n.code[-5:] for n in neigh])
    holder = people.household_by_code(p.household_code)
    extra = {"rights": [], "ground_labels": {}}  # what higher features show (app.rights)
    for ctx in signals.send(signals.parcel_page, p):
        extra.update(ctx)
    return render_template("parcels/detail.html", p=p, svg=svg, neighbours=neigh,
                           versions=ops.history(p), lineage=ops.lineage(p), sides=ops.sides(p)
                           if p.end_lifespan is None else None, holder=holder, **extra)


def export_scope(**_) -> Scope | None:
    scope = (request.args.get("scope") or "").strip()
    if not scope.isdigit() or len(scope) < 6:
        return None
    return Scope([scope])


@bp.get("/parcels/export")
@access("collective_officer", "bureau_staff", "auditor", scope=export_scope)
@expensive
def export():
    import shutil

    from flask import send_file

    fmt = request.args.get("format", "gpkg")
    scope = request.args["scope"].strip()
    full = request.args.get("full") == "1"
    purpose = (request.args.get("purpose") or "").strip()
    if full:
        # Full ID numbers and phones: a separate privilege (land bureau), for a stated purpose.
        exports.check_full_export(current_user, purpose)
    stats: dict = {}
    path = exports.export_to_temp(fmt, scope, full, stats)
    audit.record(current_user, "parcel.export.full" if full else "parcel.export", "selection",
                 scope, {"format": fmt, "scope": scope, "rows": stats.get("rows", 0),
                         "unmasked": full, "purpose": purpose or None},
                 purpose or None)
    db.session.commit()
    mimetypes = {".gpkg": "application/geopackage+sqlite3", ".zip": "application/zip",
                 ".geojson": "application/geo+json"}
    resp = send_file(path, as_attachment=True, download_name=path.name,
                     mimetype=mimetypes.get(path.suffix, "application/octet-stream"))
    resp.call_on_close(lambda: shutil.rmtree(path.parent, ignore_errors=True))
    return resp
