"""Read-only queries of the parcel register for its pages (views hold no SQL)."""
from __future__ import annotations

from shapely import from_wkb
from sqlalchemy import or_, select, text

from app.collectives.models import Collective
from app.extensions import db
from app.people.models import Household

from .models import Parcel


def collective_code(parcel: Parcel) -> str | None:
    return db.session.scalar(select(Collective.fbfbm).where(Collective.id == parcel.collective_id))


def map_bounds(household_code: str | None = None, like: str | None = None) -> list | None:
    """The extent of the current parcels a user may see: a farmer's household's (pass
    `household_code`, "-" for none), else those whose collective code is LIKE `like` (or all)."""
    q = "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT ST_Extent(p.geom) AS e " \
        "FROM parcel p JOIN collective c ON c.id = p.collective_id WHERE p.end_lifespan IS NULL"
    params = {}
    if household_code is not None:
        q += " AND p.household_code = :hh"
        params["hh"] = household_code
    elif like:
        q += " AND c.fbfbm LIKE :like"
        params["like"] = like
    bounds = db.session.execute(text(q + ") x"), params).first()
    return list(bounds) if bounds and bounds[0] else None


def search(q: str, like: str | None, limit: int = 20) -> list[dict]:
    """Current parcels whose code or household code starts with `q` or whose holder's name
    contains it, within `like`, with their bounding box."""
    stmt = (select(Parcel.id, Parcel.code, Parcel.kind, Parcel.household_code, Household.name,
                   text("ST_XMin(parcel.geom)"), text("ST_YMin(parcel.geom)"),
                   text("ST_XMax(parcel.geom)"), text("ST_YMax(parcel.geom)"))
            .select_from(Parcel).outerjoin(Household, Household.cbfbm == Parcel.household_code)
            .join(Collective, Collective.id == Parcel.collective_id)
            .where(Parcel.end_lifespan.is_(None),
                   or_(Parcel.code.startswith(q), Parcel.household_code.startswith(q),
                       Household.name.contains(q))))
    if like:
        stmt = stmt.where(Collective.fbfbm.like(like))
    rows = db.session.execute(stmt.order_by(Parcel.code).limit(limit)).all()
    return [{"id": r[0], "code": r[1], "kind": r[2], "household": r[3], "holder": r[4],
             "bbox": [r[5], r[6], r[7], r[8]]} for r in rows]


def survey_geometry(parcel: Parcel):
    """The parcel's geometry in its survey CRS (shapely)."""
    return from_wkb(db.session.execute(text(
        "SELECT ST_AsBinary(ST_Transform(geom, survey_srid)) FROM parcel WHERE id = :i"),
        {"i": parcel.id}).scalar())


def current_geometries(uids: list[int]) -> list:
    """(code, WKB in the survey CRS) of the current parcels with these uids, by code."""
    return db.session.execute(text("""
        SELECT p.code, ST_AsBinary(ST_Transform(p.geom, p.survey_srid)) AS wkb FROM parcel p
        WHERE p.end_lifespan IS NULL AND p.uid = ANY(:u) ORDER BY p.code"""), {"u": uids}).all()
