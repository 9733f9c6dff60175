"""Benchmarks: each figure beside the raw-PostGIS baseline measured in the same run.

    make bench                       # 100k and 1M parcels, tiles, registrations
    make bench BENCH_ARGS="--sizes 20000 --tiles 200 --registrations 100"

1. Import of a generated delivery with full validation (read → stage → every check), beside
   the raw pipeline on the same file: read → COPY → GiST index → ST_IsValid → overlap self-join.
2. Vector tiles z14–z16 through HTTP (the app under a real server), beside the same ST_AsMVT
   query run directly: p50 and p99.
3. Registration of single parcels with the overlap check (operation + trigger), beside a raw
   INSERT after a raw overlap query: p50 and p99.
"""
from __future__ import annotations

import argparse
import http.client as http_client
import json
import math
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
import shapely
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gis import io as gio  # noqa: E402
from gis import synth  # noqa: E402
from gis.area import mu  # noqa: E402

COUNTY, TOWNSHIP0 = "140404", 301
ORIGIN = (372000.0, 3870000.0)  # EPSG:4547, south-west of the demo county; never overlaps it


WARM_UP = 20  # requests or registrations of each kind run first and not counted


def pct(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, max(0, math.ceil(p / 100 * len(v)) - 1))]


def line(name, ours, raw, unit="s"):
    ratio = ours / raw if raw else float("nan")
    print(f"  {name:<46} {ours:10.3f} {unit:<3} raw {raw:10.3f} {unit:<3} ratio {ratio:5.2f}",
          flush=True)
    return {"name": name, "ours": ours, "raw": raw, "unit": unit, "ratio": round(ratio, 3)}


# ---------------------------------------------------------------------------------------------
# A generated delivery: DK layer (GeoPackage) + FBF table, NY/T 2539 codes.

def make_delivery(n: int, folder: Path, seed: int = 1) -> Path:
    rng = np.random.default_rng(seed)
    per_village = 1000
    villages = max(1, n // per_village)
    spacing = synth.village_spacing(per_village)
    per_row = max(1, math.ceil(math.sqrt(villages)))
    wkb, recs, fbf = [], [], []
    for v in range(villages):
        row, col = divmod(v, per_row)
        layout = synth.village(rng, per_village, (ORIGIN[0] + col * spacing,
                                                  ORIGIN[1] + row * spacing))
        village = f"{COUNTY}{TOWNSHIP0 + v // 100:03d}{200 + v % 100:03d}"
        polys = [shapely.Polygon(s.ring) for s in layout.fields] + list(layout.homesteads)
        seq = {}
        for i, poly in enumerate(polys):
            group = (layout.fields[i].group if i < len(layout.fields) else 0) + 1
            fb = f"{village}{group:02d}"
            seq[fb] = seq.get(fb, 0) + 1
            area = poly.area
            recs.append({"DKBM": f"{fb}{seq[fb]:05d}", "DKMC": "东地", "SYQXZ": "31",
                         "DKLB": "10", "TDLYLX": "013", "DLDJ": "05", "TDYT": "1",
                         "SFJBNT": "1", "SCMJ": round(area, 2), "SCMJM": float(mu(area)),
                         "ZJRXM": "张三"})
            wkb.append(shapely.to_wkb(poly))
        for g in sorted(seq):
            fbf.append({"FBFBM": g, "FBFMC": f"村{village}组{g[-2:]}"})
        if len(recs) >= n:
            break
    folder.mkdir(parents=True, exist_ok=True)
    gio.write_layer(folder / "DK_bench.gpkg", "DK", 4547, wkb[:n], recs[:n],
                    list(recs[0]), "GPKG")
    gio.write_table(folder / "FBF.csv", fbf, ["FBFBM", "FBFMC"])
    return folder


# ---------------------------------------------------------------------------------------------

def reset_database(url: str) -> None:
    eng = create_engine(url, isolation_level="AUTOCOMMIT")
    with eng.connect() as c:
        c.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        c.execute(text("CREATE SCHEMA public"))
    eng.dispose()


def raw_import(url: str, folder: Path) -> float:
    """The baseline: read, COPY, GiST, validity, overlap self-join."""
    import psycopg

    t0 = time.perf_counter()
    layer = gio.read_layer(folder / "DK_bench.gpkg")
    geoms = shapely.set_srid(shapely.from_wkb(layer.wkb), 4547)
    hexes = shapely.to_wkb(geoms, hex=True, include_srid=True)
    codes = layer.columns[layer.fields.index("DKBM")]
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS raw_dk; CREATE TABLE raw_dk (id serial PRIMARY KEY, "
                    "code text, geom geometry(Geometry, 4547))")
        with cur.copy("COPY raw_dk (code, geom) FROM STDIN") as cp:
            for c, h in zip(codes, hexes, strict=True):
                cp.write_row((c, h))
        cur.execute("CREATE INDEX ON raw_dk USING gist (geom)")
        cur.execute("ANALYZE raw_dk")
        cur.execute("SELECT count(*) FROM raw_dk WHERE NOT ST_IsValid(geom)")
        cur.fetchone()
        cur.execute("""SELECT count(*) FROM raw_dk a JOIN raw_dk b ON a.geom && b.geom
                       AND (a.id + 0) < (b.id + 0) WHERE ST_Relate(a.geom, b.geom, '2********')""")
        cur.fetchone()
        conn.commit()
    return time.perf_counter() - t0


def ours_import(app, folder: Path):
    from app.extensions import db
    from app.imports import operations as ops

    steps = {}
    state = {"what": "read", "t": time.perf_counter()}

    def progress(i, n, what=""):
        what = what.split(" (")[0]
        if what != state["what"]:
            now = time.perf_counter()
            steps[state["what"]] = steps.get(state["what"], 0) + now - state["t"]
            state.update(what=what, t=now)

    with app.app_context():
        t0 = time.perf_counter()
        state["t"] = t0
        batch = ops.run("bench", folder, progress=progress)
        t_import = time.perf_counter() - t0
        print("  steps: " + ", ".join(f"{k} {v:.2f}s" for k, v in steps.items()), flush=True)
        faults = batch.counts.get("fault_total")
        t0 = time.perf_counter()
        result = ops.accept("bench", batch, valid_part=True, reason="benchmark")
        db.session.commit()
        t_register = time.perf_counter() - t0
        db.session.remove()
    return t_import, t_register, faults, result


def raw_register_table(url: str) -> None:
    """A copy of the registered parcels for the raw registration baseline."""
    eng = create_engine(url)
    with eng.begin() as c:
        c.execute(text("DROP TABLE IF EXISTS raw_parcel"))
        c.execute(text("CREATE TABLE raw_parcel AS SELECT id, code, geom FROM parcel "
                       "WHERE end_lifespan IS NULL"))
        c.execute(text("CREATE INDEX ON raw_parcel USING gist (geom)"))
        c.execute(text("ANALYZE raw_parcel"))
    eng.dispose()


# ---------------------------------------------------------------------------------------------

def tiles_for(url: str, n: int, seed: int = 3):
    eng = create_engine(url)
    with eng.connect() as c:
        pts = c.execute(text("""SELECT ST_X(ST_Centroid(geom)), ST_Y(ST_Centroid(geom)) FROM parcel
                                TABLESAMPLE SYSTEM (5) WHERE end_lifespan IS NULL LIMIT :n"""),
                        {"n": n * 3}).all()
    eng.dispose()
    rnd = random.Random(seed)
    out = []
    for _ in range(n):
        lon, lat = rnd.choice(pts)
        z = rnd.choice((14, 15, 16))
        x = int((lon + 180) / 360 * 2 ** z)
        la = math.radians(lat)
        y = int((1 - math.log(math.tan(la) + 1 / math.cos(la)) / math.pi) / 2 * 2 ** z)
        out.append((z, x, y))
    return out


def bench_tiles(url: str, n: int):
    import psycopg

    from app.parcels.tiles import TILE_SQL

    tiles = tiles_for(url, n)
    # The app under gunicorn, as in production — but in the development configuration: the
    # production start-up checks (rightly) refuse the bench's trust login and demo accounts,
    # and production differs otherwise only by HSTS and secure cookies.
    env = {**os.environ, "DATABASE_URL": url, "SANQUAN_ENV": "development",
           "SESSION_COOKIE_SECURE": "0"}
    port = 5990
    proc = subprocess.Popen([str(ROOT / ".venv/bin/gunicorn"), "--bind", f"127.0.0.1:{port}",
                             "--workers", "2", "--threads", "2", "wsgi:app"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=1)
                break
            except OSError:
                time.sleep(0.2)
        sql = TILE_SQL
        http, raw, pairs = [], [], []
        conn = http_client.HTTPConnection("127.0.0.1", port)  # keep-alive, as a browser does
        with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"),
                             autocommit=True) as direct:
            # Alternately, so that both meet the same moments of the machine; the first
            # WARM_UP tiles (each worker's pool and prepared statement) are not counted.
            for i, (z, x, y) in enumerate(tiles[:WARM_UP] + tiles):
                t0 = time.perf_counter()
                conn.request("GET", f"/tiles/{z}/{x}/{y}.pbf")  # public, as for the map
                resp = conn.getresponse()
                body = resp.read()
                assert resp.status == 200, resp.status
                t1 = time.perf_counter()
                data = direct.execute(sql, {"z": z, "x": x, "y": y}).fetchone()[0]
                t2 = time.perf_counter()
                if i >= WARM_UP:
                    http.append(t1 - t0)
                    raw.append(t2 - t1)
                    pairs.append((body, bytes(data or b"")))
        conn.close()
    finally:
        proc.terminate()
        proc.wait()
    # The same parcels in every tile (feature order within a tile may differ between plans);
    # decoded after the timing, so that decoding does not disturb it.
    differ = sum(_features(a) != _features(b) for a, b in pairs)
    assert not differ, f"{differ} tiles from the app differ from the statement's"
    return http, raw


def _features(tile: bytes) -> set:
    import mapbox_vector_tile

    layer = mapbox_vector_tile.decode(tile).get("parcels", {"features": []})
    return {(f["properties"]["code"], f["properties"]["kind"]) for f in layer["features"]}


def bench_registrations(app, url: str, n: int):
    """Register the parcels of a fresh village next to the register, one by one — ours through
    the operation (ORM session, audit entry, the guard's locked overlap check), the raw one as
    one overlap query and one INSERT — alternately, so that both meet the same moments of the
    machine (checkpoints, other processes) and neither warms the other's caches.  The first
    WARM_UP registrations of each (a new connection's catalogue, plan and PROJ caches) are not
    counted."""
    import psycopg

    from app.extensions import db
    from app.parcels import operations as pops

    rng = np.random.default_rng(9)
    eng = create_engine(url)
    with eng.connect() as c:
        x, y = c.execute(text("SELECT ST_XMax(e), ST_YMin(e) FROM (SELECT ST_Extent("
                              "ST_Transform(geom, 4547)) e FROM parcel) q")).one()
    eng.dispose()
    layout = synth.village(rng, max((n + WARM_UP) * 2, 200), (x + 3000, y + 2000))
    polys = [shapely.Polygon(s.ring) for s in layout.fields][: 2 * (n + WARM_UP)]
    ours_polys, raw_polys = polys[0::2], polys[1::2]
    ours, raw = [], []
    raw_sql = """SELECT 1 FROM raw_parcel r, (SELECT ST_Transform(ST_GeomFromText(%s, 4547), 4490)
                 g) n WHERE r.geom && n.g AND ST_Relate(r.geom, n.g, '2********') LIMIT 1"""
    raw_insert = """INSERT INTO raw_parcel (id, code, geom) VALUES (%s, %s,
                    ST_Multi(ST_Transform(ST_GeomFromText(%s, 4547), 4490)))"""
    with app.app_context(), psycopg.connect(
            url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        col = db.session.execute(text("SELECT id, fbfbm FROM collective ORDER BY id LIMIT 1")).one()
        for i, (p, q) in enumerate(zip(ours_polys, raw_polys, strict=False)):
            t0 = time.perf_counter()
            pops.register("bench", "contract", f"{col.fbfbm}{80000 + i:05d}", col.id, p.wkt, 4547,
                          "benchmark")
            db.session.commit()
            ours.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            with conn.transaction():
                if conn.execute(raw_sql, (q.wkt,)).fetchone() is None:
                    conn.execute(raw_insert, (-1 - i, f"raw{i}", q.wkt))
            raw.append(time.perf_counter() - t0)
        db.session.remove()
    return ours[WARM_UP:], raw[WARM_UP:]


# ---------------------------------------------------------------------------------------------

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--sizes", default="100000,1000000")
    ap.add_argument("--tiles", type=int, default=1000)
    ap.add_argument("--registrations", type=int, default=1000)
    ap.add_argument("--out", default=str(ROOT / "bench" / "out"))
    ap.add_argument("--only", choices=("parcels", "market", "membership"), default=None,
                    help="run only one part (market: the auction under load)")
    ap.add_argument("--market-seconds", type=float, default=10.0)
    args = ap.parse_args()
    url = os.environ.get("BENCH_DATABASE_URL")
    if not url:
        sys.exit("BENCH_DATABASE_URL is not set (make bench sets it)")
    from flask_migrate import upgrade

    from app import create_app

    results = []
    sizes = [int(s) for s in args.sizes.split(",") if s] if args.only not in ("market", "membership") else []
    print(f"Sanquan benchmarks — {time.strftime('%Y-%m-%d %H:%M')} — "
          f"{os.cpu_count()} cores; figures beside the raw PostGIS baseline of the same run",
          flush=True)
    for n in sizes:
        reset_database(url)
        app = create_app({"SQLALCHEMY_DATABASE_URI": url, "MIGRATE_DATABASE_URL": url})
        with app.app_context():
            upgrade()
            from app.divisions.operations import ensure_reference_divisions
            from app.extensions import db

            ensure_reference_divisions()
            db.session.commit()
            db.session.remove()
        with tempfile.TemporaryDirectory(prefix="sanquan-bench-") as tmp:
            t0 = time.perf_counter()
            folder = make_delivery(n, Path(tmp) / "delivery")
            print(f"\n[{n:,} parcels] delivery generated in {time.perf_counter() - t0:.1f} s",
                  flush=True)
            raw_t = raw_import(url, folder)
            ours_t, reg_t, faults, result = ours_import(app, folder)
            results.append(line(f"import {n:,}: read+stage+validate", ours_t, raw_t))
            print(f"  (faults found: {faults}; registration of the valid part: {reg_t:.1f} s, "
                  f"{result['parcels']:,} parcels)", flush=True)
            results.append(line(f"import {n:,}: incl. registration", ours_t + reg_t, raw_t))
        raw_register_table(url)
        http, raw = bench_tiles(url, args.tiles)
        results.append(line(f"tiles z14-16 p50 ({n:,} in register)", pct(http, 50) * 1000,
                            pct(raw, 50) * 1000, "ms"))
        results.append(line(f"tiles z14-16 p99 ({n:,} in register)", pct(http, 99) * 1000,
                            pct(raw, 99) * 1000, "ms"))
        ours, raw = bench_registrations(app, url, args.registrations)
        results.append(line(f"register one parcel p50 ({n:,})", pct(ours, 50) * 1000,
                            pct(raw, 50) * 1000, "ms"))
        results.append(line(f"register one parcel p99 ({n:,})", pct(ours, 99) * 1000,
                            pct(raw, 99) * 1000, "ms"))
        print(f"  (mean registration {statistics.mean(ours) * 1000:.1f} ms, raw "
              f"{statistics.mean(raw) * 1000:.1f} ms)", flush=True)
    if args.only in (None, "market"):
        reset_database(url)
        app = create_app({"SQLALCHEMY_DATABASE_URI": url})
        with app.app_context():
            upgrade()
            from app.extensions import db

            db.session.remove()
        from bench import market

        results += market.bench(url, line, pct, seconds=args.market_seconds)
    if args.only in (None, "membership"):  # bench/membership.py: distribution over 100k
        reset_database(url)
        from bench import membership

        results += membership.upgrade_and_bench(url, line)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=1))
    print(f"\nresults written to {out / 'results.json'}")


if __name__ == "__main__":
    main()
