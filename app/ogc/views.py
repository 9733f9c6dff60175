"""OGC API – Features for the current parcels, so that QGIS and GDAL can read the register:
Part 1 (core, GeoJSON, OpenAPI), Part 2 (CRS: CRS84, CGCS2000 EPSG:4490, the Gauss-Krüger
zones; `crs`, `bbox-crs`, Content-Crs) and Part 3 (CQL2 text filters on the queryables).
Public: the properties carry no personal data (no holder, no ID).  Queries: app/ogc/queries.py."""
import json

from flask import Blueprint, Response, abort, request, url_for

from app.access import access
from app.extensions import csrf, reads_replica

from . import queries as q

bp = Blueprint("ogc", __name__, url_prefix="/ogc")
csrf.exempt(bp)
MAX_LIMIT = 10000
DEFAULT_LIMIT = 100
CRS84 = q.CRS84
CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables-query-parameters",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/features-filter",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-cql2",
    "http://www.opengis.net/spec/cql2/1.0/conf/advanced-comparison-operators",
]


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
            # this service's own OpenAPI document (GDAL reads the items parameters there to
            # send an attribute filter to the server); the JSON API's is /api/openapi.json
            _link("ogc.openapi", "service-desc", "application/vnd.oai.openapi+json;version=3.0"),
            {"href": _abs("api-docs.openapi_json"), "rel": "related",
             "type": "application/vnd.oai.openapi+json;version=3.0",
             "title": "the JSON API of the register (bearer tokens)"},
        ],
    })


def _param(name, schema, description, required=False, style=None, explode=None):
    out = {"name": name, "in": "query", "required": required, "schema": schema,
           "description": description}
    if style:
        out.update(style=style, explode=explode)
    return out


def _openapi() -> dict:
    """OpenAPI 3.0 of /ogc: the items parameters (Part 1 limit/offset/bbox, Part 2 crs and
    bbox-crs, Part 3 filter with filter-lang cql2-text and the queryables as parameters)."""
    crs = {"type": "string", "format": "uri", "enum": q.SUPPORTED_CRS}
    items_params = [
        _param("limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT,
                         "default": DEFAULT_LIMIT}, "page size"),
        _param("offset", {"type": "integer", "minimum": 0, "default": 0}, "first item"),
        _param("bbox", {"type": "array", "minItems": 4, "maxItems": 4,
                        "items": {"type": "number"}}, "bounding box (in bbox-crs)", False,
               "form", False),
        _param("bbox-crs", crs, "CRS of bbox (default CRS84)"),
        _param("crs", crs, "CRS of the answer (default CRS84)"),
        _param("filter", {"type": "string"}, "CQL2 text on the queryables"),
        _param("filter-lang", {"type": "string", "enum": ["cql2-text"],
                               "default": "cql2-text"}, "filter language"),
        _param("filter-crs", crs, "CRS of the filter's geometries"),
    ] + [_param(k, {"type": t}, f"queryable {k} (equality)")
         for k, t in q.QUERYABLES.items()]
    fc = {"description": "features", "content": {"application/geo+json": {
        "schema": {"type": "object"}}}}
    doc = {"description": "JSON", "content": {"application/json": {
        "schema": {"type": "object"}}}}
    items_op = {"get": {"operationId": "getParcels", "summary": "current parcels",
                        "parameters": items_params, "responses": {"200": fc}}}
    cid = {"name": "collectionId", "in": "path", "required": True,
           "schema": {"type": "string", "enum": ["parcels"]}}
    return {
        "openapi": "3.0.3",
        "info": {"title": "Sanquan parcel register: OGC API – Features", "version": "1.0"},
        "servers": [{"url": _abs("ogc.landing").rstrip("/")}],
        "paths": {
            "/": {"get": {"operationId": "getLandingPage", "responses": {"200": doc}}},
            "/conformance": {"get": {"operationId": "getConformance",
                                     "responses": {"200": doc}}},
            "/collections": {"get": {"operationId": "getCollections",
                                     "responses": {"200": doc}}},
            "/collections/parcels": {"get": {"operationId": "describeParcels",
                                              "responses": {"200": doc}}},
            "/collections/parcels/items": items_op,
            "/collections/{collectionId}/items": {"get": {
                **items_op["get"], "operationId": "getFeatures",
                "parameters": [cid] + items_params}},
            "/collections/parcels/items/{featureId}": {"get": {
                "operationId": "getParcel", "parameters": [
                    {"name": "featureId", "in": "path", "required": True,
                     "schema": {"type": "integer"}},
                    _param("crs", crs, "CRS of the answer (default CRS84)")],
                "responses": {"200": fc}}},
            "/collections/parcels/queryables": {"get": {
                "operationId": "getQueryables", "responses": {"200": doc}}},
        },
    }


@bp.get("/api")
@access(public=True)
def openapi():
    return _json(_openapi(), mimetype="application/vnd.oai.openapi+json;version=3.0")


@bp.get("/conformance")
@access(public=True)
@reads_replica
def conformance():
    return _json({"conformsTo": CONFORMANCE})


def _collection():
    ext = q.extent()
    return {
        "id": "parcels", "title": "Parcels (地块)", "itemType": "feature",
        "description": "Current versions of registered parcels; no personal data.",
        "extent": {"spatial": {"bbox": [list(ext) if ext and ext[0] is not None else
                                        [-180, -90, 180, 90]], "crs": CRS84}},
        "crs": q.SUPPORTED_CRS, "storageCrs": "http://www.opengis.net/def/crs/EPSG/0/4490",
        "links": [
            _link("ogc.collection", "self", "application/json", collection_id="parcels"),
            _link("ogc.items", "items", "application/geo+json", collection_id="parcels"),
            _link("ogc.queryables", "http://www.opengis.net/def/rel/ogc/1.0/queryables",
                  "application/schema+json", collection_id="parcels"),
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
    known = {"limit", "offset", "bbox", "bbox-crs", "crs", "filter", "filter-lang", "f",
             "filter-crs"}
    unknown = set(request.args) - known - set(q.QUERYABLES)
    if unknown:
        abort(400, f"unknown parameter {sorted(unknown)[0][:60]}")
    try:
        srid = q.srid_of(request.args.get("crs"))
        bbox_srid = q.srid_of(request.args.get("bbox-crs"))
        lang = request.args.get("filter-lang", "cql2-text")
        if lang != "cql2-text":
            raise q.BadRequest("filter-lang must be cql2-text")
        if request.args.get("filter-crs"):
            q.srid_of(request.args.get("filter-crs"))
        cql = q.parse_filter(request.args.get("filter"))
        # queryables as query parameters (Part 3): ?township=140404101
        for k in set(request.args) & set(q.QUERYABLES):
            from sqlalchemy import and_

            cond = q.to_sql(_eq_node(k, request.args[k]))
            cql = cond if cql is None else and_(cql, cond)
    except q.BadRequest as e:
        abort(400, str(e))
    bbox = None
    raw = request.args.get("bbox")
    if raw:
        try:
            bbox = [float(v) for v in raw.split(",")]
        except ValueError:
            abort(400, "bbox must be four numbers: minx,miny,maxx,maxy")
        if len(bbox) != 4 or bbox[0] > bbox[2] or bbox[1] > bbox[3] \
                or any(v != v or abs(v) > 1e8 for v in bbox):
            abort(400, "bbox must be four numbers: minx,miny,maxx,maxy")
    elif request.args.get("bbox-crs"):
        abort(400, "bbox-crs without bbox")
    try:
        matched, rows, more = q.items(limit, offset, bbox, bbox_srid, srid, cql)
    except q.BadRequest as e:
        abort(400, str(e))
    feats = [{"type": "Feature", "id": r[0], "geometry": json.loads(r[1]), "properties": r[2]}
             for r in rows]
    base = {k: v for k, v in request.args.items() if k not in ("offset",)}
    links = [{"href": _abs("ogc.items", collection_id="parcels",
                              offset=offset, **base), "rel": "self",
              "type": "application/geo+json"}]
    if more:
        links.append({"href": _abs("ogc.items", collection_id="parcels",
                                      offset=offset + limit, **base),
                      "rel": "next", "type": "application/geo+json"})
    if offset > 0:
        links.append({"href": _abs("ogc.items", collection_id="parcels",
                                      offset=max(0, offset - limit), **base),
                      "rel": "prev", "type": "application/geo+json"})
    body = {"type": "FeatureCollection", "features": feats}
    if matched is not None:  # optional (OGC API – Features 7.15.4): see q.COUNT_CAP
        body["numberMatched"] = matched
    body.update({"numberReturned": len(feats), "links": links})
    return _crs(_json(body, mimetype="application/geo+json"), srid)


@bp.get("/collections/<collection_id>/items/<int:feature_id>")
@access(public=True)
@reads_replica
def item(collection_id, feature_id):
    if collection_id != "parcels":
        abort(404)
    try:
        srid = q.srid_of(request.args.get("crs"))
    except q.BadRequest as e:
        abort(400, str(e))
    r = q.item(feature_id, srid)
    if r is None:
        abort(404)
    return _crs(_json({"type": "Feature", "id": r[0], "geometry": json.loads(r[1]),
                       "properties": r[2],
                  "links": [_link("ogc.item", "self", "application/geo+json",
                                  collection_id="parcels", feature_id=r[0]),
                            _link("ogc.collection", "collection", "application/json",
                                  collection_id="parcels")]},
                      mimetype="application/geo+json"), srid)


def _eq_node(name, value):
    from pygeofilter import ast

    if q.QUERYABLES[name] in ("number", "integer"):
        try:
            value = float(value) if q.QUERYABLES[name] == "number" else int(value)
        except ValueError:
            raise q.BadRequest(f"{name} must be a number") from None
    return ast.Equal(ast.Attribute(name), value)


def _crs(resp, srid):
    resp.headers["Content-Crs"] = f"<{q.uri_of(srid)}>"
    return resp


@bp.get("/collections/<collection_id>/queryables")
@access(public=True)
@reads_replica
def queryables(collection_id):
    if collection_id != "parcels":
        abort(404)
    return _json({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": _abs("ogc.queryables", collection_id="parcels"),
        "type": "object", "title": "Parcels (地块)",
        "properties": {k: {"type": t} for k, t in q.QUERYABLES.items()},
        "additionalProperties": False}, mimetype="application/schema+json")
