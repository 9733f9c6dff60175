"""OGC API – Features (Part 1: Core, GeoJSON) for the current parcels, so that QGIS and GDAL
can read the register.  Public: the properties carry no personal data (no holder, no ID)."""
import json

from flask import Blueprint, Response, abort, request, url_for
from sqlalchemy import text

from app.access import access
from app.extensions import csrf, db, reads_replica

bp = Blueprint("ogc", __name__, url_prefix="/ogc")
csrf.exempt(bp)
MAX_LIMIT = 10000
DEFAULT_LIMIT = 100
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
PROPS = """json_build_object('code', p.code, 'kind', p.kind, 'name', p.name, 'fbfbm', c.fbfbm,
           'dklb', p.dklb, 'tdlylx', p.tdlylx, 'dldj', p.dldj, 'tdyt', p.tdyt,
           'sfjbnt', p.sfjbnt, 'scmj', p.scmj, 'scmjm', p.scmjm, 'version', p.version,
           'survey_srid', p.survey_srid)"""


def _abs(endpoint, **kw) -> str:
    """An absolute link from PUBLIC_BASE_URL when it is set (always in production), not from
    the request's Host header: a forged Host would be echoed into links a cache may hand to
    everyone.  Without it (development), the address the client used."""
    from flask import current_app

    base = (current_app.config.get("PUBLIC_BASE_URL") or "").rstrip("/")
    return base + url_for(endpoint, **kw) if base else url_for(endpoint, _external=True, **kw)


def _json(obj, status=200, mimetype="application/json"):
    return Response(json.dumps(obj, ensure_ascii=False), status=status, mimetype=mimetype)


def _link(endpoint, rel, type_, title=None, **kw):
    out = {"href": _abs(endpoint, **kw), "rel": rel, "type": type_}
    if title:
        out["title"] = title
    return out


@bp.get("")
@bp.get("/")
@access(public=True)
@reads_replica
def landing():
    return _json({
        "title": "Sanquan parcel register (三权 地块登记簿)",
        "description": "Current contract-land and homestead parcels, CGCS2000.",
        "links": [
            _link("ogc.landing", "self", "application/json"),
            _link("ogc.conformance", "conformance", "application/json"),
            _link("ogc.collections", "data", "application/json"),
            {"href": _abs("api-docs.openapi_json"), "rel": "service-desc",
             "type": "application/vnd.oai.openapi+json;version=3.0"},
        ],
    })


@bp.get("/conformance")
@access(public=True)
@reads_replica
def conformance():
    return _json({"conformsTo": [
        "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
        "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    ]})


def _collection():
    ext = db.session.execute(text(
        "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
        "(SELECT ST_Extent(geom) AS e FROM parcel WHERE end_lifespan IS NULL) x")).first()
    return {
        "id": "parcels", "title": "Parcels (地块)", "itemType": "feature",
        "description": "Current versions of registered parcels; no personal data.",
        "extent": {"spatial": {"bbox": [list(ext) if ext and ext[0] is not None else
                                        [-180, -90, 180, 90]], "crs": CRS84}},
        "crs": [CRS84], "storageCrs": "http://www.opengis.net/def/crs/EPSG/0/4490",
        "links": [
            _link("ogc.collection", "self", "application/json", collection_id="parcels"),
            _link("ogc.items", "items", "application/geo+json", collection_id="parcels"),
        ],
    }


@bp.get("/collections")
@access(public=True)
@reads_replica
def collections():
    return _json({"collections": [_collection()],
                  "links": [_link("ogc.collections", "self", "application/json")]})


@bp.get("/collections/<collection_id>")
@access(public=True)
@reads_replica
def collection(collection_id):
    if collection_id != "parcels":
        abort(404)
    return _json(_collection())


def _int(name, default, lo, hi):
    raw = request.args.get(name)
    if raw is None:
        return default
    try:
        v = int(raw)
    except ValueError:
        abort(400, f"{name} must be an integer")
    if not lo <= v <= hi:
        abort(400, f"{name} must be between {lo} and {hi}")
    return v


@bp.get("/collections/<collection_id>/items")
@access(public=True)
@reads_replica
def items(collection_id):
    if collection_id != "parcels":
        abort(404)
    limit = _int("limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    offset = _int("offset", 0, 0, 10 ** 9)
    where = ["p.end_lifespan IS NULL"]
    params = {"limit": limit, "offset": offset}
    bbox = request.args.get("bbox")
    if bbox:
        try:
            b = [float(v) for v in bbox.split(",")]
        except ValueError:
            abort(400, "bbox must be four numbers: minx,miny,maxx,maxy")
        if len(b) != 4 or b[0] > b[2] or b[1] > b[3]:
            abort(400, "bbox must be four numbers: minx,miny,maxx,maxy")
        where.append("p.geom && ST_MakeEnvelope(:x1, :y1, :x2, :y2, 4490)")
        params.update(x1=b[0], y1=b[1], x2=b[2], y2=b[3])
    cond = " AND ".join(where)
    matched = db.session.execute(text(f"SELECT count(*) FROM parcel p WHERE {cond}"),
                                 params).scalar()
    rows = db.session.execute(text(f"""
        SELECT p.id, ST_AsGeoJSON(p.geom, 9)::json AS g, {PROPS} AS props
        FROM parcel p JOIN collective c ON c.id = p.collective_id
        WHERE {cond} ORDER BY p.id LIMIT :limit OFFSET :offset"""), params).all()
    feats = [{"type": "Feature", "id": r.id, "geometry": r.g, "properties": r.props}
             for r in rows]
    base = {k: v for k, v in request.args.items() if k not in ("offset",)}
    links = [{"href": _abs("ogc.items", collection_id="parcels",
                              offset=offset, **base), "rel": "self",
              "type": "application/geo+json"}]
    if offset + limit < matched:
        links.append({"href": _abs("ogc.items", collection_id="parcels",
                                      offset=offset + limit, **base),
                      "rel": "next", "type": "application/geo+json"})
    if offset > 0:
        links.append({"href": _abs("ogc.items", collection_id="parcels",
                                      offset=max(0, offset - limit), **base),
                      "rel": "prev", "type": "application/geo+json"})
    return _json({"type": "FeatureCollection", "features": feats, "numberMatched": matched,
                  "numberReturned": len(feats), "links": links},
                 mimetype="application/geo+json")


@bp.get("/collections/<collection_id>/items/<int:feature_id>")
@access(public=True)
@reads_replica
def item(collection_id, feature_id):
    if collection_id != "parcels":
        abort(404)
    r = db.session.execute(text(f"""
        SELECT p.id, ST_AsGeoJSON(p.geom, 9)::json AS g, {PROPS} AS props
        FROM parcel p JOIN collective c ON c.id = p.collective_id
        WHERE p.id = :i AND p.end_lifespan IS NULL"""), {"i": feature_id}).first()
    if r is None:
        abort(404)
    return _json({"type": "Feature", "id": r.id, "geometry": r.g, "properties": r.props,
                  "links": [_link("ogc.item", "self", "application/geo+json",
                                  collection_id="parcels", feature_id=r.id),
                            _link("ogc.collection", "collection", "application/json",
                                  collection_id="parcels")]},
                 mimetype="application/geo+json")
