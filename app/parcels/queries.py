"""Read-only queries of the parcel register for its pages (views hold no SQL)."""
from __future__ import annotations

from shapely import from_wkb
from sqlalchemy import select, text

from app.collectives.models import Collective
from app.extensions import db

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


# One UNION branch per way a parcel can match, each answered by an index (0035_search,
# 0041_search2): a prefix of the code or of the household code is a range in byte order
# (COLLATE "C": the database's collation may make `LIKE 'q%'` unindexable, as C.UTF-8 does);
# each stops at `n` rows in code order, so the union holds the first `n` of all of them.
# `starts_with` keeps a range exact.
#
# The holder's name: the parcels of the first `n` households, in household-code order, whose
# holder matches and who hold a current parcel in scope — not of every such household (that
# grew with the register: a common name has 10× the holders at 10M parcels as at 1M).  First
# the holders named exactly `q` (`exact`: the (name, cbfbm) btree read in order, `n` at most);
# only when fewer than `n` are found, the other holders whose name contains `q` (3 characters
# or more: trigrams) or starts with it (1–2 characters have no trigram: a range on the same
# btree), up to NAME_CAP candidates (`cand`; more, and they are left out and the answer says
# so: `cut`).  The candidates are only households holding a current parcel *in the user's
# jurisdiction*: counted over the whole register, the cut (its header, its message) told a
# village officer that other villages or counties hold many of that name, and dropped the
# officer's own matches because of them (atkapi: tests/test_atk_api_evening.py).  Whenever
# the old answer (every matching parcel, first `n` by code) was complete — fewer than `n`
# parcels, so fewer than `n` households — this one is the same.
NAME_CAP = 500
_HOLDS = ("EXISTS (SELECT 1 FROM parcel p{join} WHERE p.household_code COLLATE \"C\" = "
          "{h}.cbfbm COLLATE \"C\" AND p.end_lifespan IS NULL{scope})")
_SEARCH = """
WITH exact AS MATERIALIZED (
  SELECT h.cbfbm FROM household h
  WHERE h.name COLLATE "C" = :q AND {holds_h}
  ORDER BY h.cbfbm COLLATE "C" LIMIT :n),
cand AS MATERIALIZED (
  SELECT h.cbfbm FROM household h
  WHERE (SELECT count(*) FROM exact) < :n AND {name_match} AND {holds_h}
  LIMIT :cap + 1),
named AS (
  (SELECT cbfbm FROM exact)
  UNION
  (SELECT cand.cbfbm FROM cand
   WHERE (SELECT count(*) FROM cand) <= :cap
   ORDER BY cand.cbfbm COLLATE "C" LIMIT :n)),
heads AS (SELECT cbfbm FROM named ORDER BY cbfbm COLLATE "C" LIMIT :n),
hit AS (
  (SELECT p.id FROM parcel p{join}
   WHERE p.end_lifespan IS NULL AND p.code COLLATE "C" >= :q AND p.code COLLATE "C" < :hi
     AND starts_with(p.code, :q){scope}
   ORDER BY p.code COLLATE "C" LIMIT :n)
  UNION
  (SELECT p.id FROM parcel p{join}
   WHERE p.end_lifespan IS NULL AND p.household_code COLLATE "C" >= :q
     AND p.household_code COLLATE "C" < :hi AND starts_with(p.household_code, :q){scope}
   ORDER BY p.code COLLATE "C" LIMIT :n)
  UNION
  (SELECT p.id FROM heads JOIN parcel p
     ON p.household_code COLLATE "C" = heads.cbfbm COLLATE "C"{join}
   WHERE p.end_lifespan IS NULL{scope}
   ORDER BY p.code COLLATE "C" LIMIT :n)),
res AS (
  SELECT p.id, p.code, p.kind, p.household_code, h.name,
         ST_XMin(p.geom) AS x1, ST_YMin(p.geom) AS y1, ST_XMax(p.geom) AS x2,
         ST_YMax(p.geom) AS y2
  FROM hit JOIN parcel p ON p.id = hit.id LEFT JOIN household h ON h.cbfbm = p.household_code
  ORDER BY p.code COLLATE "C" LIMIT :n)
SELECT res.*, k.cut  -- one row with the flag alone when nothing is found
FROM (SELECT (SELECT count(*) FROM cand) > :cap AS cut) k LEFT JOIN res ON true
ORDER BY res.code COLLATE "C"
"""
_CONTAINS = "h.name LIKE :contains"
_STARTS = ('h.name COLLATE "C" >= :q AND h.name COLLATE "C" < :hi AND starts_with(h.name, :q)')
# The setting as found, then forced: set_config takes (an empty piece of) the setting read in a
# subquery kept apart (OFFSET 0: not flattened into the outer select), so it runs after it.
_FORCE_CUSTOM_PLAN = ("SELECT s.was FROM (SELECT current_setting('plan_cache_mode') AS was "
                      "OFFSET 0) s, "
                      "LATERAL set_config('plan_cache_mode', 'force_custom_plan' || left(s.was, 0),"
                      " true) AS x")
_LAST_CHAR = "\U0010ffff"  # above every character in byte order: q <= q… < q || U+10FFFF


def _like_literal(s: str) -> str:
    return s.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _storable(s: str) -> bool:
    """Text PostgreSQL can hold: no NUL, no lone surrogate (psycopg refuses both with an
    error, a 500 for a caller that did not filter them)."""
    return "\x00" not in s and not any(0xD800 <= ord(ch) <= 0xDFFF for ch in s)


def search(q: str, like: str | None, limit: int = 20) -> list[dict]:
    """Current parcels whose code or household code starts with `q` or whose holder's name
    matches it (see search_page), within `like`, first `limit` by code, with their bbox."""
    return search_page(q, like, limit)[0]


def search_page(q: str, like: str | None, limit: int = 20) -> tuple[list[dict], bool]:
    """(hits, cut): current parcels whose code or household code starts with `q` (`q`
    literally: `%` and `_` are no wildcards) or that belong to one of the first `limit`
    households (by household code) whose holder is named `q`, or — when fewer hold that very
    name — whose holder's name contains `q` (starts with it, for 1–2 characters); within
    `like` (a LIKE pattern on the collective's code), first `limit` by code, with their
    bounding box.  `cut`: more than NAME_CAP holders' names matched besides and were left out
    (the clerk should give more of the name, or the household code)."""
    if not _storable(q):
        return [], False  # no code, household code or name holds a NUL or a lone surrogate
    params = {"q": q, "hi": q + _LAST_CHAR, "contains": f"%{_like_literal(q)}%", "n": limit,
              "cap": NAME_CAP}
    join = scope = ""
    if like:
        join, scope = " JOIN collective c ON c.id = p.collective_id", " AND c.fbfbm LIKE :like"
        params["like"] = like
    sql = _SEARCH.format(
        join=join, scope=scope, holds_h=_HOLDS.format(join=join, scope=scope, h="h"),
        name_match=_CONTAINS if len(q) >= 3 else _STARTS)
    # Each call planned for its own `q` (a prefix of 2 and one of 18 characters want different
    # plans); a generic plan of the prepared statement would pick one for all.  Set for this
    # statement only: a SET LOCAL would last to the end of the transaction, over whatever else
    # the request runs after the search; the setting found is put back.
    was = db.session.execute(text(_FORCE_CUSTOM_PLAN)).scalar()
    rows = db.session.execute(text(sql), params).all()
    db.session.execute(text("SELECT set_config('plan_cache_mode', :was, true)"), {"was": was})
    return ([{"id": r[0], "code": r[1], "kind": r[2], "household": r[3], "holder": r[4],
              "bbox": [r[5], r[6], r[7], r[8]]} for r in rows if r[0] is not None],
            bool(rows[0][9]))


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
