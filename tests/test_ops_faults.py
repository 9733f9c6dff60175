"""Faults during background work (issue 18 part 4), each one real:

- PostgreSQL refuses every connection and drops the job's own (ALLOW_CONNECTIONS false and
  pg_terminate_backend, as a superuser) in the middle of an import's checks: the job fails
  clearly, its failure is recorded once the database is back (the waiting between attempts is
  injected: no test sleeps), the staging is discarded, the report never says "no faults",
  nothing is registered, the pools recover and the re-run completes.
- A worker process SIGKILLed mid-import: the reaper fails the job, discards its staging, and
  the re-run completes.
- Redis gone when a job is submitted: the job fails clearly (or runs here, when configured).
"""
import os
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from app.extensions import db
from app.jobs import operations as jobs
from app.jobs.models import Job
from tests.conftest import admin_url, login
from tests.test_import_sample import SAMPLE
from tests.test_jobs import _cleanup, _wait

ROOT = Path(__file__).resolve().parents[1]


class Outage:
    """The test database down for the app role: new connections refused, live ones dropped."""

    def __init__(self, app):
        url = make_url(app.config["SQLALCHEMY_DATABASE_URI"])
        self.db, self.role = url.database, url.username
        self.admin = create_engine(make_url(admin_url(str(url.render_as_string(
            hide_password=False)))).set(database="postgres"), isolation_level="AUTOCOMMIT")
        self.active = False

    def down(self):
        with self.admin.connect() as c:
            c.execute(text(f'ALTER DATABASE "{self.db}" ALLOW_CONNECTIONS false'))
            c.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                           "WHERE datname = :d AND usename = :u"), {"d": self.db, "u": self.role})
        self.active = True

    def up(self):
        with self.admin.connect() as c:
            c.execute(text(f'ALTER DATABASE "{self.db}" ALLOW_CONNECTIONS true'))
        self.active = False

    def close(self):
        if self.active:
            self.up()
        self.admin.dispose()


class Restart:
    """PostgreSQL itself stopped (`scripts/pg.sh stop`, fast shutdown) and started again."""

    def __init__(self, app):
        self.active = False

    def down(self):
        _pg_sh("stop")
        self.active = True

    def up(self):
        _pg_sh("start")
        self.active = False

    def close(self):
        if self.active:
            self.up()


def _pg_sh(*args):
    r = subprocess.run(["scripts/pg.sh", *args], cwd=ROOT, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]


@contextmanager
def outage(app, kind=None):
    o = (kind or Outage)(app)
    try:
        yield o
    finally:
        o.close()


def _committed(app, sql, **params):
    eng = create_engine(app.config["SQLALCHEMY_DATABASE_URI"])
    with eng.connect() as c:
        out = c.execute(text(sql), params).all()
    eng.dispose()
    return out


def _new_job(app, kind="import", params=None) -> int:
    with app.app_context():
        job = Job(kind=kind, params=params or {"path": str(SAMPLE)}, message="queued")
        db.session.add(job)
        db.session.commit()
        job_id = job.id
        db.session.remove()
    return job_id


def _batch_of(app, job_id):
    rows = _committed(app, "SELECT id, status FROM import_batch WHERE job_id = :j", j=job_id)
    assert len(rows) == 1, rows
    return rows[0]


def _staged(app, batch_id) -> int:
    return sum(_committed(app, f"SELECT count(*) FROM {t} WHERE batch_id = :b", b=batch_id)[0][0]
               for t in ("import_feature", "import_record", "import_fault"))


def _assert_report_says_unchecked(app, batch_id):
    c = app.test_client()
    assert login(c, "admin").status_code == 302
    html = c.get(f"/imports/{batch_id}").get_data(as_text=True)
    assert 'data-state="failed"' in html and 'id="batch-status">failed<' in html


def _rerun_completes(app, job_id):
    app.config["JOBS_MODE"] = "thread"
    try:
        with app.test_request_context():
            again = jobs.rerun(job_id, None)
            again_id = again.id
            assert again.rerun_of == job_id
            db.session.remove()
        (status, result, error, percent), _ = _wait(app, again_id)
    finally:
        app.config["JOBS_MODE"] = None
    assert status == "done", error
    batch_id, batch_status = _batch_of(app, again_id)
    assert batch_status == "validated"
    open_faults = _committed(app, "SELECT count(*) FROM import_fault WHERE batch_id = :b",
                             b=batch_id)[0][0]
    assert result == {"batch_id": batch_id, "faults": open_faults} and percent == 100
    return again_id


def outage_at_checks(job, progress):
    """The real import, with PostgreSQL going away at its first check (set by the test)."""
    from app.imports.jobs import run_import

    def p(done, total, message=""):
        progress(done, total, message)
        if message.startswith("checking:") and not OUTAGE["fired"]:
            OUTAGE["fired"] = message
            OUTAGE["o"].down()
    return run_import(job, p)


OUTAGE = {"o": None, "fired": None}


def probe(job, progress):
    """A small job: progress through the progress pool, a query through the app's pool."""
    progress(1, 2, "probing")
    n = db.session.execute(text("SELECT count(*) FROM job")).scalar()
    progress(2, 2, "probed")
    return {"jobs": n}


def _next_job_runs(app, monkeypatch):
    """Every pool recovered: a job submitted now runs to the end in a thread."""
    monkeypatch.setitem(jobs.REGISTRY, "probe", f"{__name__}:probe")
    app.config["JOBS_MODE"] = "thread"
    try:
        with app.test_request_context():
            job_id = jobs.submit("probe", {}, None).id
            db.session.remove()
        (status, result, error, percent), _ = _wait(app, job_id, timeout=60)
    finally:
        app.config["JOBS_MODE"] = None
    try:
        assert status == "done" and percent == 100, error
        assert result["jobs"] >= 1
    finally:
        _cleanup(app, job_id)


@pytest.mark.deep
def test_postgres_restarted_mid_import_then_rerun_deep(app, monkeypatch, caplog):
    """The real thing: the cluster stopped (fast shutdown) in the import's checks and started
    again while the failure is being recorded; the re-run import completes."""
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    if "/var/tmp/sanquan-" not in url:
        pytest.fail("this test needs the checkout's private cluster (scripts/pg.sh)")
    assert_outage_mid_import_recorded(app, monkeypatch, caplog, Restart, rerun=True)


def test_postgres_away_mid_import_failure_recorded_when_back(app, monkeypatch, caplog):
    assert_outage_mid_import_recorded(app, monkeypatch, caplog, Outage, rerun=False)


def assert_outage_mid_import_recorded(app, monkeypatch, caplog, kind, rerun):
    import logging

    caplog.set_level(logging.INFO, logger="sanquan.jobs")
    parcels_before = _committed(app, "SELECT count(*), max(id) FROM parcel")[0]
    job_id = _new_job(app)
    again_id = None
    waits = []
    with outage(app, kind) as o:
        OUTAGE.update(o=o, fired=None)

        def wait(seconds):  # the database comes back during the second wait
            waits.append(seconds)
            if len(waits) == 2:
                o.up()

        monkeypatch.setitem(jobs.REGISTRY, "import", f"{__name__}:outage_at_checks")
        monkeypatch.setitem(app.config, "JOBS_WAIT", wait)
        try:
            with app.app_context():
                jobs.execute(job_id)
                db.session.remove()
        finally:
            monkeypatch.setitem(jobs.REGISTRY, "import", "app.imports.jobs:run_import")
    try:
        assert OUTAGE["fired"], "the import never reached its checks"
        assert waits == list(jobs.FAIL_BACKOFF_S[:2])  # refused twice, recorded on the third
        status, error, message = _committed(
            app, "SELECT status, error, message FROM job WHERE id = :j", j=job_id)[0]
        assert status == "failed" and message == "failed"
        from app.errors import DomainError
        from app.imports.operations import JOB_FAILED

        with app.app_context():
            assert error == DomainError(JOB_FAILED, ref=job_id).full()
        assert any("recorded as failed" in r.getMessage() for r in caplog.records)
        batch_id, batch_status = _batch_of(app, job_id)
        assert batch_status == "failed" and _staged(app, batch_id) == 0
        assert _committed(app, "SELECT count(*), max(id) FROM parcel")[0] == parcels_before
        _assert_report_says_unchecked(app, batch_id)
        _next_job_runs(app, monkeypatch)
        if rerun:  # the deep variant re-runs the real import (a minute on this machine)
            again_id = _rerun_completes(app, job_id)
            assert _committed(app, "SELECT count(*), max(id) FROM parcel")[0] == parcels_before
    finally:
        _cleanup(app, job_id)
        if again_id:
            _cleanup(app, again_id)


def test_failure_never_recorded_while_down_is_reaped_later(app, monkeypatch):
    """The database stays away through every retry: the job is left with its last heartbeat,
    and the reaper fails it (and discards its staging) once the database is back."""
    job_id = _new_job(app)
    with outage(app) as o:
        OUTAGE.update(o=o, fired=None)
        waits = []
        monkeypatch.setitem(jobs.REGISTRY, "import", f"{__name__}:outage_at_checks")
        monkeypatch.setitem(app.config, "JOBS_WAIT", waits.append)
        try:
            with app.app_context():
                jobs.execute(job_id)
                db.session.remove()
        finally:
            monkeypatch.setitem(jobs.REGISTRY, "import", "app.imports.jobs:run_import")
        assert waits == list(jobs.FAIL_BACKOFF_S)
    try:
        assert _committed(app, "SELECT status FROM job WHERE id = :j", j=job_id)[0][0] == \
            "running"
        with app.app_context():
            assert job_id not in jobs.reap()  # its heartbeat is recent: not yet
            assert job_id in jobs.reap(0)  # as if JOBS_STALE_S had passed
            db.session.remove()
        status, error = _committed(app, "SELECT status, error FROM job WHERE id = :j",
                                   j=job_id)[0]
        assert status == "failed" and "no heartbeat" in error
        batch_id, batch_status = _batch_of(app, job_id)
        assert batch_status == "failed" and _staged(app, batch_id) == 0
    finally:
        _cleanup(app, job_id)


@pytest.mark.deep
def test_worker_sigkilled_mid_import_is_reaped_and_rerun(app):
    job_id = _new_job(app)
    again_id = None
    env = {**os.environ, "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
           "SANQUAN_ENV": "development", "FLASK_APP": "wsgi.py"}
    try:
        proc = subprocess.run([sys.executable, "-m", "tests.fault_worker", str(job_id),
                               "checking:"], cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=300)
        assert proc.returncode == -9, proc.stderr[-2000:]
        status, message = _committed(app, "SELECT status, message FROM job WHERE id = :j",
                                     j=job_id)[0]
        assert status == "running" and message.startswith("checking:")
        batch_id, batch_status = _batch_of(app, job_id)
        assert batch_status == "staging" and _staged(app, batch_id) > 0
        with app.app_context():
            assert job_id not in jobs.reap()
            assert job_id in jobs.reap(0)
            db.session.remove()
        assert _committed(app, "SELECT status FROM job WHERE id = :j", j=job_id)[0][0] == \
            "failed"
        assert _batch_of(app, job_id)[1] == "failed" and _staged(app, batch_id) == 0
        again_id = _rerun_completes(app, job_id)
    finally:
        _cleanup(app, job_id)
        if again_id:
            _cleanup(app, again_id)


def test_only_a_failed_job_is_rerun(app):
    from app.errors import DomainError

    job_id = _new_job(app)
    try:
        with app.test_request_context():
            with pytest.raises(DomainError) as e:
                jobs.rerun(job_id, None)
            assert e.value.rule is jobs.NOT_FAILED
            db.session.remove()
    finally:
        _cleanup(app, job_id)


def test_redis_gone_job_fails_clearly_or_runs_here(app, monkeypatch):
    monkeypatch.setitem(jobs.REGISTRY, "probe", f"{__name__}:probe")
    monkeypatch.setitem(app.config, "REDIS_URL", "unix:///nonexistent/redis.sock")
    monkeypatch.setitem(app.config, "JOBS_MODE", None)
    ids = []
    try:
        with app.test_request_context():
            assert jobs.mode() == "rq"
            job = jobs.submit("probe", {}, None)
            ids.append(job.id)
            assert job.status == "failed" and "Redis" in job.error
            db.session.remove()
        monkeypatch.setitem(app.config, "JOBS_REDIS_FALLBACK", "thread")
        with app.test_request_context():
            ids.append(jobs.submit("probe", {}, None).id)
            db.session.remove()
        (status, result, error, _), _ = _wait(app, ids[-1])
        assert status == "done", error
    finally:
        for i in ids:
            _cleanup(app, i)


def test_auction_through_a_database_outage_no_bid_lost_or_doubled(app):
    """Bidders see the outage as a 503 problem (never a 500), retry with the same client_key,
    and every bid is in the chain exactly once."""
    from app.market import operations as mops
    from app.market.models import Auction
    from tests.conftest import user
    from tests.market_trading_fixtures import asset_competition

    with app.app_context():
        x, bidders = asset_competition(db.session, 2, tag="故障")
        db.session.commit()
        a = mops.open_auction(user("exchange"), x, step_fen=10_000, free_minutes=60,
                              timed_minutes=60, extension_minutes=1)
        db.session.commit()
        auction_id, reserve, step = a.id, a.reserve_fen, a.step_fen
        db.session.remove()
    keys = [k for _, k in bidders]
    c = app.test_client()

    def bid(i, amount, ck):
        return c.post(f"/api/market/auctions/{auction_id}/bids",
                      json={"amount_fen": amount, "client_key": ck},
                      headers={"Authorization": f"Applicant {keys[i]}"})

    first = bid(0, reserve, "fault-key-0001")
    assert first.status_code == 201, first.json
    with outage(app) as o:
        o.down()
        # bidder 1 bids during the outage; bidder 0's answer was "lost" and it retries
        during = [bid(1, reserve + step, "fault-key-0002"), bid(0, reserve, "fault-key-0001")]
        for r in during:
            assert r.status_code == 503 and r.mimetype == "application/problem+json", r.data
            assert r.json["code"] == "service.database_unavailable"
            assert int(r.headers["Retry-After"]) > 0
        o.up()
    again0 = bid(0, reserve, "fault-key-0001")
    assert again0.status_code == 200 and again0.json["seq"] == first.json["seq"]
    made1 = bid(1, reserve + step, "fault-key-0002")
    assert made1.status_code == 201 and made1.json["seq"] == first.json["seq"] + 1
    again1 = bid(1, reserve + step, "fault-key-0002")
    assert again1.status_code == 200 and again1.json["seq"] == made1.json["seq"]
    with app.app_context():
        auction = db.session.get(Auction, auction_id)
        rows = [(b.seq, b.client_key, b.amount_fen) for b in mops.bids(auction)]
        assert rows == [(1, "fault-key-0001", reserve), (2, "fault-key-0002", reserve + step)]
        assert mops.verify_chain(auction) == []
        assert auction.current_price_fen == reserve + step and auction.bid_count == 2
        db.session.remove()


def test_redis_gone_rate_limits_and_signin_locks_fall_back_to_memory(dbs, monkeypatch):
    """Rate limits and the sign-in lockout live in Redis when REDIS_URL is set; with Redis gone
    both go on in this process's memory (RATELIMIT_IN_MEMORY_FALLBACK_ENABLED), never a 500."""
    from flask import Flask
    from flask_limiter import Limiter
    from flask_limiter.util import get_remote_address

    import app.extensions as ext
    from app.auth import operations as auth_ops
    from app.config import Config

    assert Config.RATELIMIT_IN_MEMORY_FALLBACK_ENABLED is True
    web = Flask("redis-gone")
    web.config.update(RATELIMIT_STORAGE_URI="redis+unix:///nonexistent/redis.sock",
                      RATELIMIT_IN_MEMORY_FALLBACK_ENABLED=True)
    limiter = Limiter(key_func=get_remote_address, app=web)

    @web.get("/limited")
    @limiter.limit("3 per minute")
    def limited():
        return "ok"

    c = web.test_client()
    statuses = [c.get("/limited").status_code for _ in range(5)]
    assert statuses == [200, 200, 200, 429, 429]  # limited in memory, not a 500
    monkeypatch.setattr(ext, "limiter", limiter)
    assert auth_ops._storage() is limiter._fallback_storage  # Redis does not answer
    lock_after = 2  # the app's context (dbs): the lockout is audited
    locks = [auth_ops.note_failure("somebody", "198.51.100.7", lock_after, 30, 900)
             for _ in range(lock_after)]
    assert locks[-1] == 30 and locks[0] == 0
    assert 0 < auth_ops.lock_remaining("somebody", "198.51.100.7") <= 30


def _registered_campaign(app) -> int:
    """A registered confirmation campaign of the sample's first group (committed): the sample
    imported and accepted unless an earlier test registered it already."""
    import datetime as dt

    from app.campaigns import operations as camp
    from app.imports import operations as imports

    group = "14040410120101"
    with app.app_context():
        have = db.session.execute(text(
            "SELECT b.id FROM import_batch b WHERE b.status IN ('accepted', 'partly_accepted') "
            "AND EXISTS (SELECT 1 FROM parcel p WHERE p.code LIKE :g AND p.end_lifespan IS NULL"
            " AND p.import_batch_id = b.id) ORDER BY b.id LIMIT 1"), {"g": group + "%"}).scalar()
        if have is None:
            batch = imports.run("bureau", SAMPLE)
            imports.accept("bureau", batch, valid_part=True)
            db.session.commit()
            have = batch.id
        c = camp.open_campaign("bureau", group, have, "故障测试 确权")
        camp.publish_notice("bureau", c, start=dt.date.today() - dt.timedelta(days=8))
        camp.register("bureau", c)
        db.session.commit()
        cid = c.id
        db.session.remove()
    return cid


@pytest.mark.deep
def test_worker_sigkilled_mid_certificate_batch_is_reaped_and_rerun(app):
    campaign_id = _registered_campaign(app)
    job_id = _new_job(app, "certificates", {"campaign": campaign_id, "actor": "bureau",
                                            "base_url": "http://localhost"})
    again_id = None
    env = {**os.environ, "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
           "SANQUAN_ENV": "development", "FLASK_APP": "wsgi.py"}
    count = "SELECT count(*) FROM certificate WHERE campaign_id = :c"
    try:
        proc = subprocess.run([sys.executable, "-m", "tests.fault_worker", str(job_id),
                               "issued"], cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=600)
        assert proc.returncode == -9, proc.stderr[-2000:]
        assert _committed(app, count, c=campaign_id)[0][0] == 0  # one transaction: none half
        with app.app_context():
            assert job_id not in jobs.reap()
            assert job_id in jobs.reap(0)
            db.session.remove()
        assert _committed(app, "SELECT status FROM job WHERE id = :j", j=job_id)[0][0] == \
            "failed"
        app.config["JOBS_MODE"] = "thread"
        try:
            with app.test_request_context():
                again_id = jobs.rerun(job_id, None).id
                db.session.remove()
            (status, result, error, _), _ = _wait(app, again_id, timeout=900)
        finally:
            app.config["JOBS_MODE"] = None
        assert status == "done", error
        issued = _committed(app, count, c=campaign_id)[0][0]
        assert issued > 0 and result["issued"] == issued == result["rendered"]
    finally:
        for i in (job_id, again_id):
            if i:
                _committed_owner(app, "DELETE FROM job WHERE id = :j", j=i)


def _committed_owner(app, sql, **params):
    eng = create_engine(app.config["MIGRATE_DATABASE_URL"])
    with eng.begin() as c:
        c.execute(text(sql), params)
    eng.dispose()


def test_sign_in_and_its_lockout_work_with_rate_limits_switched_off(dbs):
    """RATELIMIT_ENABLED=False leaves Flask-Limiter without storage; the sign-in lockout keeps
    its own memory instead of failing every sign-in with a 500."""
    from flask import Flask
    from flask_limiter import Limiter
    from flask_limiter.util import get_remote_address

    import app.extensions as ext
    from app.auth import operations as auth_ops

    web = Flask("limits-off")
    web.config.update(RATELIMIT_ENABLED=False)
    off = Limiter(key_func=get_remote_address, app=web)
    old = ext.limiter
    ext.limiter = off
    try:
        store = auth_ops._storage()
        assert store is auth_ops._LOCAL_LOCKS
        assert auth_ops.lock_remaining("nobody-here", "10.9.9.9") == 0
    finally:
        ext.limiter = old
