"""Vector tiles (Mapbox Vector Tile) of the current register, straight from PostGIS.

`/tiles/{z}/{x}/{y}.pbf` is served by a small WSGI app mounted in front of Flask (werkzeug's
DispatcherMiddleware, see `create_app`), the way a dedicated tile server would serve it: a map
asks for dozens of tiles a second, and the tiles are public (codes and classes, no holder, no
personal data — like the OGC API), so none of Flask's per-request machinery (session, login,
CSRF, rate-limit bookkeeping, ORM session) has anything to do.  A tile is one statement
(`ST_AsMVT` over the GiST index on the Web-Mercator geometry) on a psycopg connection pool of
its own: autocommit, the statement prepared on each connection before it is pooled.

Measured on this project's machine (`bench/`, tiles beside the same statement run directly):
through Flask and SQLAlchemy a tile cost ~1.6× the statement; SQLAlchemy's execution path
alone added ~0.8 ms and Flask ~1 ms of a ~5.5 ms tile.
"""
from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
import time

import psycopg
from psycopg_pool import ConnectionPool
from sqlalchemy.engine import make_url

from app.metrics import TILE_SECONDS

# Public like the OGC API: code, kind and classes only — no holder, no personal data.
TILE_SQL = """
    WITH e AS (SELECT ST_TileEnvelope(%(z)s, %(x)s, %(y)s) AS env),
    t AS (
      SELECT ST_AsMVTGeom(p.geom_web, e.env, 4096, 16, true) AS geom, p.id, p.code, p.kind,
             coalesce(p.dklb, '') AS dklb, coalesce(p.sfjbnt, '') AS sfjbnt
      FROM parcel p, e
      WHERE p.end_lifespan IS NULL AND p.geom_web && e.env
    )
    SELECT ST_AsMVT(t.*, 'parcels', 4096, 'geom') FROM t WHERE t.geom IS NOT NULL"""

VERSION_SQL = "SELECT version FROM register_version WHERE id = 1"
# The version and the tile in one statement (one snapshot, one round trip).
TILE_WITH_VERSION_SQL = f"SELECT ({VERSION_SQL}), ({TILE_SQL})"
# The ETag names the register's version (migration 0023: moved by trigger with every change of
# `parcel`) and the tile statement (a new deployment's tiles differ for the same register).
SQL_TAG = hashlib.sha1(TILE_SQL.encode()).hexdigest()[:8]
log = logging.getLogger("sanquan.tiles")

_pools: dict[tuple[int, str], ConnectionPool] = {}
POOL_WAIT_S = 3.0  # the longest a tile waits for a pooled connection; then 503 + Retry-After
_lock = threading.Lock()


def valid(z: int, x: int, y: int) -> bool:
    return 0 <= z <= 22 and 0 <= x < 2 ** z and 0 <= y < 2 ** z


def _pool(url: str) -> ConnectionPool:
    """One pool per process (a pool's threads do not survive gunicorn's fork) and database."""
    key = (os.getpid(), url)
    pool = _pools.get(key)
    if pool is None:
        with _lock:
            pool = _pools.get(key)
            if pool is None:
                # No pre-ping (`check=`): it was one more round trip per tile — under load a
                # wait for the server's turn, ~5 ms of a ~25 ms tile at load 9 (bench, 2026-11-
                # 29).  A connection a restart left stale fails its statement instead; then
                # the pool checks its idle ones and the tile is asked once more (_run).
                # `timeout`: the wait for a connection.  psycopg_pool's default, 30 s, held a
                # tile (and its worker thread) half a minute while the database was away
                # before its 503 — a map asks dozens at once (atkapi).  `connect_timeout`: a
                # server that does not answer at all.
                # `configure`: a new connection asks one empty tile before it is pooled (see
                # _warm): the first tile of a fresh connection no longer waits for PostGIS.
                pool = ConnectionPool(url, min_size=1, max_size=4, max_idle=600,
                                      timeout=POOL_WAIT_S, configure=_warm,
                                      kwargs={"autocommit": True, "connect_timeout": 3,
                                              "application_name": "sanquan-tiles"},
                                      name="tiles", open=True)
                _pools[key] = pool
    return pool


# A tile in the world's top-left corner at the deepest zoom: no parcel lies there, so it is
# cheap whatever the register holds (z 0 would be the whole register).
EMPTY_TILE = {"z": 22, "x": 0, "y": 0}


def _warm(conn: psycopg.Connection) -> None:
    """Run by the pool on each new connection before handing it out: the tile statement once,
    prepared (`prepare=True`) on an empty tile.  A fresh session's first tile paid for loading
    PostGIS, its caches and the plan — 25-50 ms, then 5-15 ms for the next few, against ~3-5 ms
    warm (measured on the 1M bench register, 2026-11-30) — and a fresh connection is exactly
    when a map asks dozens of tiles at once: a worker's first tiles, the pool growing under a
    burst, and every connection `max_lifetime` (1 h) renews.

    No parallel query on tile connections: at 10M parcels the planner gave a z14 tile (~1,000
    parcels) a Parallel Bitmap Heap Scan, and starting the workers cost more than it saved —
    the same 300 tiles (identical content at both sizes) took 1.34x the 1M time on average at
    10M, 1.04x without parallel workers (p99 1.50 -> 1.10; 2026-11-30).  A map asks many tiles
    at once: its requests are the parallelism."""
    conn.execute("SET max_parallel_workers_per_gather = 0")
    conn.execute(TILE_WITH_VERSION_SQL, EMPTY_TILE, prepare=True, binary=True).fetchone()
    conn.execute(VERSION_SQL, prepare=True).fetchone()


def libpq_url(sqlalchemy_url) -> str:
    return make_url(sqlalchemy_url).set(drivername="postgresql").render_as_string(
        hide_password=False)


def _run(url: str, work):
    """work(conn) on a pooled connection; once more on another when the first was broken (a
    database restarted since it was pooled: the pool drops it and checks its idle ones)."""
    pool = _pool(url)
    with pool.connection() as conn:
        try:
            return work(conn)
        except psycopg.OperationalError:
            if not conn.closed:  # the statement failed (a timeout, a cancel), not the link
                raise
    pool.check()
    with pool.connection() as conn:
        return work(conn)


def tile(url: str, z: int, x: int, y: int) -> bytes:
    """The tile's bytes (empty when no parcel is in it); `url` is a libpq URL."""
    data = _run(url, lambda conn: conn.execute(TILE_SQL, {"z": z, "x": x, "y": y},
                                               prepare=True, binary=True).fetchone()[0])
    return bytes(data or b"")


def etag_of(version: int) -> str:
    return f'W/"r{version}-{SQL_TAG}"'


def tile_if_changed(url: str, z: int, x: int, y: int, if_none_match: str | None
                    ) -> tuple[str, bytes | None]:
    """(ETag, bytes), or (ETag, None) when the client's copy is of the current register
    version.  Version and tile come from one statement (one snapshot): the ETag always names
    the register the bytes were made from.  No extra round trip without If-None-Match."""
    def work(conn):
        if if_none_match:
            tag = etag_of(conn.execute(VERSION_SQL, prepare=True).fetchone()[0])
            if _matches(if_none_match, tag):
                return tag, None
        # binary: the tile's bytes as they are (in text they come hex-encoded, twice the size,
        # encoded by the server and decoded here)
        version, data = conn.execute(TILE_WITH_VERSION_SQL, {"z": z, "x": x, "y": y},
                                     prepare=True, binary=True).fetchone()
        return etag_of(version), bytes(data or b"")

    return _run(url, work)


def _matches(header: str, tag: str) -> bool:
    weak = tag[2:] if tag.startswith("W/") else tag
    for t in header.split(","):
        t = t.strip()
        if t == "*" or (t[2:] if t.startswith("W/") else t) == weak:
            return True
    return False


class TileApp:
    """WSGI app for `{z}/{x}/{y}.pbf` below its mount point."""

    PATH = re.compile(r"^/(\d{1,2})/(\d{1,7})/(\d{1,7})\.pbf$")
    HEADERS = [("Content-Type", "application/vnd.mapbox-vector-tile"),
               ("Cache-Control", "public, max-age=60, must-revalidate"),
               ("Access-Control-Allow-Origin", "*"),
               ("X-Content-Type-Options", "nosniff")]

    def __init__(self, database_url: str):
        self.url = libpq_url(database_url)

    def __call__(self, environ, start_response):
        method = environ.get("REQUEST_METHOD", "GET")
        if method not in ("GET", "HEAD"):
            start_response("405 Method Not Allowed", [("Allow", "GET, HEAD"),
                                                      ("Content-Length", "0")])
            return [b""]
        m = self.PATH.match(environ.get("PATH_INFO", ""))
        z, x, y = (int(v) for v in m.groups()) if m else (-1, 0, 0)
        if not valid(z, x, y):
            start_response("404 Not Found", [("Content-Length", "0")])
            return [b""]
        t0 = time.perf_counter()
        try:
            tag, data = tile_if_changed(self.url, z, x, y, environ.get("HTTP_IF_NONE_MATCH"))
        except Exception:  # the database away (a restart): 503, the map retries — never a 500
            log.error("tile %s/%s/%s failed", z, x, y, exc_info=True)
            _observe("503", t0)
            start_response("503 Service Unavailable", [("Retry-After", "2"),
                                                       ("Cache-Control", "no-store"),
                                                       ("Content-Length", "0")])
            return [b""]
        if data is None:
            _observe("304", t0)
            start_response("304 Not Modified", [h for h in self.HEADERS if h[0] in (
                "Cache-Control", "Access-Control-Allow-Origin")] + [("ETag", tag)])
            return [b""]
        _observe("200", t0)
        start_response("200 OK", self.HEADERS + [("ETag", tag),
                                                 ("Content-Length", str(len(data)))])
        return [b"" if method == "HEAD" else data]


def _observe(status: str, t0: float) -> None:
    try:
        TILE_SECONDS.labels(status).observe(time.perf_counter() - t0)
    except Exception:
        pass
