"""Our /ogc beside pygeoapi's PostgreSQL provider on the same current parcels, in one run
(issue 19 §3: choose by measuring requests/s and conformance).  Not part of `make test`.

    TEST_DATABASE_URL=... .venv/bin/python bench/ogc_vs_pygeoapi.py \
        --pygeoapi-venv .pygeoapi-venv [--requests 300] [--threads 4]

The database is a built test database (migrations + the seeded county).  As its owner the
script creates a view `bench_ogc_parcel` (parcel ⋈ collective, current versions, the public
properties /ogc serves) for pygeoapi; pygeoapi is installed in its own venv, never in
requirements.txt.  Both servers run the same way — werkzeug's threaded server in a process of
its own — and one client process sends the same queries to each (4 threads): items page of
100, a bbox, a CQL2 text filter, EPSG:4490.  Before timing, each pair of answers is compared
(numberMatched / features), and both /conformance lists are printed."""
from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sqlalchemy import create_engine, make_url, text

ROOT = Path(__file__).resolve().parents[1]
VIEW = "bench_ogc_parcel"
C4490 = "http://www.opengis.net/def/crs/EPSG/0/4490"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_up(url: str, proc, seconds: float = 90) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise SystemExit(f"server exited: {url}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                r.read()
                return
        except Exception:
            time.sleep(0.3)
    raise SystemExit(f"server not up: {url}")


def get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=60) as r:
        return json.loads(r.read())


def measure(url: str, n: int, threads: int) -> dict:
    def one(_):
        t = time.perf_counter()
        with urllib.request.urlopen(url, timeout=60) as r:
            r.read()
            assert r.status == 200
        return time.perf_counter() - t

    with ThreadPoolExecutor(threads) as ex:
        list(ex.map(one, range(10)))  # warm up
        t0 = time.perf_counter()
        lat = list(ex.map(one, range(n)))
        wall = time.perf_counter() - t0
    lat.sort()
    return {"rps": n / wall, "p50_ms": 1000 * statistics.median(lat),
            "p95_ms": 1000 * lat[int(0.95 * (len(lat) - 1))]}


def matched(doc: dict) -> int:
    return doc.get("numberMatched", len(doc.get("features", [])))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", default=os.environ.get("TEST_DATABASE_URL"))
    ap.add_argument("--pygeoapi-venv", default=str(ROOT / ".pygeoapi-venv"))
    ap.add_argument("--requests", type=int, default=300)
    ap.add_argument("--threads", type=int, default=4)
    a = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    from app.config import owner_url

    app_url = make_url(a.db)
    owner = create_engine(owner_url(a.db))
    with owner.begin() as c:
        c.execute(text(f"""CREATE OR REPLACE VIEW {VIEW} AS
            SELECT p.id, p.code, p.kind, p.name, c.fbfbm, substr(c.fbfbm, 1, 9) AS township,
                   p.dklb, p.tdlylx, p.dldj, p.tdyt, p.sfjbnt, p.scmj, p.scmjm, p.version,
                   p.survey_srid, p.geom
            FROM parcel p JOIN collective c ON c.id = p.collective_id
            WHERE p.end_lifespan IS NULL"""))
        c.execute(text(f"GRANT SELECT ON {VIEW} TO {app_url.username}"))
        township = c.execute(text(f"SELECT township FROM {VIEW} GROUP BY 1 ORDER BY count(*) "
                                  "DESC LIMIT 1")).scalar()
        village = c.execute(text(f"SELECT substr(fbfbm, 1, 12) FROM {VIEW} GROUP BY 1 "
                                 "ORDER BY 1 LIMIT 1")).scalar()
        bbox = c.execute(text(f"""SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM
            (SELECT ST_Extent(geom) AS e FROM {VIEW} WHERE fbfbm LIKE :v) x"""),
                         {"v": village + "%"}).one()
    owner.dispose()

    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    q = app_url.query
    pg_port = free_port()
    cfg = (ROOT / "bench" / "pygeoapi.config.yml.tmpl").read_text()
    for k, v in {"port": pg_port, "pghost": q.get("host", "localhost"),
                 "pgport": q.get("port", 5432), "pgdb": app_url.database,
                 "pguser": app_url.username, "view": VIEW}.items():
        cfg = cfg.replace(f"@{k}@", str(v))
    (out / "pygeoapi.yml").write_text(cfg)
    venv = Path(a.pygeoapi_venv)
    env = {**os.environ, "PYGEOAPI_CONFIG": str(out / "pygeoapi.yml"),
           "PYGEOAPI_OPENAPI": str(out / "pygeoapi-openapi.yml"), "NO_PROXY": "127.0.0.1"}
    subprocess.run([str(venv / "bin" / "pygeoapi"), "openapi", "generate",
                    str(out / "pygeoapi.yml"), "--output-file", str(out / "pygeoapi-openapi.yml")],
                   env=env, check=True, capture_output=True)
    serve = ("from werkzeug.serving import run_simple; import sys, logging; "
             "logging.getLogger('werkzeug').setLevel(logging.ERROR); "
             "run_simple('127.0.0.1', int(sys.argv[1]), APP, threaded=True)")
    ours_port = free_port()
    ours = subprocess.Popen(
        [str(ROOT / ".venv" / "bin" / "python"), "-c",
         "from app import create_app; APP = create_app(); " + serve, str(ours_port)],
        cwd=ROOT, env={**env, "DATABASE_URL": a.db, "SANQUAN_ENV": "development",
                       "LOG_JSON": "0", "LOG_LEVEL": "ERROR"},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    theirs = subprocess.Popen(
        [str(venv / "bin" / "python"), "-c",
         "from pygeoapi.flask_app import APP; " + serve, str(pg_port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        bases = {"ours": f"http://127.0.0.1:{ours_port}/ogc",
                 "pygeoapi": f"http://127.0.0.1:{pg_port}"}
        for name, proc in (("ours", ours), ("pygeoapi", theirs)):
            wait_up(bases[name] + "/conformance", proc)
        quote = urllib.parse.quote
        cql = urllib.parse.quote(f"township = '{township}' AND kind = 'contract'")
        bb = ",".join(f"{v:.7f}" for v in bbox)
        bb_latlon = f"{bbox[1]:.7f},{bbox[0]:.7f},{bbox[3]:.7f},{bbox[2]:.7f}"
        items = "/collections/parcels/items?limit=100"
        # (case, our path, pygeoapi's path).  pygeoapi 0.21 refuses `filter-lang=cql2-text`
        # ("Invalid filter language"; it knows cql-text / cql-json) and takes a CRS84 bbox in
        # the storage CRS's axis order (latitude first for EPSG:4490: the CRS84 bbox matches 0),
        # so it is sent what it answers correctly; both answers are compared before timing.
        cases = [
            ("items limit=100 (first page, CRS84)", items, items),
            ("items limit=100 bbox (a village)", f"{items}&bbox={bb}",
             f"{items}&bbox={bb_latlon}"),
            ("items limit=100 CQL2 text filter", f"{items}&filter-lang=cql2-text&filter={cql}",
             f"{items}&filter={cql}"),
            ("items limit=100 crs=EPSG:4490", f"{items}&crs={quote(C4490, safe='')}",
             f"{items}&crs={quote(C4490, safe='')}"),
            ("items limit=100 crs=EPSG:4490 + CQL2 filter",
             f"{items}&crs={quote(C4490, safe='')}&filter-lang=cql2-text&filter={cql}",
             f"{items}&crs={quote(C4490, safe='')}&filter={cql}"),
        ]
        print(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {a.requests} requests "
              f"per case, {a.threads} client threads; township {township}, bbox {bb}; "
              f"load average {os.getloadavg()[0]:.1f}")
        rows = []
        for case, ours_path, their_path in cases:
            res = {}
            for name, base in bases.items():
                url = base + (ours_path if name == "ours" else their_path + "&f=json")
                try:
                    doc = get(url)
                    res[name] = {"matched": matched(doc), "returned": len(doc["features"]),
                                 **measure(url, a.requests, a.threads)}
                except Exception as e:  # an unsupported query is a finding, not a crash
                    res[name] = {"error": f"{type(e).__name__}: {str(e)[:120]}"}
            rows.append((case, res))
            print(case, json.dumps(res))
        conf = {name: sorted(get(base + "/conformance" + ("?f=json" if name == "pygeoapi"
                                                          else ""))["conformsTo"])
                for name, base in bases.items()}
        print("\n| query | ours req/s | ours p50 / p95 ms | pygeoapi req/s | "
              "pygeoapi p50 / p95 ms | matched (ours / pygeoapi) |\n|---|---:|---:|---:|---:|---|")
        def fmt(r):
            return ((f"{r['rps']:.1f}", f"{r['p50_ms']:.1f} / {r['p95_ms']:.1f}")
                    if "rps" in r else (r["error"], "—"))

        for case, res in rows:
            o, p = res["ours"], res["pygeoapi"]
            print(f"| {case} | {fmt(o)[0]} | {fmt(o)[1]} | {fmt(p)[0]} | {fmt(p)[1]} | "
                  f"{o.get('matched', '—')} / {p.get('matched', '—')} |")
        print("\nconformance only ours:", [c for c in conf["ours"] if c not in conf["pygeoapi"]])
        print("conformance only pygeoapi:", [c for c in conf["pygeoapi"]
                                             if c not in conf["ours"]])
    finally:
        for p in (ours, theirs):
            p.terminate()
            p.wait(10)


if __name__ == "__main__":
    main()
