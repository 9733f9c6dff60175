"""Benchmarks: each figure beside the raw-PostGIS baseline measured in the same run.

    make bench                       # 100k and 1M parcels, tiles, registrations
    make bench BENCH_ARGS="--sizes 20000 --tiles 200 --registrations 100"

    make bench BENCH_ARGS="--only parcels --sizes 100000 --reps 5"

Parts (a registry; `--only NAME` runs one): parcels, market, scale (see bench/scale.py) and any
module that calls `register_part` (bench/membership.py).

1. Import of a complete generated delivery (bench/delivery.py: DK, ZJD, FBF, CBF, CBF_JTCY,
   CBHT, CBDKXX, ~0.3 % faults; the register already holds the neighbouring villages) with
   full validation, beside the fair raw pipeline on the same files (bench/raw.py: JIT off,
   binary COPY of EWKB, each geometry parsed once, GC paused, the same checks' SQL) — each
   side run alternately --reps times: median, min–max, ratio of the medians.
2. Vector tiles z14–z16 through HTTP (the app under a real server), beside the same ST_AsMVT
   query run directly, alternately per tile: p50 (IQR) and p99.
3. Registration of single parcels with the overlap check (operation + trigger), beside a raw
   overlap query + INSERT, alternately: p50 (IQR) and p99.
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

from bench import delivery as bdel  # noqa: E402
from bench import raw as braw  # noqa: E402
from bench.registry import PARTS, register_part  # noqa: E402
from gis import synth  # noqa: E402

WARM_UP = 20  # requests or registrations of each kind run first and not counted


def pct(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, max(0, math.ceil(p / 100 * len(v)) - 1))]


def line(name, ours, raw, unit="s", ours_spread=None, raw_spread=None, target=None):
    """One figure beside its fair baseline: value [spread] for each side, the ratio (of the
    medians when the values are medians) and, if given, whether the target holds."""
    ratio = ours / raw if raw else float("nan")

    def sp(s):
        return f" [{s[0]:.3g}–{s[1]:.3g}]" if s else ""
    held = "" if target is None else ("  ok" if ratio <= target else f"  MISSES ≤{target}")
    print(f"  {name:<44} {ours:9.3f} {unit}{sp(ours_spread):<19} fair raw {raw:9.3f} {unit}"
          f"{sp(raw_spread):<19} ratio {ratio:5.2f}{held}", flush=True)
    return {"name": name, "ours": ours, "raw": raw, "unit": unit, "ratio": round(ratio, 3),
            "ours_spread": ours_spread, "raw_spread": raw_spread, "target": target}


def iqr(values, scale=1.0):
    return (pct(values, 25) * scale, pct(values, 75) * scale)




# ---------------------------------------------------------------------------------------------

def reset_database(url: str) -> None:
    eng = create_engine(url, isolation_level="AUTOCOMMIT")
    with eng.connect() as c:
        c.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        c.execute(text("CREATE SCHEMA public"))
    eng.dispose()


def new_register(url: str):
    """A fresh database at head with the reference divisions; the app on it."""
    from flask_migrate import upgrade

    from app import create_app

    reset_database(url)
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "MIGRATE_DATABASE_URL": url})
    with app.app_context():
        upgrade()
        from app.divisions.operations import ensure_reference_divisions
        from app.extensions import db

        ensure_reference_divisions()
        db.session.commit()
        db.session.remove()
    return app


def register_neighbours(app, n: int, tmp: Path) -> int:
    """The register already holds the villages beside the delivery (imported and accepted
    through the app, not timed), so the register-overlap check meets real parcels."""
    from app.extensions import db
    from app.imports import operations as ops

    first, count = bdel.neighbours_of(n)
    g = bdel.make_delivery(count * bdel.PER_VILLAGE, tmp / "neighbours", seed=5, first=first,
                           fault_rate=0)
    with app.app_context():
        batch = ops.run("bench", g.folder)
        res = ops.accept("bench", batch, valid_part=True, reason="benchmark: neighbours")
        db.session.commit()
        db.session.remove()
    return res["parcels"]


def drop_staging(app, batch_id: int) -> None:
    """Between repetitions: the staged rows go (not timed), so every run meets the same,
    empty staging tables.  TRUNCATE (the bench database's superuser): a DELETE of one 100k
    batch ran 15 min — each deleted row checks the unindexed self-reference
    import_feature.corrected_from_id."""
    from app.extensions import db

    with app.app_context():
        db.session.execute(text("SELECT drop_staging_batch_index(:b)"), {"b": batch_id})
        db.session.execute(text("TRUNCATE import_fault, import_record, import_feature"))
        db.session.commit()
        db.session.remove()


def ours_import(app, folder: Path, accept: bool = True):
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
        print("    app steps: " + ", ".join(f"{k} {v:.2f}s" for k, v in steps.items()),
              flush=True)
        faults = batch.counts.get("faults")
        if not accept:
            bid = batch.id
            db.session.remove()
            return t_import, None, faults, bid
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
        # REPEATABLE: the same tiles in every run on the same register (without it each run
        # drew other tiles, and the p50 of a z14-16 mix moved by 2x between runs: 2.6-4.9 ms
        # for the bare statement in one quarter hour, 2026-11-30).
        pts = c.execute(text("""SELECT ST_X(ST_Centroid(geom)), ST_Y(ST_Centroid(geom)) FROM parcel
                                TABLESAMPLE SYSTEM (5) REPEATABLE (:seed)
                                WHERE end_lifespan IS NULL ORDER BY id LIMIT :n"""),
                        {"n": n * 3, "seed": seed}).all()
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


# The tile pool's setting (app/parcels/tiles.py: _warm), given to the bare statement too.
NO_PARALLEL = "-c max_parallel_workers_per_gather=0"


def bench_tiles(url: str, n: int):
    """Per tile, alternately: the tile through the app over HTTP, the bare statement, and the
    same tile's bytes from the HTTP floor (bench/http_floor.py: the same gunicorn serving
    bytes made before the timing).  Returns (http, bare, floor) seconds."""
    import pickle

    import psycopg

    from app.parcels.tiles import TILE_SQL

    tiles = tiles_for(url, n)
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    sql = TILE_SQL
    # The app under gunicorn, as in production — but in the development configuration: the
    # production start-up checks (rightly) refuse the bench's trust login and demo accounts,
    # and production differs otherwise only by HSTS and secure cookies.
    env = {**os.environ, "DATABASE_URL": url, "SANQUAN_ENV": "development",
           "SESSION_COOKIE_SECURE": "0"}
    floor_file = tempfile.NamedTemporaryFile(prefix="sanquan-floor-", suffix=".pickle",
                                             delete=False)
    with psycopg.connect(dsn, autocommit=True, options=NO_PARALLEL) as direct, floor_file:
        pickle.dump({f"/tiles/{z}/{x}/{y}.pbf": bytes(direct.execute(
            sql, {"z": z, "x": x, "y": y}, binary=True).fetchone()[0] or b"")
            for z, x, y in tiles}, floor_file)
    port, floor_port = 5990, 5989
    gunicorn = [str(ROOT / ".venv/bin/gunicorn"), "--workers", "2", "--threads", "2"]
    proc = subprocess.Popen(gunicorn + ["--bind", f"127.0.0.1:{port}", "wsgi:app"], cwd=ROOT,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    floor = subprocess.Popen(gunicorn + ["--bind", f"127.0.0.1:{floor_port}",
                                         "bench.http_floor:app"], cwd=ROOT,
                             env={**env, "BENCH_FLOOR_TILES": floor_file.name},
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for p, path in ((port, "/login"), (floor_port, "/tiles/{}/{}/{}.pbf".format(*tiles[0]))):
            for _ in range(100):
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{p}{path}", timeout=1)
                    break
                except OSError:
                    time.sleep(0.2)
        http, raw, flo, pairs = [], [], [], []
        conn = http_client.HTTPConnection("127.0.0.1", port)  # keep-alive, as a browser does
        fconn = http_client.HTTPConnection("127.0.0.1", floor_port)
        with psycopg.connect(dsn, autocommit=True, options=NO_PARALLEL) as direct:
            # Alternately, so that all three meet the same moments of the machine; the first
            # WARM_UP tiles (each worker's pool and prepared statement) are not counted.
            # Each side goes first every other tile: the second to ask for a tile finds its
            # index and heap pages (and the CPU's caches) warmed by the first — with the app
            # always first, that favoured the bare statement.
            def by_app(z, x, y):
                t0 = time.perf_counter()
                conn.request("GET", f"/tiles/{z}/{x}/{y}.pbf")  # public, as for the map
                resp = conn.getresponse()
                body = resp.read()
                assert resp.status == 200, resp.status
                return time.perf_counter() - t0, body

            def bare(z, x, y):
                t0 = time.perf_counter()
                data = direct.execute(sql, {"z": z, "x": x, "y": y}, binary=True).fetchone()[0]
                return time.perf_counter() - t0, bytes(data or b"")

            for i, (z, x, y) in enumerate(tiles[:WARM_UP] + tiles):
                if i % 2:
                    (t_raw, data), (t_app, body) = bare(z, x, y), by_app(z, x, y)
                else:
                    (t_app, body), (t_raw, data) = by_app(z, x, y), bare(z, x, y)
                t2 = time.perf_counter()
                fconn.request("GET", f"/tiles/{z}/{x}/{y}.pbf")
                fresp = fconn.getresponse()
                fresp.read()
                assert fresp.status == 200, fresp.status
                t3 = time.perf_counter()
                if i >= WARM_UP:
                    http.append(t_app)
                    raw.append(t_raw)
                    flo.append(t3 - t2)
                    pairs.append((body, data))
        conn.close()
        fconn.close()
    finally:
        for p in (proc, floor):
            p.terminate()
            p.wait()
        os.unlink(floor_file.name)
    # The same parcels in every tile (feature order within a tile may differ between plans);
    # decoded after the timing, so that decoding does not disturb it.
    differ = sum(_features(a) != _features(b) for a, b in pairs)
    assert not differ, f"{differ} tiles from the app differ from the statement's"
    zooms = [z for z, _x, _y in tiles]
    return http, raw, flo, zooms


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

def spread(values):
    return (min(values), max(values))


@register_part("parcels")
def parcels_part(args, url):
    results = []
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    for n in [int(s) for s in args.sizes.split(",") if s]:
        app = new_register(url)
        with tempfile.TemporaryDirectory(prefix="sanquan-bench-") as tmp:
            t0 = time.perf_counter()
            neighbours = register_neighbours(app, n, Path(tmp))
            g = bdel.make_delivery(n, Path(tmp) / "delivery")
            print(f"\n[{n:,} parcels] delivery generated in {time.perf_counter() - t0:.1f} s "
                  f"(incl. registering {neighbours:,} neighbouring parcels): {g.parcels:,} DK, "
                  f"{g.homesteads:,} ZJD, tables {g.records}; injected faults {g.faults}",
                  flush=True)
            ours_t, raw_t, batch_id = [], [], None
            for rep in range(args.reps):
                # Alternately, and each side first every other time.
                order = ("raw", "ours") if rep % 2 == 0 else ("ours", "raw")
                for side in order:
                    if side == "raw":
                        rsteps = {}
                        t, counts = braw.run(dsn, g.folder, rsteps)
                        raw_t.append(t)
                        print(f"    rep {rep + 1} raw  {t:7.2f} s  {counts}", flush=True)
                        print("    raw steps: " + ", ".join(f"{k} {v:.2f}s"
                                                        for k, v in rsteps.items()), flush=True)
                    else:
                        if batch_id is not None:
                            drop_staging(app, batch_id)
                        t, _, faults, batch_id = ours_import(app, g.folder, accept=False)
                        ours_t.append(t)
                        print(f"    rep {rep + 1} ours {t:7.2f} s  faults {faults}", flush=True)
            results.append(line(f"import {n:,}: read+stage+validate (median of {args.reps})",
                                statistics.median(ours_t), statistics.median(raw_t), "s",
                                spread(ours_t), spread(raw_t), target=1.5))
            drop_staging(app, batch_id)
            if not (args.tiles or args.registrations):
                continue  # nothing below reads the register: the import alone was asked for
            t_imp, reg_t, faults, result = ours_import(app, g.folder)
            print(f"  (registration of the valid part: {reg_t:.1f} s, {result['parcels']:,} "
                  f"parcels; import before it {t_imp:.1f} s)", flush=True)
        raw_register_table(url)
        if args.tiles:
            http, raw, flo, zooms = bench_tiles(url, args.tiles)
            results.append(line(f"tiles z14-16 p50 ({n:,} in register)", pct(http, 50) * 1000,
                                pct(raw, 50) * 1000, "ms", iqr(http, 1000), iqr(raw, 1000),
                                target=1.5))
            results.append(line(f"tiles z14-16 p99 ({n:,} in register)", pct(http, 99) * 1000,
                                pct(raw, 99) * 1000, "ms"))
            # Not a target: the same tiles over HTTP from bytes made beforehand (no database)
            # — what the HTTP exchange alone costs beside the bare statement.
            results.append(line(f"  HTTP floor p50, no database ({n:,})", pct(flo, 50) * 1000,
                                pct(raw, 50) * 1000, "ms", iqr(flo, 1000), iqr(raw, 1000)))
            # Per tile, the app's time less the floor's for the same tile: the app's work
            # beyond HTTP, beside the statement it runs.
            results.append(line(f"  tile less HTTP floor, median ({n:,})",
                                statistics.median(h - f for h, f in zip(http, flo, strict=True)) * 1000,
                                pct(raw, 50) * 1000, "ms"))
            # By zoom: the mix's p50 falls between the small z16 and the large z14 tiles, so
            # it moves with the draw; a fixed cost per request weighs on the small ones.
            for zz in sorted(set(zooms)):
                h = [v for v, z in zip(http, zooms, strict=True) if z == zz]
                r = [v for v, z in zip(raw, zooms, strict=True) if z == zz]
                results.append(line(f"  tiles z{zz} p50 ({len(h)} tiles)", pct(h, 50) * 1000,
                                    pct(r, 50) * 1000, "ms", iqr(h, 1000), iqr(r, 1000)))
        if args.registrations:
            ours, raw = bench_registrations(app, url, args.registrations)
            results.append(line(f"register one parcel p50 ({n:,})", pct(ours, 50) * 1000,
                                pct(raw, 50) * 1000, "ms", iqr(ours, 1000), iqr(raw, 1000)))
            results.append(line(f"register one parcel p99 ({n:,})", pct(ours, 99) * 1000,
                                pct(raw, 99) * 1000, "ms", target=2.0))
            print(f"  (mean registration {statistics.mean(ours) * 1000:.1f} ms, raw "
                  f"{statistics.mean(raw) * 1000:.1f} ms)", flush=True)
    return results


@register_part("market")
def market_part(args, url):
    from flask_migrate import upgrade

    from app import create_app

    reset_database(url)
    app = create_app({"SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        upgrade()
        from app.extensions import db

        db.session.remove()
    from bench import market

    return market.bench(url, line, pct, seconds=args.market_seconds)


PLUGINS = ("scale", "membership")  # modules of bench/ that register parts of their own


def _load_plugins() -> list:
    """Import the plugin modules (they register their parts); a module may also define
    add_arguments(parser) for options of its own."""
    import importlib

    return [importlib.import_module(f"bench.{name}") for name in PLUGINS
            if (ROOT / "bench" / f"{name}.py").exists()]


def main() -> None:
    plugins = _load_plugins()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    for module in plugins:
        if hasattr(module, "add_arguments"):
            module.add_arguments(ap)
    ap.add_argument("--sizes", default="100000,1000000")
    ap.add_argument("--reps", type=int, default=5, help="import runs of each side, alternately")
    ap.add_argument("--tiles", type=int, default=1000)
    ap.add_argument("--registrations", type=int, default=1000)
    ap.add_argument("--out", default=str(ROOT / "bench" / "out"))
    ap.add_argument("--only", choices=sorted(PARTS), default=None,
                    help="run only one part")
    ap.add_argument("--market-seconds", type=float, default=10.0)
    args = ap.parse_args()
    url = os.environ.get("BENCH_DATABASE_URL")
    if not url:
        sys.exit("BENCH_DATABASE_URL is not set (make bench sets it)")
    print(f"Sanquan benchmarks — {time.strftime('%Y-%m-%d %H:%M')} — "
          f"{os.cpu_count()} cores; each figure beside the fair raw baseline of the same run "
          f"(median [min–max] or p50 [IQR])", flush=True)
    results = []
    for name, (fn, default) in PARTS.items():
        if args.only == name or (args.only is None and default):
            results += fn(args, url)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=1))
    print(f"\nresults written to {out / 'results.json'}")


if __name__ == "__main__":
    main()
