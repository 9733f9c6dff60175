"""Operations (issue 18 part 4): probes, request ids and JSON logs, metrics behind loopback or a
token, tile ETags from the register's version, and a 503 (never a 500) when the database is
away."""
import json
import logging
import re

import pytest
from sqlalchemy import create_engine, text

from app import observability as obs
from app.parcels import tiles


def test_healthz_and_readyz(app):
    c = app.test_client()
    r = c.get("/healthz")
    assert r.status_code == 200 and r.json == {"status": "ok"}
    r = c.get("/readyz")
    assert r.status_code == 200, r.json
    assert r.json["checks"] == {"database": "ok", "migrations": "ok", "redis": "off"}


def test_readyz_says_when_the_schema_is_behind_or_redis_is_gone(app, monkeypatch):
    heads = obs.migration_heads()
    monkeypatch.setitem(obs._head, "heads", heads | {"9999_future"})
    r = app.test_client().get("/readyz")
    assert r.status_code == 503 and r.json["checks"]["migrations"] == "behind"
    monkeypatch.setitem(obs._head, "heads", heads)
    monkeypatch.setitem(app.config, "REDIS_URL", "unix:///nonexistent/redis.sock")
    r = app.test_client().get("/readyz")
    assert r.status_code == 503 and r.json["checks"]["redis"] == "failing"
    assert r.json["checks"]["database"] == "ok"


def test_readyz_fails_when_the_database_is_unreachable(app, monkeypatch):
    from app.extensions import db

    with app.app_context():
        real = db.session.scalars

        def refused(*a, **k):
            from sqlalchemy.exc import OperationalError

            raise OperationalError("SELECT 1", {}, Exception("connection refused"))

        monkeypatch.setattr(db.session, "scalars", refused)
        ok, checks = obs.readiness()
        monkeypatch.setattr(db.session, "scalars", real)
    assert not ok and checks["database"] == "failing"


def test_migration_head_is_the_scripts_head(app):
    from pathlib import Path

    files = Path(app.root_path).parent.joinpath("migrations", "versions").glob("*.py")
    revs, downs = set(), set()
    for f in files:
        s = f.read_text()
        revs.add(re.search(r"^revision = [\"']([^\"']+)[\"']", s, re.M).group(1))
        down = re.search(r"^down_revision = [\"']([^\"']+)[\"']", s, re.M)
        if down:
            downs.add(down.group(1))
    assert obs.migration_heads() == revs - downs


def test_request_id_honoured_generated_and_logged(app, capsys):
    c = app.test_client()
    r = c.get("/healthz", headers={"X-Request-ID": "abc-123.x"})
    assert r.headers["X-Request-ID"] == "abc-123.x"
    r1, r2 = c.get("/healthz"), c.get("/healthz", headers={"X-Request-ID": "bad id with spaces"})
    ids = {r1.headers["X-Request-ID"], r2.headers["X-Request-ID"]}
    assert len(ids) == 2 and all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
    # tiles are served in front of Flask and carry it too
    assert c.get("/tiles/3/99/0.pbf", headers={"X-Request-ID": "tile-1"}).headers[
        "X-Request-ID"] == "tile-1"


def test_log_lines_are_json_with_the_request_id():
    record = logging.LogRecord("sanquan.jobs", logging.ERROR, __file__, 1, "job %s failed",
                               (7,), None)
    record.job = 7
    token = obs.request_id_var.set("rid-42")
    try:
        obs.RequestIdFilter().filter(record)
        line = json.loads(obs.JsonFormatter().format(record))
    finally:
        obs.request_id_var.reset(token)
    assert line["request_id"] == "rid-42" and line["msg"] == "job 7 failed"
    assert line["level"] == "ERROR" and line["job"] == 7 and line["logger"] == "sanquan.jobs"


def test_every_log_line_of_a_request_names_it(app, monkeypatch):
    seen = []

    class Grab(logging.Handler):
        def emit(self, record):
            obs.RequestIdFilter().filter(record)
            seen.append(json.loads(obs.JsonFormatter().format(record)))

    def logging_readiness():
        obs.log.warning("first line")
        logging.getLogger("sanquan.jobs").error("second line")
        return True, {}

    monkeypatch.setattr(obs, "readiness", logging_readiness)
    h = Grab()
    logging.getLogger("sanquan").addHandler(h)
    try:
        r = app.test_client().get("/readyz", headers={"X-Request-ID": "req-log-1"})
    finally:
        logging.getLogger("sanquan").removeHandler(h)
    assert r.headers["X-Request-ID"] == "req-log-1"
    assert [s["msg"] for s in seen] == ["first line", "second line"]
    assert all(s["request_id"] == "req-log-1" for s in seen)


def test_metrics_loopback_or_token_only(app, monkeypatch):
    c = app.test_client()
    c.get("/healthz")
    r = c.get("/metrics", environ_base={"REMOTE_ADDR": "127.0.0.1"})
    assert r.status_code == 200
    body = r.get_data(as_text=True)
    for name in ("sanquan_request_seconds_bucket", 'route="/healthz"', "sanquan_jobs",
                 "sanquan_tile_seconds", "sanquan_bid_seconds", "sanquan_job_seconds"):
        assert name in body, name
    assert c.get("/metrics", environ_base={"REMOTE_ADDR": "10.1.2.3"}).status_code == 404
    # a proxy on the same host: loopback peer, but the client is elsewhere
    assert c.get("/metrics", environ_base={"REMOTE_ADDR": "127.0.0.1"},
                 headers={"X-Forwarded-For": "203.0.113.9"}).status_code == 404
    monkeypatch.setitem(app.config, "METRICS_TOKEN", "s3cret-metrics")
    assert c.get("/metrics", environ_base={"REMOTE_ADDR": "10.1.2.3"},
                 headers={"X-Metrics-Token": "wrong"}).status_code == 404
    assert c.get("/metrics", environ_base={"REMOTE_ADDR": "10.1.2.3"},
                 headers={"X-Metrics-Token": "s3cret-metrics"}).status_code == 200


def _a_parcel_tile(app):
    import math

    eng = create_engine(app.config["SQLALCHEMY_DATABASE_URI"])
    with eng.connect() as c:
        lon, lat = c.execute(text("""SELECT ST_X(c), ST_Y(c) FROM (SELECT ST_Centroid(geom) c
            FROM parcel WHERE end_lifespan IS NULL ORDER BY id LIMIT 1) x""")).one()
    eng.dispose()
    z = 15
    x = int((lon + 180) / 360 * 2 ** z)
    r = math.radians(lat)
    y = int((1 - math.log(math.tan(r) + 1 / math.cos(r)) / math.pi) / 2 * 2 ** z)
    return f"/tiles/{z}/{x}/{y}.pbf"


def _bump(app):
    """A committed statement on `parcel` (it changes no row; the statement trigger fires)."""
    eng = create_engine(app.config["SQLALCHEMY_DATABASE_URI"])
    with eng.begin() as c:
        c.execute(text("UPDATE parcel SET code = code WHERE false"))
    eng.dispose()


def test_tile_etag_and_304_follow_the_register_version(app):
    c = app.test_client()
    url = _a_parcel_tile(app)
    r = c.get(url)
    assert r.status_code == 200 and r.data and r.headers["ETag"].startswith('W/"r')
    tag = r.headers["ETag"]
    again = c.get(url, headers={"If-None-Match": tag})
    assert again.status_code == 304 and again.data == b"" and again.headers["ETag"] == tag
    # a list of tags, and the strong form of the weak tag, revalidate too
    assert c.get(url, headers={"If-None-Match": f'"x", {tag[2:]}'}).status_code == 304
    assert c.get(url, headers={"If-None-Match": '"r0-nothing"'}).status_code == 200
    _bump(app)
    fresh = c.get(url, headers={"If-None-Match": tag})
    assert fresh.status_code == 200 and fresh.headers["ETag"] != tag and fresh.data == r.data
    n_old = int(re.search(r"r(\d+)-", tag).group(1))
    assert int(re.search(r"r(\d+)-", fresh.headers["ETag"]).group(1)) == n_old + 1


def test_every_parcel_statement_moves_the_version_in_its_transaction(dbs, app):
    v0 = dbs.execute(text("SELECT version FROM register_version")).scalar()
    n = 3
    for _ in range(n):
        dbs.execute(text("UPDATE parcel SET code = code WHERE false"))
    assert dbs.execute(text("SELECT version FROM register_version")).scalar() == v0 + n
    # the tile server (another connection) still sees the committed version
    eng = create_engine(app.config["SQLALCHEMY_DATABASE_URI"])
    with eng.connect() as c:
        assert c.execute(text("SELECT version FROM register_version")).scalar() == v0
    eng.dispose()


def test_the_app_role_cannot_move_the_version(dbs):
    from sqlalchemy.exc import ProgrammingError

    with pytest.raises(ProgrammingError):
        with dbs.begin_nested():
            dbs.execute(text("UPDATE register_version SET version = 1"))


def test_tiles_answer_503_when_the_database_is_away(app, monkeypatch):
    def down(*a, **k):
        import psycopg

        raise psycopg.OperationalError("connection refused")

    monkeypatch.setattr(tiles, "tile_if_changed", down)
    r = app.test_client().get(_a_parcel_tile(app))
    assert r.status_code == 503 and r.headers["Retry-After"]


def test_a_tile_survives_its_pooled_connections_dropped_by_the_server(app):
    """No pre-ping per tile (tiles.py): a pooled connection the server dropped (a restart, an
    idle timeout) fails its statement, and the tile is asked once more on a fresh one — the
    client sees a 200 with the same bytes, never a 503 or a 500."""
    c = app.test_client()
    url = _a_parcel_tile(app)
    first = c.get(url)
    assert first.status_code == 200 and first.data
    eng = create_engine(app.config["SQLALCHEMY_DATABASE_URI"])
    with eng.connect() as conn:
        gone = conn.execute(text(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 5000)) FROM pg_stat_activity "
            "WHERE application_name = 'sanquan-tiles'")).scalar()
    eng.dispose()
    assert gone >= 1
    again = c.get(url)
    assert again.status_code == 200 and again.data == first.data


def test_a_new_tile_connection_is_warmed_before_it_serves_a_tile(app):
    """The pool runs the tile statement once, prepared, on each new connection before handing
    it out (tiles._warm), with parallel query off: the first tile of a fresh connection does
    not wait for PostGIS and the plan, and no tile starts parallel workers.  Every pooled
    connection is dropped first, so the one handed out below is new and has served no tile."""
    pool = tiles._pool(tiles.libpq_url(app.config["SQLALCHEMY_DATABASE_URI"]))
    eng = create_engine(app.config["SQLALCHEMY_DATABASE_URI"])
    with eng.connect() as conn:
        conn.execute(text(
            "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity "
            "WHERE application_name = 'sanquan-tiles'"))
    eng.dispose()
    pool.check()
    with pool.connection() as c:
        prepared = [s for (s,) in c.execute("SELECT statement FROM pg_prepared_statements")]
        parallel = c.execute("SHOW max_parallel_workers_per_gather").fetchone()[0]
    assert parallel == "0"  # a tile never starts parallel workers (tiles._warm)
    assert any("ST_AsMVT" in s and "register_version" in s for s in prepared), prepared


def test_database_unavailable_is_a_503_problem(app, monkeypatch):
    from sqlalchemy.exc import OperationalError

    from app.market import operations as mops

    def down(*a, **k):
        raise OperationalError("SELECT", {}, Exception("server closed the connection"))

    monkeypatch.setattr(mops, "auction_state", down)
    r = app.test_client().get("/api/market/auctions/1")
    assert r.status_code == 503 and r.mimetype == "application/problem+json"
    assert r.json["code"] == "service.database_unavailable" and r.headers["Retry-After"] == "5"
