"""The parcel register: registration of single parcels, new versions, splits and merges with
lineage, the register as of a date.  A registered parcel is never updated in place."""
from __future__ import annotations

import datetime as dt
import json

import shapely
from flask_babel import lazy_gettext as _l
from psycopg import errors as pg_errors
from sqlalchemy import func, or_, select, text
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.orm.base import instance_state

from app import signals
from app.audit import operations as audit
from app.collectives.models import Collective
from app.errors import DomainError, Rule
from app.extensions import db
from app.grounds import guard_text
from app.people.models import Household
from gis.area import gk3_zone_srid, overlap_m2
from gis.stored import STORED

from .models import Lineage, Mutation, Parcel, RegistrySetting

NYT = _l("NY/T 2539-2016 (parcels do not overlap; codes are unique)")
HISTORY = _l("Sanquan register rule: a registered record changes by new versions, never in place")
OVERLAP = Rule("parcel.overlap",
               _l("Parcel %(code)s would overlap registered parcel %(other)s by %(area)s m² "
                  "(tolerance %(tol)s m²)."), NYT, 409)
CODE_TAKEN = Rule("parcel.code_taken", _l("A current parcel already has code %(code)s."), NYT,
                  409)
BAD_GEOMETRY = Rule("parcel.geometry", _l("The geometry is not a valid polygon: %(reason)s."),
                    NYT)
NOT_CURRENT = Rule("parcel.not_current",
                   _l("Parcel %(code)s version %(version)s is history; only the current version "
                      "can change."), HISTORY, 409)
NO_REASON = Rule("parcel.reason", _l("Every change to the register needs a reason."), HISTORY)
SPLIT_COVER = Rule("parcel.split.cover",
                   _l("The parts do not cover the parcel: %(gap)s m² differ (tolerance %(tol)s m²)."),
                   NYT)
SPLIT_OVERLAP = Rule("parcel.split.overlap",
                     _l("Parts %(a)s and %(b)s overlap by %(area)s m²."), NYT)
SPLIT_PARTS = Rule(
    "parcel.split.parts",
    _l("A split divides a parcel into two or more parts; %(n)s part(s) given. One part covering "
       "the whole parcel is the same land under a new number: an amendment, which hands the "
       "parcel's rights to nobody."),
    _l("农村土地承包法 (Rural Land Contracting Law) art 27; NY/T 2539-2016"))
MERGE_HOLDERS = Rule(
    "parcel.merge.holders",
    _l("Parcels %(codes)s are held by different households (%(holders)s): a merge joins one "
       "holder's land; land passes between households only by a swap or transfer, or a "
       "voluntary withdrawal, never by redrawing parcels."),
    _l("农村土地承包法 (Rural Land Contracting Law) arts 27, 33, 34"))
MERGE_NEIGHBOURS = Rule("parcel.merge.apart",
                        _l("Parcels to merge must be current, of one kind and one issuing party, "
                           "and form one piece."), NYT)


REMARK_COLUMNS = ("remarks", "east", "south", "west", "north")  # DKBZXX and 四至: free text


def tolerance() -> float:
    row = db.session.get(RegistrySetting, "overlap_tolerance_m2")
    return float(row.value) if row else 1.0


def _reason(reason: str | None, actor=None, what: str = "change", code: str | None = None,
            **more: str | None) -> str:
    """The stripped reason of a register change; it and any other free text of the change
    (`more`: remarks) go through the rights guard's detector first (app.grounds.guard_text)."""
    if not (reason or "").strip():
        raise DomainError(NO_REASON)
    # the reason: no condition, no settling given as the change's cause; the remarks and 四至
    # describe the land (roads and places named 进城路, 离村…): only trades and surrenders are
    # refused there (app.guardtext POLICIES, "register" and "register_remark")
    guard_text(actor, "register", {"reason": reason}, f"parcel.{what}.refused",
               "parcel", code, reason=reason)
    guard_text(actor, "register_remark", more, f"parcel.{what}.refused", "parcel", code,
               reason=reason)
    return reason.strip()


def _check_geometry(wkt: str, srid: int) -> shapely.Geometry:
    g = shapely.from_wkt(wkt)
    if g.geom_type not in ("Polygon", "MultiPolygon") or not g.is_valid:
        raise DomainError(BAD_GEOMETRY, reason=shapely.is_valid_reason(g))
    return g


def _precheck(wkt: str, srid: int, code: str, exclude_uids=(), check_code: bool = True):
    """The operation's own checks in one round trip: is the code free, does the geometry
    overlap a current parcel?  (The database trigger checks the overlap again, under a lock.)"""
    row = db.session.execute(text(f"""
        WITH n AS (SELECT {STORED.format(g="ST_GeomFromText(:wkt, :srid)")} AS g),
             s AS (SELECT coalesce((SELECT value::float8 FROM registry_setting
                                    WHERE key = 'overlap_tolerance_m2'), 1.0) AS tol)
        SELECT (SELECT true FROM parcel WHERE code = :code AND end_lifespan IS NULL
                  AND :check_code) AS taken, (SELECT tol FROM s) AS tol,
               (SELECT x.code || '|' || x.area FROM (
                  SELECT p.code, overlap_area_m2(p.geom, n.g, :srid) AS area FROM parcel p, n
                  WHERE p.end_lifespan IS NULL AND p.geom && n.g AND NOT (p.uid = ANY(:ex))) x
                WHERE x.area > (SELECT tol FROM s) LIMIT 1) AS clash"""),
        {"wkt": wkt, "srid": srid, "ex": list(exclude_uids), "code": code,
         "check_code": check_code}).one()
    if row.taken:
        raise DomainError(CODE_TAKEN, code=code)
    if row.clash:
        other, area = row.clash.split("|")
        raise DomainError(OVERLAP, code=code, other=other, area=f"{float(area):.2f}", tol=row.tol)


# The columns a new version comes back with; geometry and attributes load on first use.
_RETURNED = tuple(c.key for c in Parcel.__table__.columns
                  if c.key not in ("geom", "geom_web", "attrs"))
_INSERT_SQL = (f"SELECT {', '.join(_RETURNED)} FROM parcel_insert(%(v)s::jsonb, %(wkt)s, "
               "%(srid)s, %(zone)s, %(who)s, %(free)s, %(skip)s, %(action)s, %(actor_id)s, "
               "%(reason)s)")


def _insert(actor, values: dict, wkt: str, srid: int, register: bool = False,
            reason: str | None = None) -> Parcel | None:
    """Insert one version and return it, in one call of parcel_insert() (migration 0010).

    `register=True` is a new parcel: the code must be free and the registration's audit entry
    is written beside it; None is returned when the code is taken or the guard refused an
    overlap (then `sanquan.clash` says with what).  Otherwise an overlap the checks missed (a
    concurrent change) aborts the transaction and is raised as the rule it broke.

    The call goes through the session's own connection and transaction, at the driver: the
    ORM's execution and loading of one row cost ~1.3 ms more than the call itself on the project
    machine (bench/), the largest part of a registration.  The row comes back as a persistent
    Parcel all the same (see _persistent)."""
    zone = srid if 4513 <= srid <= 4554 else gk3_zone_srid(
        shapely.from_wkt(wkt).centroid.x if srid in (4326, 4490) else db.session.execute(
            text("SELECT ST_X(ST_Centroid(ST_Transform(ST_GeomFromText(:w, :s), 4490)))"),
            {"w": wkt, "s": srid}).scalar())
    params = {"v": json.dumps(values, ensure_ascii=False, default=str), "wkt": wkt,
              "srid": srid, "zone": zone, "who": getattr(actor, "username", actor or "system"),
              "free": register, "skip": register,
              "action": "parcel.register" if register else None,
              "actor_id": getattr(actor, "id", None), "reason": reason}
    db.session.flush()  # what the ORM holds pending goes first, as autoflush would
    driver = db.session.connection().connection.driver_connection
    try:
        row = driver.execute(_INSERT_SQL, params).fetchone()
    except (pg_errors.ExclusionViolation, pg_errors.UniqueViolation) as e:
        db.session.rollback()
        if isinstance(e, pg_errors.ExclusionViolation):
            msg = str(e).split("\n")[0]
            other = msg.split("registered parcel ")[-1].split(" ")[0]
            area = msg.split(" by ")[-1].split(" ")[0] if " by " in msg else "?"
            raise DomainError(OVERLAP, code=values.get("code"), other=other, area=area,
                              tol=tolerance()) from None
        raise DomainError(CODE_TAKEN, code=values.get("code")) from None
    return None if row is None else _persistent(Parcel, dict(zip(_RETURNED, row, strict=True)))


def _persistent(model, values: dict):
    """The ORM instance of a row this transaction has just written, without reading it back:
    the given columns as loaded values, the others loaded on first access."""
    obj = model()
    # As set_committed_value() key by key, in one step: the values are the instance's loaded
    # state (its __dict__), committed all at once.  Key by key it cost ~0.3 ms for a parcel's
    # 30 columns, the largest Python part of one registration (bench/, 2026-11-30).
    state = instance_state(obj)
    state.dict.update(values)
    state._commit_all(state.dict)
    make_transient_to_detached(obj)
    db.session.add(obj)
    return obj


def next_homestead_code(collective_id: int, house: bool = True) -> str:
    """A new 不动产单元代码 for a homestead in the collective's village (GB/T 37346-2019):
    county · 地籍区 · 地籍子区 (the 12-digit village code), ownership J (collective), zone type
    C (homestead), the next free 5-digit parcel number in that 地籍子区, then the fixture:
    F0001 0001 for a house, W00000000 for a plot without one."""
    village = db.session.scalar(text("SELECT village_code FROM collective WHERE id = :i"),
                                {"i": collective_id})
    db.session.execute(text("SELECT pg_advisory_xact_lock(hashtext('bdcdyh:' || :v))"),
                       {"v": village})
    last = db.session.scalar(text("""
        SELECT max(substr(code, 15, 5)::int) FROM parcel
        WHERE kind = 'homestead' AND code LIKE :v || 'JC%'"""), {"v": village}) or 0
    return f"{village}JC{last + 1:05d}" + ("F00010001" if house else "W00000000")


def register(actor, kind: str, code: str | None, collective_id: int, wkt: str, srid: int,
             reason: str, household_code: str | None = None, **attrs) -> Parcel:
    """Register one new parcel (version 1).  A homestead without a code gets the next
    不动产单元代码 of its village (JC zone type).

    One call checks that the code is free, inserts the parcel and writes its audit entry.
    The overlap check runs once, in the database, under the cell locks (parcel_guard): a check
    here before the locks would only repeat it without its guarantee.  The statement asks the
    guard to refuse an overlap by skipping the row rather than aborting the transaction; the
    refusal is then raised here as the rule, with the parcel it overlaps and by how much."""
    reason = _reason(reason, actor, "register", code,
                     **{k: attrs.get(k) for k in REMARK_COLUMNS})
    _check_geometry(wkt, srid)
    if kind == "homestead" and not code:
        code = next_homestead_code(collective_id, attrs.pop("house", True))
    cols = {"kind": kind, "code": code, "collective_id": collective_id,
            "household_code": household_code, "change_kind": "register",
            "change_reason": reason, **attrs}
    p = _insert(actor, cols, wkt, srid, register=True, reason=reason)
    if p is None:
        clash = db.session.execute(text(
            "SELECT current_setting('sanquan.clash', true), "
            "set_config('sanquan.on_overlap', '', true), set_config('sanquan.clash', '', true)"
        )).scalar()
        if clash:
            other, area, tol = clash.split("|")
            raise DomainError(OVERLAP, code=code, other=other, area=f"{float(area):.2f}",
                              tol=float(tol))
        raise DomainError(CODE_TAKEN, code=code)
    return p


COPY_COLUMNS = ("kind", "code", "collective_id", "household_code", "name", "syqxz", "dklb",
                "tdlylx", "dldj", "tdyt", "sfjbnt", "east", "south", "west", "north", "witness",
                "remarks", "attrs", "import_batch_id")


def _end(parcel: Parcel) -> None:
    if parcel.end_lifespan is not None:
        raise DomainError(NOT_CURRENT, code=parcel.code, version=parcel.version)
    db.session.execute(text("UPDATE parcel SET end_lifespan = clock_timestamp() WHERE id = :i"),
                       {"i": parcel.id})
    db.session.refresh(parcel)


def _wkt_in_survey_crs(parcel: Parcel) -> str:
    return db.session.execute(text("SELECT ST_AsText(ST_Transform(geom, survey_srid)) FROM parcel "
                                   "WHERE id = :i"), {"i": parcel.id}).scalar()


def _mutation(actor, kind: str, reason: str, parcel: Parcel) -> Mutation:
    """The mutation, in the county of the parcel it changes (its lineage's composite foreign
    keys keep parents, children and mutation in that one county: migration 0041)."""
    m = Mutation(kind=kind, by=getattr(actor, "username", actor or "system"), reason=reason,
                 county_code=parcel.county_code)
    db.session.add(m)
    db.session.flush()
    return m


def amend(actor, parcel: Parcel, reason: str, wkt: str | None = None, srid: int | None = None,
          **changes) -> Parcel:
    """A new version of the parcel with changed attributes and/or a corrected geometry."""
    reason = _reason(reason, actor, "amend", parcel.code,
                     **{k: changes.get(k) for k in REMARK_COLUMNS})
    if parcel.end_lifespan is not None:
        raise DomainError(NOT_CURRENT, code=parcel.code, version=parcel.version)
    srid = srid or parcel.survey_srid
    wkt = wkt or _wkt_in_survey_crs(parcel)
    _check_geometry(wkt, srid)
    _precheck(wkt, srid, parcel.code, exclude_uids=[parcel.uid], check_code=False)
    held = {k: v for k, v in changes.items()
            if k in ("household_code", "kind", "collective_id") and v != getattr(parcel, k)}
    if held:  # app.rights refuses while a current right holds the parcel
        signals.send(signals.parcel_holder_change, actor, parcel=parcel, changes=held)
    values = {c: getattr(parcel, c) for c in COPY_COLUMNS}
    before = {k: values.get(k) for k in changes}
    values.update(changes)
    m = _mutation(actor, "correction" if wkt != _wkt_in_survey_crs(parcel) else "attribute",
                  reason, parcel)
    _end(parcel)
    new = _insert(actor, {**values, "uid": parcel.uid, "version": parcel.version + 1,
                          "change_kind": m.kind, "change_reason": reason}, wkt, srid)
    db.session.add(Lineage(parent_id=parcel.id, child_id=new.id, mutation_id=m.id))
    audit.record(actor, f"parcel.{m.kind}", "parcel", parcel.code,
                 {"from_version": parcel.version, "to_version": new.version,
                  "changes": {k: [before[k], changes[k]] for k in changes},
                  "scmj": [parcel.scmj, new.scmj]}, reason)
    return new


def split(actor, parcel: Parcel, parts: list[tuple[str, str]], reason: str) -> list[Parcel]:
    """Split into parts [(new code, WKT in the parcel's survey CRS)].  The parts must cover
    the parcel without gaps or overlaps, within the tolerance."""
    reason = _reason(reason, actor, "split", parcel.code)
    if parcel.end_lifespan is not None:
        raise DomainError(NOT_CURRENT, code=parcel.code, version=parcel.version)
    tol = tolerance()
    whole = shapely.from_wkt(_wkt_in_survey_crs(parcel))
    geoms = [_check_geometry(w, parcel.survey_srid) for _, w in parts]
    for i in range(len(geoms)):
        for j in range(i + 1, len(geoms)):
            a = overlap_m2(geoms[i], geoms[j])  # the one overlap rule (gis.area)
            if a > tol:
                raise DomainError(SPLIT_OVERLAP, a=parts[i][0], b=parts[j][0], area=f"{a:.2f}")
    diff = shapely.union_all(geoms).symmetric_difference(whole).area
    if diff > tol:
        raise DomainError(SPLIT_COVER, gap=f"{diff:.2f}", tol=tol)
    if len(parts) < 2:
        raise DomainError(SPLIT_PARTS, n=len(parts))
    m = _mutation(actor, "split", reason, parcel)
    _end(parcel)
    values = {c: getattr(parcel, c) for c in COPY_COLUMNS}
    children = []
    for code, wkt in parts:
        child = _insert(actor, {**values, "code": code, "change_kind": "split",
                                "change_reason": reason}, wkt, parcel.survey_srid)
        db.session.add(Lineage(parent_id=parcel.id, child_id=child.id, mutation_id=m.id))
        children.append(child)
    db.session.flush()
    signals.send(signals.parcels_succeeded, actor, parents=[parcel], children=children,
                 reason=reason)  # app.rights carries the rights over them
    audit.record(actor, "parcel.split", "parcel", parcel.code,
                 {"into": [c.code for c in children], "scmj": [parcel.scmj,
                                                               [c.scmj for c in children]]},
                 reason)
    return children


def merge(actor, parcels: list[Parcel], code: str, reason: str) -> Parcel:
    """Merge neighbouring current parcels of one kind and issuing party into one."""
    reason = _reason(reason, actor, "merge", code)
    if (len(parcels) < 2 or any(p.end_lifespan is not None for p in parcels)
            or len({p.kind for p in parcels}) > 1 or len({p.collective_id for p in parcels}) > 1):
        raise DomainError(MERGE_NEIGHBOURS)
    if len({p.household_code for p in parcels}) > 1:
        raise DomainError(MERGE_HOLDERS, codes="、".join(p.code for p in parcels),
                          holders="、".join(sorted({p.household_code or "—" for p in parcels})))
    srid = parcels[0].survey_srid
    union = shapely.union_all([shapely.from_wkt(_wkt_in_survey_crs(p)) for p in parcels])
    union = shapely.set_precision(union, 0.001)
    if union.geom_type != "Polygon":
        raise DomainError(MERGE_NEIGHBOURS)
    m = _mutation(actor, "merge", reason, parcels[0])
    first = parcels[0]
    values = {c: getattr(first, c) for c in COPY_COLUMNS}
    for p in parcels:
        _end(p)
    child = _insert(actor, {**values, "code": code, "change_kind": "merge",
                            "change_reason": reason}, union.wkt, srid)
    for p in parcels:
        db.session.add(Lineage(parent_id=p.id, child_id=child.id, mutation_id=m.id))
    db.session.flush()
    signals.send(signals.parcels_succeeded, actor, parents=parcels, children=[child],
                 reason=reason)  # app.rights carries the rights over them
    audit.record(actor, "parcel.merge", "parcel", code,
                 {"from": [p.code for p in parcels], "scmj": [[p.scmj for p in parcels],
                                                              child.scmj]}, reason)
    return child


def as_of(when: dt.datetime, collective_id: int | None = None):
    """The register as it stood at `when`: the version of each parcel alive then."""
    q = select(Parcel).where(Parcel.begin_lifespan <= when,
                             (Parcel.end_lifespan.is_(None)) | (Parcel.end_lifespan > when))
    if collective_id is not None:
        q = q.where(Parcel.collective_id == collective_id)
    return list(db.session.scalars(q.order_by(Parcel.code)))


def history(parcel: Parcel) -> list[Parcel]:
    """Every version of this spatial unit, and its predecessors through lineage."""
    return list(db.session.scalars(select(Parcel).where(Parcel.uid == parcel.uid)
                                   .order_by(Parcel.version)))


def lineage(parcel: Parcel) -> dict:
    parents = db.session.execute(text("""
        SELECT p.id, p.code, m.kind, m.at, m.reason FROM parcel_lineage l
        JOIN parcel p ON p.id = l.parent_id JOIN parcel_mutation m ON m.id = l.mutation_id
        WHERE l.child_id = :i AND p.uid <> :u"""), {"i": parcel.id, "u": parcel.uid}).all()
    children = db.session.execute(text("""
        SELECT c.id, c.code, m.kind, m.at, m.reason FROM parcel_lineage l
        JOIN parcel c ON c.id = l.child_id JOIN parcel_mutation m ON m.id = l.mutation_id
        WHERE l.parent_id = :i AND c.uid <> :u"""), {"i": parcel.id, "u": parcel.uid}).all()
    return {"parents": parents, "children": children}


def neighbours(parcel: Parcel, limit: int = 12):
    """Current parcels touching this one, with the side they lie on (for 四至 and sketches)."""
    return db.session.execute(text("""
        SELECT n.id, n.code, n.kind, n.household_code, n.name,
               ST_AsBinary(ST_Transform(n.geom, :srid)) AS wkb,
               degrees(ST_Azimuth(ST_Centroid(p.geom), ST_Centroid(n.geom))) AS bearing
        FROM parcel p JOIN parcel n ON n.end_lifespan IS NULL AND n.id <> p.id
          AND n.geom && ST_Expand(p.geom, 0.0001)
          AND ST_DWithin(n.geom, p.geom, 0.00002)
        WHERE p.id = :i ORDER BY ST_Distance(n.geom, p.geom), n.id LIMIT :lim"""),
                              {"i": parcel.id, "srid": parcel.survey_srid, "lim": limit}).all()


def sides(parcel: Parcel) -> dict[str, list[str]]:
    """四至 derived from the neighbours: who lies east, south, west and north."""
    out = {"east": [], "south": [], "west": [], "north": []}
    for n in neighbours(parcel, 24):
        b = (n.bearing or 0) % 360
        side = ("north" if b < 45 or b >= 315 else "east" if b < 135 else
                "south" if b < 225 else "west")
        out[side].append(n.code)
    return out


def current_of_household(household_code: str) -> list:
    """A household's current parcels with their geometry in the survey CRS (WKB), for its plan."""
    return db.session.execute(text("""
        SELECT p.id, p.code, p.name, p.kind, p.scmj, p.scmjm,
               ST_AsBinary(ST_Transform(p.geom, p.survey_srid)) AS wkb
        FROM parcel p WHERE p.end_lifespan IS NULL AND p.household_code = :h
        ORDER BY p.kind, p.code"""), {"h": household_code}).all()


def lock_register() -> None:
    """The register's table lock for a bulk registration (SHARE ROW EXCLUSIVE: readers go on,
    no other writer until commit)."""
    db.session.execute(text("LOCK TABLE parcel IN SHARE ROW EXCLUSIVE MODE"))


def insert_from_staging(actor, batch_id: int, feature_ids: list[int] | None = None,
                        tolerance_m2: float | None = None) -> int:
    """A validated delivery's features (all, or `feature_ids`) as current parcels, set-wise,
    inside lock_register(); area in the survey's Gauss-Krüger zone.

    The insert and its overlap check are the database's parcel_register_staged() (migration
    0041_bulk), which runs as the schema's owner: it takes the table lock, inserts, then checks
    the rows it inserted against the register and each other (parcel_guard()'s rule, the
    smaller of the registry's tolerance and `tolerance_m2`) and refuses the whole statement
    with parcel.overlap, naming both parcels.  The app role itself can no longer skip the
    per-row check."""
    n = db.session.execute(text(
        "SELECT parcel_register_staged(CAST(:b AS int), CAST(:ids AS int[]), CAST(:who AS text), "
        "CAST(:tol AS float8))"), {
        "b": batch_id, "ids": feature_ids or None,
        "who": getattr(actor, "username", actor or "system"),
        "tol": tolerance_m2}).scalar_one()
    if n > 1000:
        # by the owner: fresh statistics, or the planner may leave the spatial index
        db.session.execute(text("SELECT refresh_statistics('parcel')"))
    return n


def count_current(like: str | None = None) -> int:
    """Current parcels of collectives whose code is LIKE `like` (all without)."""
    ids = select(Collective.id)
    if like:
        ids = ids.where(Collective.fbfbm.like(like))
    return db.session.scalar(select(func.count(Parcel.id)).where(
        Parcel.collective_id.in_(ids.scalar_subquery()), Parcel.end_lifespan.is_(None)))


# ---------------------------------------------------------------------------------------------
# Queries for the JSON API (issue 19)

def search_query(like: str | None, q: str = "", kind: str | None = None,
                 scope: str | None = None, include_ended: bool = False):
    """Parcels by code / holder household code prefix (or holder name), inside a jurisdiction
    (`like`, a LIKE pattern on the collective's code; None means everywhere); a select of
    Parcel ordered by code."""

    stmt = select(Parcel).join(Collective, Collective.id == Parcel.collective_id)
    if not include_ended:
        stmt = stmt.where(Parcel.end_lifespan.is_(None))
    if q:  # `q` literally, as on the search page: `%`, `_` and `\` are no wildcards
        holders = select(Household.cbfbm).where(Household.name.contains(q, autoescape=True))
        stmt = stmt.where(or_(Parcel.code.startswith(q, autoescape=True),
                              Parcel.household_code.startswith(q, autoescape=True),
                              Parcel.household_code.in_(holders)))
    if kind:
        stmt = stmt.where(Parcel.kind == kind)
    if scope:
        stmt = stmt.where(or_(Collective.fbfbm.startswith(scope), Parcel.code.startswith(scope),
                              Parcel.household_code.startswith(scope)))
    if like:
        stmt = stmt.where(Collective.fbfbm.like(like))
    return stmt.order_by(Parcel.code, Parcel.id)


def geometry_geojson(parcel: Parcel) -> dict:
    """The parcel's geometry as GeoJSON in CGCS2000 (EPSG:4490)."""
    import json

    return json.loads(db.session.execute(text("SELECT ST_AsGeoJSON(geom, 9) FROM parcel "
                                              "WHERE id = :i"), {"i": parcel.id}).scalar())


def fbfbm_of(parcel: Parcel) -> str | None:

    return db.session.scalar(select(Collective.fbfbm).where(Collective.id == parcel.collective_id))
