"""Partition `parcel` by county? (issue 18 §2) — measured on a copy, not decided by argument.

    python -m bench.partition --size 10000000 --samples 200 [--rebuild]

In the province database of `--size` (made by `make bench-scale`, bench/scale.py), builds
`parcel_part`: the same rows, declaratively partitioned BY LIST (county_code), one partition per
county, with the indexes the workloads use (unique keys carry the partition key, as they must),
and measures the statements of the daily workloads on `parcel` and on `parcel_part`, alternately
(each sample of one beside the same sample of the other), on one connection each, as the app
runs them (psycopg, prepared after 5 executions):

- tile z14–16 (app/parcels/tiles.py's statement); search by code / household code / holder
  (app/parcels/queries.py's UNION; a code prefix of six or more characters also names its
  county, on both tables, as a partition-aware app would); a parcel by id (the parcel page's
  lookup); OGC items in a bbox and the first page (app/ogc/queries.py's statements, count
  capped); a registration's writes (the code's uniqueness with its county named, the overlap
  probe, the INSERT with every index), rolled back.

Every pair of answers is compared (same rows, the same features in the tile) before a time counts.  The app
itself never reads `parcel_part`; `--drop` removes it."""
from __future__ import annotations

import argparse
import os
import random
import time

import mapbox_vector_tile
import psycopg

from app.parcels.queries import _SEARCH
from app.parcels.tiles import TILE_SQL
from bench.scale import _plain, _size_url, _tile, pct

BUILD = [
    "DROP TABLE IF EXISTS parcel_part",
    # LIKE without INCLUDING GENERATED: county_code and geom_web become plain columns (a
    # generated column cannot be a partition key), filled from parcel's values
    "CREATE TABLE parcel_part (LIKE parcel INCLUDING DEFAULTS) PARTITION BY LIST (county_code)",
    None,  # one partition per county, made from the data
    "CREATE TABLE parcel_part_default PARTITION OF parcel_part DEFAULT",
    "INSERT INTO parcel_part SELECT * FROM parcel",
    "CREATE INDEX ON parcel_part (id)",
    "CREATE UNIQUE INDEX ON parcel_part (county_code, code) WHERE end_lifespan IS NULL",
    'CREATE INDEX ON parcel_part ((code COLLATE "C")) INCLUDE (id) WHERE end_lifespan IS NULL',
    'CREATE INDEX ON parcel_part ((household_code COLLATE "C")) INCLUDE (code, id) '
    "WHERE end_lifespan IS NULL",
    "CREATE INDEX ON parcel_part (household_code)",
    "CREATE INDEX ON parcel_part (collective_id)",
    "CREATE INDEX ON parcel_part USING gist (geom)",
    "CREATE INDEX ON parcel_part USING gist (geom_web)",
    "ANALYZE parcel_part",
]

# the OGC statements as app/ogc/queries.py makes them (SQLAlchemy prints them alike)
OGC_BBOX_COUNT = """SELECT count(*) FROM (SELECT p.id FROM {t} p JOIN collective c
  ON c.id = p.collective_id WHERE p.end_lifespan IS NULL
  AND p.geom && ST_MakeEnvelope(%(x1)s, %(y1)s, %(x2)s, %(y2)s, 4490) LIMIT 10001) x"""
OGC_PAGE = """SELECT p.id, ST_AsGeoJSON(p.geom, 7), c.fbfbm, p.code, p.kind, p.scmj
  FROM {t} p JOIN collective c ON c.id = p.collective_id
  WHERE p.end_lifespan IS NULL {bbox} ORDER BY p.id LIMIT 101"""
BY_ID = "SELECT * FROM {t} WHERE id = %(id)s"
# a registration's writes: the code free?, the overlap probe, the row with all its indexes
REG_CODE = ("SELECT 1 FROM {t} WHERE county_code = %(cc)s AND code = %(code)s "
            "AND end_lifespan IS NULL")  # the county named: one partition
REG_OVERLAP = """SELECT id FROM {t} WHERE end_lifespan IS NULL AND geom && ST_GeomFromText(%(wkt)s, 4490)
  AND ST_Intersects(geom, ST_GeomFromText(%(wkt)s, 4490))"""
REG_INSERT_PLAIN = """INSERT INTO parcel (kind, code, collective_id, name, scmj, scmjm, survey_srid,
  geom) VALUES ('contract', %(code)s, %(col)s, 'x', 2000, 3, 4547,
  ST_Multi(ST_GeomFromText(%(wkt)s, 4490)))"""
REG_INSERT_PART = """INSERT INTO parcel_part (kind, code, county_code, collective_id, name,
  scmj, scmjm, survey_srid, geom, geom_web) VALUES ('contract', %(code)s, %(cc)s,
  %(col)s, 'x', 2000, 3, 4547, ST_Multi(ST_GeomFromText(%(wkt)s, 4490)),
  ST_Transform(ST_Multi(ST_GeomFromText(%(wkt)s, 4490)), 3857))"""


def _search_sql(t: str, prune: bool) -> str:
    """The app's search on table `t`; with `prune`, the code branch also names the county
    (the first six characters of a code prefix of six or more: exact, and it lets a
    partitioned table read one partition)."""
    sql = _SEARCH.format(join="", scope="").replace("FROM parcel p", f"FROM {t} p") \
        .replace("JOIN parcel p", f"JOIN {t} p")
    if prune:
        sql = sql.replace("AND starts_with(p.code, :q)",
                          "AND starts_with(p.code, :q) AND p.county_code = left(:q, 6)")
    for k in ("q", "hi", "contains", "n"):
        sql = sql.replace(f":{k}", f"%({k})s")
    return sql


def build(conn) -> None:
    counties = [r[0] for r in conn.execute(
        "SELECT DISTINCT county_code FROM parcel ORDER BY 1").fetchall()]
    conn.execute("SET maintenance_work_mem = '1GB'")
    for stmt in BUILD:
        t0 = time.perf_counter()
        if stmt is None:
            for cc in counties:
                conn.execute(f"CREATE TABLE parcel_part_{cc} PARTITION OF parcel_part "
                             f"FOR VALUES IN ('{cc}')")
            stmt = f"{len(counties)} partitions"
        else:
            conn.execute(stmt)
        conn.commit()
        print(f"  {stmt.split(chr(10))[0][:90]}: {time.perf_counter() - t0:.0f} s", flush=True)


def _timed(conn, sql, params):
    t0 = time.perf_counter()
    rows = conn.execute(sql, params).fetchall()
    return time.perf_counter() - t0, rows


def one_round(conns, rnd, sample, names, col, i):
    """Every workload once on each table, in an order that alternates; {(name, table): s}."""
    pid, code, hh, lon, lat = rnd.choice(sample)
    z, x, y = _tile(lon, lat, rnd.choice((14, 15, 16)))
    d = 0.002
    box = {"x1": lon - d, "y1": lat - d, "x2": lon + d, "y2": lat + d}
    bbox = "AND p.geom && ST_MakeEnvelope(%(x1)s, %(y1)s, %(x2)s, %(y2)s, 4490)"
    name = rnd.choice(names)
    k = i % 1024
    x0, y0 = 99.0 + (k % 32) * 0.0005, 29.0 + (k // 32) * 0.0005  # outside the province
    s = 0.00045
    wkt = f"POLYGON(({x0} {y0},{x0 + s} {y0},{x0 + s} {y0 + s},{x0} {y0 + s},{x0} {y0}))"
    reg = {"code": f"{col[1]}{95000 + k:05d}", "cc": col[1][:6], "col": col[0], "wkt": wkt}
    work = {
        "tile z14-16": (TILE_SQL, {"z": z, "x": x, "y": y}),
        "search by parcel code": ("SEARCH", {"q": code[:17]}),
        "search by household code": ("SEARCH", {"q": hh}),
        "search by holder name": ("SEARCH", {"q": name}),
        "parcel by id": (BY_ID, {"id": pid}),
        "OGC bbox: count + page": ("OGCBBOX", box),
        "OGC first page": (OGC_PAGE.replace("{bbox}", ""), {}),
        "registration writes": ("REG", reg),
    }
    out = {}
    order = list(conns.items()) if i % 2 == 0 else list(conns.items())[::-1]
    for wname, (sql, params) in work.items():
        answers = {}
        for t, conn in order:
            if sql == "SEARCH":
                q = params["q"]
                p = {"q": q, "hi": q + "\U0010ffff", "contains": f"%{q}%", "n": 20}
                dt, rows = _timed(conn, _search_sql(t, len(q) >= 6), p)
                rows = [r[:5] for r in rows]
            elif sql == "OGCBBOX":
                dt1, n = _timed(conn, OGC_BBOX_COUNT.replace("{t}", t), params)
                dt2, rows = _timed(conn, OGC_PAGE.replace("{t}", t).replace("{bbox}", bbox), params)
                dt, rows = dt1 + dt2, (n, [r[0] for r in rows])
            elif sql == "REG":
                # the guard's triggers off on both (the copy has none): the probes above are
                # what the guard does, the INSERT what the table and its indexes cost
                conn.execute("SET LOCAL session_replication_role = replica")
                t0 = time.perf_counter()
                a = conn.execute(REG_CODE.replace("{t}", t), params).fetchall()
                b = conn.execute(REG_OVERLAP.replace("{t}", t), params).fetchall()
                conn.execute(REG_INSERT_PLAIN if t == "parcel" else REG_INSERT_PART, params)
                dt = time.perf_counter() - t0
                conn.rollback()
                rows = (a, b)
            elif sql is TILE_SQL:
                dt, rows = _timed(conn, TILE_SQL.replace("FROM parcel p", f"FROM {t} p"), params)
                # the same features (their order in the tile follows the scan)
                rows = sorted(f["properties"]["id"] for f in mapbox_vector_tile.decode(
                    rows[0][0] or b"").get("parcels", {}).get("features", []))
            else:
                dt, rows = _timed(conn, sql.replace("{t}", t), params)
                if sql is BY_ID:
                    rows = [r[0] for r in rows]
            conn.rollback()
            answers[t] = rows
            out[(wname, t)] = dt
        a, b = answers.values()
        assert a == b, (wname, "the partitioned copy answers differently")
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", default=os.environ.get("BENCH_DATABASE_URL"),
                    help="BENCH_DATABASE_URL (a superuser's, as make bench-scale uses)")
    ap.add_argument("--size", type=int, default=10_000_000)
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--rebuild", action="store_true")
    ap.add_argument("--drop", action="store_true")
    args = ap.parse_args()
    url = _plain(_size_url(args.url, args.size))
    with psycopg.connect(url) as conn:
        if args.drop:
            conn.execute("DROP TABLE IF EXISTS parcel_part")
            return
        have = conn.execute("SELECT to_regclass('parcel_part') IS NOT NULL").fetchone()[0]
        if args.rebuild or not have:
            build(conn)
        # parcels registered since the copy (a bench-scale run): copied too
        conn.execute("INSERT INTO parcel_part SELECT * FROM parcel "
                     "WHERE id > (SELECT max(id) FROM parcel_part)")
        conn.commit()
        n = conn.execute("SELECT count(*) FROM parcel_part").fetchone()[0]
        m = conn.execute("SELECT count(*) FROM parcel").fetchone()[0]
        assert n == m, ("parcel_part is not a copy of parcel", n, m)
        parts = conn.execute("SELECT count(*) FROM pg_inherits WHERE inhparent = "
                             "'parcel_part'::regclass").fetchone()[0]
        sample = conn.execute(
            "SELECT id, code, household_code, ST_X(ST_Centroid(geom)), ST_Y(ST_Centroid(geom)) "
            "FROM parcel TABLESAMPLE SYSTEM (1) WHERE code LIKE '65%' AND end_lifespan IS NULL "
            "LIMIT 2000").fetchall()
        names = [r[0] for r in conn.execute(
            "SELECT DISTINCT name FROM household WHERE cbfbm LIKE '65%' LIMIT 500").fetchall()]
        col = conn.execute("SELECT id, fbfbm FROM collective WHERE fbfbm LIKE '65%' "
                           "ORDER BY id DESC LIMIT 1").fetchone()
    print(f"\nPartitioned copy: {n:,} parcels in {parts} partitions (BY LIST county_code); "
          f"{args.samples} samples, alternating", flush=True)
    conns = {t: psycopg.connect(url) for t in ("parcel", "parcel_part")}
    for c in conns.values():
        c.execute("SET jit = off")
        c.commit()
    rnd = random.Random(5)
    times: dict = {}
    warm = 10
    for i in range(args.samples + warm):
        for k, v in one_round(conns, rnd, sample, names, col, i).items():
            if i >= warm:
                times.setdefault(k, []).append(v)
        if (i + 1) % 20 == 0:
            print(f"    {i + 1}/{args.samples + warm} rounds", flush=True)
    print(f"\n  {'workload':<26} {'p50 plain':>10} {'p99 plain':>10} {'p50 part.':>10} "
          f"{'p99 part.':>10} {'ratio p50':>9} {'ratio p99':>9}   (ms)")
    for w in dict.fromkeys(k[0] for k in times):
        a, b = times[(w, "parcel")], times[(w, "parcel_part")]
        print(f"  {w:<26} {pct(a, 50) * 1e3:10.2f} {pct(a, 99) * 1e3:10.2f} "
              f"{pct(b, 50) * 1e3:10.2f} {pct(b, 99) * 1e3:10.2f} "
              f"{pct(b, 50) / pct(a, 50):9.2f} {pct(b, 99) / pct(a, 99):9.2f}", flush=True)


if __name__ == "__main__":
    main()
