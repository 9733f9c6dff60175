"""The fair raw pipeline: the import's work written as tightly as one could by hand, with
every optimisation the app has and none of its bookkeeping (no batch, no progress, no audit,
no fault rows with their texts, no status columns).

Same session as the app's validation (JIT off, one transaction), the cyclic GC paused, every
geometry parsed once, geometries sent as EWKB in binary COPY (delivered and CGCS2000, as the
app stages them), attributes as jsonb (orjson) in binary COPY, the GiST index built after the
load.  Then the same checks' SQL in their tightest form, each a count:

  ST_IsValid; duplicate codes; overlaps within the delivery (GiST self-join, ST_Relate
  interior); overlaps with the register (the current parcels); the area against SCMJ; keys
  unique by the standard in every table (as the app's duplicate-key check); every
  ID number against GB 11643 (form, region, birth date, check digit); every field of every
  table and layer against the NY/T 2539 data dictionary (lengths, required, code lists, dates,
  numbers, digits); contract terms and members' birth dates; references CBF_JTCY→CBF,
  CBHT→CBF, CBDKXX→DK, CBDKXX→CBHT, ZJD→CBF.

The SQL of the field, ID and term checks is built by the app's own helpers
(app.imports.validation: the inlined dictionary predicate, the date and ID fast paths), so
both sides do that work in the same — its tightest known — form.
"""
from __future__ import annotations

import csv
import gc
import time
from pathlib import Path

import orjson
import pyogrio
import shapely

from app.imports import validation as V
from gis import io as gio

CHECKS = {
    "invalid": """WITH u AS (UPDATE raw_feature SET valid = false WHERE NOT ST_IsValid(geom)
                  RETURNING 1) SELECT count(*) FROM u""",
    "duplicate_code": """SELECT count(*) FROM (SELECT code FROM raw_feature GROUP BY layer, code
                         HAVING count(*) > 1) d""",
    # As the app: geometries found invalid are left out of the overlap join (their fault is
    # reported once), and an overlap counts above the tolerance's area.
    "overlap": """SELECT count(*) FROM raw_feature a JOIN raw_feature b ON a.geom && b.geom
                  AND (a.id + 0) < (b.id + 0) WHERE a.valid AND b.valid
                  AND ST_Relate(a.geom, b.geom, '2********')
                  AND ST_Area(ST_Intersection(a.geom, b.geom)) > 1.0""",
    "register_overlap": """SELECT count(*) FROM raw_feature f JOIN parcel p
                           ON p.geom && f.geom_stored AND p.end_lifespan IS NULL
                           WHERE f.valid AND ST_Relate(p.geom, f.geom_stored, '2********')""",
    "area": """SELECT count(*) FROM raw_feature WHERE layer = 'DK'
               AND abs(ST_Area(geom) - (attrs->>'SCMJ')::float8) > 1.0""",
    # GB 11643 in full (form, region, birth date, check digit), as the app checks it, of every
    # member, household head and issuing-party leader: inline built-ins decide the usual
    # numbers, the exact function the rest (the tightest form we know; bench/RESULTS.md).
    "id_numbers": f"""SELECT count(*) FROM (SELECT upper(btrim(r.attrs->>(CASE r.tbl
        WHEN 'CBF_JTCY' THEN 'CYZJHM' WHEN 'CBF' THEN 'CBFZJHM' ELSE 'FZRZJHM' END))) AS n
        FROM raw_record r WHERE r.tbl IN ('CBF_JTCY', 'CBF', 'FBF') OFFSET 0) x
        WHERE coalesce(x.n, '') <> '' AND {V.id_fault_sql('x.n')} IS NOT NULL""",
    # Every field of every table and layer against the data dictionary, one scan of each
    # staging table (the app scans per table and then names each fault).
    "fields": "SELECT (SELECT count(*) FROM raw_record r WHERE " + " OR ".join(
        f"(r.tbl = '{t}' AND {V._suspect_sql(t, 'r')})" for t in V.FIELDS
        if t not in ("DK", "ZJD")) + ") + (SELECT count(*) FROM raw_feature r WHERE " + " OR ".join(
        f"(r.layer = '{t}' AND {V._suspect_sql(t, 'r')})" for t in ("DK", "ZJD")) + ")",
    # Contract terms (start ≤ end ≤ start + 70 years) and members' CSRQ against their ID.
    "terms": f"""SELECT (SELECT count(*) FROM raw_record r CROSS JOIN LATERAL (SELECT
        {V.date_sql("(r.attrs->>'CBQXQ')")} AS q, {V.date_sql("(r.attrs->>'CBQXZ')")} AS z) t
        WHERE r.tbl = 'CBHT' AND (t.z < t.q OR t.z > t.q + interval '70 years'))
      + (SELECT count(*) FROM raw_record r WHERE r.tbl = 'CBF_JTCY'
        AND {V.date_sql("(r.attrs->>'CSRQ')")} IS NOT NULL
        AND {V.id_fault_sql("upper(btrim(r.attrs->>'CYZJHM'))")} IS NULL
        AND {V.date_sql("substr(upper(btrim(r.attrs->>'CYZJHM')), 7, 8)")}
            <> {V.date_sql("(r.attrs->>'CSRQ')")})""",
    # Keys the standard makes unique, in every table (V.KEYS: FBFBM, CBFBM, the members' ID
    # numbers, CBHTBM, LZHTBM, CBJYQZBM), one hash aggregate over all of them; a parcel listed
    # by CBDKXX for two households; a delivered household already in the register.
    "duplicate_key": "SELECT (SELECT count(*) FROM (SELECT 1 FROM (SELECT r.tbl, CASE r.tbl "
        + " ".join(f"WHEN '{t}' THEN {V.key_sql(cols)}" for t, cols in V.KEYS.items())
        + " END AS k FROM raw_record r WHERE r.tbl IN (" + ", ".join(f"'{t}'" for t in V.KEYS)
        + """)) x WHERE x.k <> '' GROUP BY x.tbl, x.k HAVING count(*) > 1) d)
      + (SELECT count(*) FROM (SELECT 1 FROM (SELECT DISTINCT r.attrs->>'DKBM' AS k,
            r.attrs->>'CBFBM' AS h FROM raw_record r WHERE r.tbl = 'CBDKXX'
            AND coalesce(r.attrs->>'DKBM', '') <> '') x GROUP BY x.k HAVING count(x.h) > 1) p)
      + (SELECT count(*) FROM raw_record r JOIN household h ON h.cbfbm = r.attrs->>'CBFBM'
         WHERE r.tbl = 'CBF')""",
    "references": """SELECT
        (SELECT count(*) FROM raw_record m WHERE m.tbl = 'CBF_JTCY' AND NOT EXISTS (
            SELECT 1 FROM raw_record c WHERE c.tbl = 'CBF' AND c.attrs->>'CBFBM' = m.attrs->>'CBFBM'))
      + (SELECT count(*) FROM raw_record h WHERE h.tbl = 'CBHT' AND NOT EXISTS (
            SELECT 1 FROM raw_record c WHERE c.tbl = 'CBF' AND c.attrs->>'CBFBM' = h.attrs->>'CBFBM'))
      + (SELECT count(*) FROM raw_record x WHERE x.tbl = 'CBDKXX' AND NOT EXISTS (
            SELECT 1 FROM raw_feature f WHERE f.layer = 'DK' AND f.code = x.attrs->>'DKBM'))
      + (SELECT count(*) FROM raw_record x WHERE x.tbl = 'CBDKXX' AND NOT EXISTS (
            SELECT 1 FROM raw_record h WHERE h.tbl = 'CBHT' AND h.attrs->>'CBHTBM' = x.attrs->>'CBHTBM'))
      + (SELECT count(*) FROM raw_feature z WHERE z.layer = 'ZJD' AND NOT EXISTS (
            SELECT 1 FROM raw_record c WHERE c.tbl = 'CBF' AND c.attrs->>'CBFBM' = z.attrs->>'CBFBM'))""",
}


class _EWKB(bytes):
    pass


def _geometry_dumper(conn):
    from psycopg.adapt import Dumper
    from psycopg.pq import Format
    from psycopg.types import TypeInfo

    info = TypeInfo.fetch(conn, "geometry")

    class D(Dumper):
        format = Format.BINARY
        oid = info.oid

        def dump(self, obj):
            return bytes(obj)

    conn.adapters.register_dumper(_EWKB, D)
    return info.oid


def _read_layer(path: Path):
    meta, _fids, wkb, cols = pyogrio.raw.read(str(path))
    fields = list(meta["fields"])
    srid = gio.epsg_of(meta["crs"]) or 4547
    geoms = shapely.set_srid(shapely.from_wkb(wkb), srid)  # parsed once
    rows = [dict(zip(fields, r, strict=True)) for r in zip(*[c.tolist() for c in cols],
                                                           strict=True)]
    return srid, geoms, rows


def run(dsn: str, folder: Path, steps: dict | None = None) -> tuple[float, dict]:
    """Seconds for the whole pipeline, and each check's count; `steps` (if given) gets the
    seconds of each step."""
    steps = {} if steps is None else steps
    import psycopg
    from psycopg.types.json import Jsonb

    enabled = gc.isenabled()
    gc.disable()
    try:
        t0 = time.perf_counter()
        layers = []
        for p in sorted(folder.glob("*.gpkg")):
            kind = "ZJD" if p.name.upper().startswith("ZJD") else "DK"
            srid, geoms, rows = _read_layer(p)
            delivered = shapely.to_wkb(geoms, include_srid=True)
            stored = shapely.to_wkb(gio.to_cgcs2000(geoms, srid), include_srid=True)
            layers.append((kind, rows, delivered, stored))
        tables = {}
        mark = time.perf_counter()
        steps["read+parse+transform"] = mark - t0
        for p in sorted(folder.glob("*.csv")):
            with open(p, encoding="utf-8-sig", newline="") as f:
                tables[p.stem.upper()] = list(csv.DictReader(f))
        counts = {}
        with psycopg.connect(dsn) as conn:
            oid = _geometry_dumper(conn)  # before the cursor: it copies the adapters
            cur = conn.cursor()
            cur.execute("SET LOCAL jit = off")
            # Ordinary (logged) tables, not temporary ones: a temporary table lives in the
            # session's temp_buffers (8 MB by default), and the GiST self-join over 100k
            # geometries thrashed them (the overlap step took 2.3× the app's).  Not unlogged
            # either: a staged delivery waits there for its corrections and must survive a crash
            # (an unlogged table is emptied by one), so its rows go through the WAL in the app,
            # and here too (issue 18: the same work on both sides).
            cur.execute("DROP TABLE IF EXISTS raw_feature, raw_record")
            cur.execute("""CREATE TABLE raw_feature (id serial PRIMARY KEY, layer text,
                           code text, attrs jsonb, geom geometry, geom_stored geometry,
                           valid boolean NOT NULL DEFAULT true)""")
            cur.execute("""CREATE TABLE raw_record (id serial PRIMARY KEY, tbl text,
                           attrs jsonb)""")
            with cur.copy("COPY raw_feature (layer, code, attrs, geom, geom_stored) FROM STDIN "
                          "(FORMAT BINARY)") as cp:
                cp.set_types(["text", "text", "jsonb", oid, oid])
                for kind, rows, delivered, stored in layers:
                    key = "DKBM" if kind == "DK" else "BDCDYH"
                    for r, d, s in zip(rows, delivered, stored, strict=True):
                        cp.write_row((kind, r.get(key), Jsonb(r, dumps=orjson.dumps),
                                      _EWKB(d), _EWKB(s)))
            with cur.copy("COPY raw_record (tbl, attrs) FROM STDIN (FORMAT BINARY)") as cp:
                cp.set_types(["text", "jsonb"])
                for tbl, rows in tables.items():
                    for r in rows:
                        cp.write_row((tbl, Jsonb(r, dumps=orjson.dumps)))
            steps["copy"] = time.perf_counter() - mark
            mark = time.perf_counter()
            cur.execute("CREATE INDEX ON raw_feature USING gist (geom)")
            cur.execute("CREATE INDEX ON raw_feature USING gist (geom_stored)")
            cur.execute("ANALYZE raw_feature")
            cur.execute("ANALYZE raw_record")
            steps["index+analyze"] = time.perf_counter() - mark
            for name, sql in CHECKS.items():
                mark = time.perf_counter()
                cur.execute(sql)
                counts[name] = cur.fetchone()[0]
                steps[name] = time.perf_counter() - mark
            cur.execute("DROP TABLE raw_feature, raw_record")
            conn.commit()
        return time.perf_counter() - t0, counts
    finally:
        if enabled:
            gc.enable()

