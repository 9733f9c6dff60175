"""Queries of the OGC API – Features service (issue 19): the parcel collection in CRS84,
CGCS2000 (EPSG:4490) or a CGCS2000 Gauss-Krüger zone, with bbox / bbox-crs and CQL2-text
filters.  CQL2 is parsed by pygeofilter; the AST is translated here into SQLAlchemy
expressions over a fixed set of queryables, every literal a bound parameter."""
from __future__ import annotations

from pygeofilter import ast
from pygeofilter.parsers.cql2_text import parse as parse_cql2
from sqlalchemy import and_, func, not_, or_, select

from app.collectives.models import Collective
from app.extensions import db
from app.parcels.models import Parcel

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG = "http://www.opengis.net/def/crs/EPSG/0/"
# CGCS2000 geographic and the Gauss-Krüger zones: 3° with zone prefix 4513–4533, 3° central
# meridian 4534–4554; 6° zones 4491–4512.
GK_SRIDS = tuple(range(4491, 4555))
SRIDS = (4490, *GK_SRIDS)
SUPPORTED_CRS = [CRS84] + [EPSG + str(s) for s in SRIDS]


class BadRequest(ValueError):
    """A parameter the client must correct (400)."""


def srid_of(uri: str | None) -> int | None:
    """None for CRS84 (the default), else the EPSG code of a supported CRS URI."""
    if not uri or uri.strip() in (CRS84, "[OGC:CRS84]", "OGC:CRS84"):
        return None
    u = uri.strip().strip("[]")
    for prefix in (EPSG, "EPSG:"):
        if u.startswith(prefix) and u[len(prefix):].isdigit():
            srid = int(u[len(prefix):])
            if srid in SRIDS:
                return srid
    raise BadRequest(f"unsupported CRS {uri[:100]}; supported: CRS84, EPSG 4490, 4491-4554")


def uri_of(srid: int | None) -> str:
    return CRS84 if srid is None else EPSG + str(srid)


# The queryables: CQL2 names → columns.  `class` is the parcel kind (contract / homestead),
# `township` the first 9 digits of the issuing party's code.
def _queryables():
    return {
        "code": Parcel.code, "class": Parcel.kind, "kind": Parcel.kind,
        "township": func.substr(Collective.fbfbm, 1, 9), "fbfbm": Collective.fbfbm,
        "village": func.substr(Collective.fbfbm, 1, 12), "name": Parcel.name,
        "dklb": Parcel.dklb, "tdlylx": Parcel.tdlylx, "dldj": Parcel.dldj,
        "tdyt": Parcel.tdyt, "sfjbnt": Parcel.sfjbnt, "scmj": Parcel.scmj,
        "scmjm": Parcel.scmjm, "version": Parcel.version,
    }


QUERYABLES = {"code": "string", "class": "string", "kind": "string", "township": "string",
              "fbfbm": "string", "village": "string", "name": "string", "dklb": "string",
              "tdlylx": "string", "dldj": "string", "tdyt": "string", "sfjbnt": "string",
              "scmj": "number", "scmjm": "number", "version": "integer"}


def _value(node, cols):
    if isinstance(node, ast.Attribute):
        if node.name not in cols:
            raise BadRequest(f"unknown queryable {node.name[:60]}; see /queryables")
        return cols[node.name]
    if isinstance(node, (str, int, float, bool)) or node is None:
        return node
    raise BadRequest(f"unsupported CQL2 expression {type(node).__name__}")


BIGINT = 2 ** 63


def _typed(node, name: str | None):
    """A literal compared with the queryable `name` must be of its type (a string for a
    string, a finite number for a number): a mismatch is the client's error (400), never a
    database error (500)."""
    if name is None or isinstance(node, ast.Attribute) or node is None:
        return
    kind = QUERYABLES[name]
    if kind == "string":
        ok = isinstance(node, str)
    else:
        ok = isinstance(node, (int, float)) and not isinstance(node, bool) \
            and node == node and abs(node) < BIGINT
    if not ok:
        raise BadRequest(f"{name} is a {kind}; {str(node)[:40]!r} is not")


def _name(node) -> str | None:
    return node.name if isinstance(node, ast.Attribute) else None


def _check_types(*nodes) -> None:
    """Every literal among `nodes` has the type of the queryables among them; two queryables
    compared must be of one type."""
    names = [_name(n) for n in nodes if _name(n) in QUERYABLES]
    if not names:
        return
    kinds = {"number" if QUERYABLES[n] == "integer" else QUERYABLES[n] for n in names}
    if len(kinds) > 1:
        raise BadRequest(f"{' and '.join(names[:2])} are of different types")
    for n in nodes:
        _typed(n, names[0])


def to_sql(node, cols=None):
    """A SQLAlchemy boolean expression for a CQL2 AST (comparison, LIKE, IN, BETWEEN,
    IS NULL, AND/OR/NOT); literals become bound parameters."""
    cols = cols or _queryables()
    if isinstance(node, ast.And):
        return and_(to_sql(node.lhs, cols), to_sql(node.rhs, cols))
    if isinstance(node, ast.Or):
        return or_(to_sql(node.lhs, cols), to_sql(node.rhs, cols))
    if isinstance(node, ast.Not):
        return not_(to_sql(node.sub_node, cols))
    ops = {ast.Equal: "__eq__", ast.NotEqual: "__ne__", ast.LessThan: "__lt__",
           ast.LessEqual: "__le__", ast.GreaterThan: "__gt__", ast.GreaterEqual: "__ge__"}
    for cls, op in ops.items():
        if type(node) is cls:
            lhs, rhs = _value(node.lhs, cols), _value(node.rhs, cols)
            _check_types(node.lhs, node.rhs)
            if not hasattr(lhs, op) or isinstance(lhs, (str, int, float)):
                lhs, rhs = rhs, lhs  # literal on the left: 'x' = code
                op = {"__lt__": "__gt__", "__gt__": "__lt__", "__le__": "__ge__",
                      "__ge__": "__le__"}.get(op, op)
            if isinstance(lhs, (str, int, float)) or lhs is None:
                raise BadRequest("a comparison needs a queryable")
            return getattr(lhs, op)(rhs)
    if isinstance(node, ast.Like):
        col = _value(node.lhs, cols)
        if _name(node.lhs) is None or QUERYABLES[node.lhs.name] != "string" \
                or not isinstance(node.pattern, str):
            raise BadRequest("LIKE needs a string queryable and a string pattern")
        pattern = str(node.pattern)
        if node.wildcard != "%" or node.singlechar not in (".", "_"):
            pattern = pattern.replace(node.wildcard, "%")
        pattern = pattern.replace(node.singlechar, "_") if node.singlechar != "_" else pattern
        expr = col.ilike(pattern) if node.nocase else col.like(pattern)
        return not_(expr) if node.not_ else expr
    if isinstance(node, ast.In):
        col = _value(node.lhs, cols)
        values = [_value(v, cols) for v in node.sub_nodes]
        _check_types(node.lhs, *node.sub_nodes)
        expr = col.in_(values)
        return not_(expr) if node.not_ else expr
    if isinstance(node, ast.Between):
        col = _value(node.lhs, cols)
        _check_types(node.lhs, node.low, node.high)
        expr = col.between(_value(node.low, cols), _value(node.high, cols))
        return not_(expr) if node.not_ else expr
    if isinstance(node, ast.IsNull):
        col = _value(node.lhs, cols)
        return col.isnot(None) if node.not_ else col.is_(None)
    if isinstance(node, ast.Include):
        return not_(node.not_) if hasattr(node, "not_") else True
    raise BadRequest(f"unsupported CQL2 predicate {type(node).__name__}")


def parse_filter(text_filter: str | None):
    if not text_filter:
        return None
    if len(text_filter) > 4000:
        raise BadRequest("filter is too long")
    try:
        tree = parse_cql2(text_filter)
    except Exception as e:  # noqa: BLE001 — the parser's own exceptions vary
        raise BadRequest(f"filter is not valid CQL2 text: {type(e).__name__}") from None
    return to_sql(tree)


def extent():
    return db.session.execute(select(
        func.ST_XMin(func.ST_Extent(Parcel.geom)), func.ST_YMin(func.ST_Extent(Parcel.geom)),
        func.ST_XMax(func.ST_Extent(Parcel.geom)), func.ST_YMax(func.ST_Extent(Parcel.geom)))
        .where(Parcel.end_lifespan.is_(None))).first()


def _geojson(srid: int | None):
    g = Parcel.geom if srid is None else func.ST_Transform(Parcel.geom, srid)
    if srid is not None:
        # EPSG:4490 is latitude, longitude; the Gauss-Krüger zones northing, easting.
        g = func.ST_FlipCoordinates(g)
    return func.ST_AsGeoJSON(g, 9 if srid in (None, 4490) else 3)


def _props():
    return func.json_build_object(
        "code", Parcel.code, "kind", Parcel.kind, "name", Parcel.name, "fbfbm", Collective.fbfbm,
        "township", func.substr(Collective.fbfbm, 1, 9), "dklb", Parcel.dklb,
        "tdlylx", Parcel.tdlylx, "dldj", Parcel.dldj, "tdyt", Parcel.tdyt,
        "sfjbnt", Parcel.sfjbnt, "scmj", Parcel.scmj, "scmjm", Parcel.scmjm,
        "version", Parcel.version, "survey_srid", Parcel.survey_srid)


def _transformed_envelope(env):
    """A projected bbox in CGCS2000, computed on its own first: coordinates that the
    projection cannot invert (far outside the zone) are the client's error (400), not a
    failed query (500)."""
    from sqlalchemy.exc import DBAPIError

    t = func.ST_Transform(env, 4490)
    try:
        with db.session.begin_nested():
            b = db.session.execute(select(func.ST_XMin(t), func.ST_YMin(t), func.ST_XMax(t),
                                          func.ST_YMax(t))).first()
    except DBAPIError:
        raise BadRequest("bbox lies outside the area of its bbox-crs") from None
    if b is None or any(v is None or v != v or abs(v) == float("inf") for v in b):
        raise BadRequest("bbox lies outside the area of its bbox-crs")
    return func.ST_MakeEnvelope(b[0], b[1], b[2], b[3], 4490)


# numberMatched is optional in OGC API – Features (Part 1, 7.15.4): counted only under a filter
# (bbox or CQL2) and only up to this many, so that no page costs a count of the register
# (a count of 10 million current parcels is a scan: 407 ms at 1M); above it, left out.
COUNT_CAP = 10_000


def items(limit: int, offset: int, bbox: list[float] | None = None,
          bbox_srid: int | None = None, srid: int | None = None, cql=None):
    """(numberMatched or None, rows of (id, geometry GeoJSON text, properties), whether more
    rows follow) of current parcels.  numberMatched is None without a filter or above
    COUNT_CAP."""
    conds = [Parcel.end_lifespan.is_(None)]
    if bbox:
        x1, y1, x2, y2 = bbox
        if bbox_srid is not None:  # the axis order of the CRS: lat/lon, northing/easting
            x1, y1, x2, y2 = y1, x1, y2, x2
        env = func.ST_MakeEnvelope(x1, y1, x2, y2, bbox_srid or 4490)
        if bbox_srid not in (None, 4490):
            env = _transformed_envelope(env)
        conds.append(Parcel.geom.op("&&")(env))
    if cql is not None:
        conds.append(cql)
    base = select(Parcel.id).join(Collective, Collective.id == Parcel.collective_id) \
        .where(*conds)
    matched = None
    if len(conds) > 1:
        n = db.session.scalar(select(func.count()).select_from(
            base.limit(COUNT_CAP + 1).subquery()))
        matched = n if n <= COUNT_CAP else None
    rows = db.session.execute(
        select(Parcel.id, _geojson(srid), _props())
        .join(Collective, Collective.id == Parcel.collective_id).where(*conds)
        .order_by(Parcel.id).limit(limit + 1).offset(offset)).all()
    return matched, rows[:limit], len(rows) > limit


def item(feature_id: int, srid: int | None = None):
    return db.session.execute(
        select(Parcel.id, _geojson(srid), _props())
        .join(Collective, Collective.id == Parcel.collective_id)
        .where(Parcel.id == feature_id, Parcel.end_lifespan.is_(None))).first()
