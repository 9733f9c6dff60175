"""The fair raw pipeline: the import's work written as tightly as one could by hand, with
every optimisation the app has and none of its bookkeeping (no batch, no progress, no audit,
no fault rows with their texts, no status columns).

Same session as the app's validation (JIT off, one transaction), the cyclic GC paused, every
geometry parsed once, geometries sent as EWKB in binary COPY (delivered and CGCS2000, as the
app stages them), attributes as jsonb (orjson) in binary COPY, the GiST index built after the
load.  Then the same checks' SQL in their tightest form, each a count:

  ST_IsValid; duplicate codes; overlaps within the delivery (GiST self-join, ST_Relate
  interior); overlaps with the register (the current parcels); the area against SCMJ; the
  GB 11643 check digit of every ID number; references CBF_JTCY→CBF, CBHT→CBF, CBDKXX→DK,
  CBDKXX→CBHT, ZJD→CBF.
"""
from __future__ import annotations

import csv
import gc
import time
from pathlib import Path

import orjson
import pyogrio
import shapely

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
    "id_check_digit": """SELECT count(*) FROM raw_record r, LATERAL (SELECT
        r.attrs->>'CYZJHM' AS n) x WHERE r.tbl = 'CBF_JTCY' AND (x.n !~ '^[0-9]{17}[0-9X]$'
        OR substr('10X98765432', (SELECT sum(substr(x.n, i::int, 1)::int * w) FROM unnest(
        '{7,9,10,5,8,4,2,1,6,3,7,9,10,5,8,4,2}'::int[]) WITH ORDINALITY AS c(w, i))::int
        % 11 + 1, 1) <> substr(x.n, 18, 1))""",
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
            # Unlogged tables, not temporary ones: a temporary table lives in the session's
            # temp_buffers (8 MB by default), and the GiST self-join over 100k geometries
            # thrashed them (the overlap step took 2.3× the app's on a logged table).
            cur.execute("DROP TABLE IF EXISTS raw_feature, raw_record")
            cur.execute("""CREATE UNLOGGED TABLE raw_feature (id serial PRIMARY KEY, layer text,
                           code text, attrs jsonb, geom geometry, geom_stored geometry,
                           valid boolean NOT NULL DEFAULT true)""")
            cur.execute("""CREATE UNLOGGED TABLE raw_record (id serial PRIMARY KEY, tbl text,
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

