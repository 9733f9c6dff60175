"""Background jobs with progress.  In-process threads by default; RQ (Redis) when REDIS_URL is
set and JOBS_MODE is 'rq'; inline ('sync') for tests that run inside one transaction.

Faults (issue 18): every engine pre-pings its pooled connections; a job that fails records
its failure even when the database comes back only later (retried with backoff; the waiting is
`JOBS_WAIT`, injectable); the process that owns a job touches its heartbeat, and the reaper
(`reap`, run by every worker loop, by `submit` and by `flask jobs reap`) fails jobs whose
heartbeat is stale — a process killed with SIGKILL, a connection lost for good.  A failed job's
kind may clean up after it (`ON_FAILURE`) and it can be re-run (`rerun`)."""
from __future__ import annotations

import importlib
import logging
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import create_engine, select, text

from app.errors import DomainError, Rule
from app.extensions import db
from app.metrics import JOB_SECONDS

from .models import Job

log = logging.getLogger("sanquan.jobs")

# kind -> "module:function"; the function takes (job, progress) and returns a JSON-able result.
REGISTRY = {
    "import": "app.imports.jobs:run_import",
    "certificates": "app.campaigns.jobs:run_batch",
    "export": "app.parcels.exports:run_job",
}
# kind -> "module:function(job_id)": cleans up after a failed (or reaped) job of that kind.
ON_FAILURE = {
    "import": "app.imports.jobs:on_failure",
    "export": "app.parcels.exports:on_job_failure",
}
_executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="sanquan-job")
_engines: dict[str, object] = {}
_lock = threading.Lock()

NOT_FAILED = Rule("jobs.not_failed",
                  _l("Only a failed job can be re-run (this one is %(status)s)."),
                  _l("Sanquan operations: a job runs once; a failed one is re-run as a new job"),
                  409)

HEARTBEAT_S = 10  # how often the owner touches its jobs' heartbeat
STALE_S = 120  # a heartbeat older than this (JOBS_STALE_S) means the owner is gone
FAIL_BACKOFF_S = (0.5, 1, 2, 4, 8, 15, 30, 30, 30, 60, 60, 60)  # ≈5 min of retries


def _progress_engine(url: str):
    with _lock:
        if url not in _engines:
            _engines[url] = create_engine(url, isolation_level="AUTOCOMMIT", pool_size=2,
                                          pool_pre_ping=True)
        return _engines[url]


class _Heartbeat:
    """One daemon thread per process touching `heartbeat_at` of the jobs this process owns
    (queued in its executor or running).  SIGKILL stops it with the process: the reaper sees."""

    def __init__(self):
        self.owned: dict[int, str] = {}  # job id -> database URL
        self.cond = threading.Condition()
        self.thread: threading.Thread | None = None

    def own(self, job_id: int, url: str) -> None:
        with self.cond:
            self.owned[job_id] = url
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self._run, name="sanquan-heartbeat",
                                               daemon=True)
                self.thread.start()

    def release(self, job_id: int) -> None:
        with self.cond:
            self.owned.pop(job_id, None)

    def beat(self) -> None:
        with self.cond:
            by_url: dict[str, list[int]] = {}
            for i, u in self.owned.items():
                by_url.setdefault(u, []).append(i)
        for url, ids in by_url.items():
            try:
                with _progress_engine(url).connect() as c:
                    c.execute(text("UPDATE job SET heartbeat_at = clock_timestamp() "
                                   "WHERE id = ANY(:ids) AND status IN ('queued', 'running')"),
                              {"ids": ids})
            except Exception:  # the database is away: the next beat tries again
                log.warning("heartbeat of jobs %s failed", ids, exc_info=True)

    def _run(self) -> None:
        while True:
            with self.cond:
                if not self.owned:
                    self.thread = None
                    return
            self.beat()
            time.sleep(HEARTBEAT_S)  # a daemon thread of production processes; tests call beat()


heartbeat = _Heartbeat()


def mode() -> str:
    m = current_app.config.get("JOBS_MODE")
    if m:
        return m
    return "rq" if current_app.config.get("REDIS_URL") else "thread"


def _wait(seconds: float) -> None:
    """The failure recorder's waiting: JOBS_WAIT (a callable) when set — tests never sleep."""
    fn = current_app.config.get("JOBS_WAIT")
    (fn or time.sleep)(seconds)


def submit(kind: str, params: dict, actor, rerun_of: int | None = None) -> Job:
    try:
        reap()  # a job left behind by a killed process is failed before new work starts
    except Exception:
        log.warning("reaping stale jobs failed", exc_info=True)
    m = mode()
    job = Job(kind=kind, params=params, created_by=getattr(actor, "id", None),
              message="queued", rerun_of=rerun_of)
    db.session.add(job)
    db.session.flush()
    if m == "thread":
        job.heartbeat_at = db.session.scalar(text("SELECT clock_timestamp()"))
    db.session.commit()
    if m == "sync":
        execute(job.id, same_session=True)
    elif m == "rq":
        try:
            from redis import Redis
            from rq import Queue

            Queue("sanquan", connection=Redis.from_url(current_app.config["REDIS_URL"])).enqueue(
                "app.worker.execute_in_worker", job.id,
                job_timeout=int(current_app.config.get(f"{kind.upper()}_JOB_TIMEOUT_S",
                                                       6 * 3600)))
        except Exception as e:  # Redis is gone: run here (JOBS_REDIS_FALLBACK=thread) or fail
            if current_app.config.get("JOBS_REDIS_FALLBACK", "fail") == "thread":
                log.warning("job queue unavailable (%s): job %s runs in this process",
                            type(e).__name__, job.id)
                _start_thread(job.id)
            else:
                log.error("job queue unavailable: job %s not queued: %s", job.id, e)
                _record_failure(job.id, "the job queue (Redis) is unavailable; nothing was "
                                "done — re-run the job when the queue is back", same_session=True)
                db.session.refresh(job)
    else:
        _start_thread(job.id)
    return job


def _start_thread(job_id: int) -> None:
    app = current_app._get_current_object()
    heartbeat.own(job_id, app.config["SQLALCHEMY_DATABASE_URI"])
    _executor.submit(run_in_app, app, job_id)


def run_in_app(app, job_id: int) -> None:
    with app.app_context():
        try:
            execute(job_id)
        except BaseException:  # never dropped silently by the executor
            log.exception("job %s: unhandled failure", job_id)
            raise
        finally:
            heartbeat.release(job_id)
            db.session.remove()


def execute(job_id: int, same_session: bool = False) -> None:
    url = current_app.config["SQLALCHEMY_DATABASE_URI"]
    if not same_session:
        heartbeat.own(job_id, url)

    def progress(done: int, total: int, message: str = "") -> None:
        # a reaped (failed) job stays failed: only a live job moves
        sql = text("UPDATE job SET done = :d, total = :t, message = :m, status = 'running', "
                   "updated_at = now(), heartbeat_at = clock_timestamp() "
                   "WHERE id = :i AND status IN ('queued', 'running')")
        params = {"d": int(done), "t": int(total), "m": message[:500], "i": job_id}
        if same_session:
            db.session.execute(sql, params)
        else:  # visible at once, while the job's own transaction is still open
            with _progress_engine(url).connect() as c:
                c.execute(sql, params)

    started = time.monotonic()
    kind = "?"
    try:
        job = db.session.get(Job, job_id)
        if job is None or job.status not in ("queued", "running"):
            log.warning("job %s is %s: not run", job_id, job and job.status)
            return
        kind = job.kind
        module, func = REGISTRY[job.kind].split(":")
        fn = getattr(importlib.import_module(module), func)
        progress(0, 1, "started")
        result = fn(job, progress)
        db.session.commit()
        job = db.session.get(Job, job_id)
        db.session.refresh(job)
        if job.status == "failed":  # reaped while it ran (its heartbeat was lost): stays failed
            log.error("job %s finished after it was reaped; it stays failed", job_id)
            _observe(kind, "failed", started)
            return
        job.status, job.result, job.message = "done", result, "done"
        job.done = job.total or 1
        db.session.commit()
        log.info("job %s done", job_id, extra={"job": job_id, "kind": kind})
        _observe(kind, "done", started)
    except Exception as e:  # the job fails visibly; the page shows why
        # A rule's refusal is shown as it is; anything else only by its kind: its text may carry
        # file paths and database internals (issue 12), which stay in the server log.
        error = e.full() if isinstance(e, DomainError) else (
            f"{type(e).__name__}: the job failed; the details are in the server log "
            f"(job {job_id}).")
        log.error("job %s failed: %s", job_id, traceback.format_exc(),
                  extra={"job": job_id, "kind": kind})
        _record_failure(job_id, error, same_session=same_session)
        _observe(kind, "failed", started)
    finally:
        if not same_session:
            heartbeat.release(job_id)


def _observe(kind: str, outcome: str, started: float) -> None:
    try:
        JOB_SECONDS.labels(kind, outcome).observe(time.monotonic() - started)
    except Exception:  # metrics never fail a job
        pass


FAIL_SQL = text("""UPDATE job SET status = 'failed', error = :e, message = 'failed',
                   updated_at = now() WHERE id = :i AND status IN ('queued', 'running')
                   RETURNING kind""")


def _record_failure(job_id: int, error: str, same_session: bool = False) -> bool:
    """Mark the job failed and let its kind clean up.  The database may be down right now (the
    very fault that failed the job): try again with backoff; if it stays away, the job's
    heartbeat is no longer touched and the reaper fails it once the database is back."""
    try:
        db.session.rollback()
    except Exception:
        pass
    for i, delay in enumerate((0,) + FAIL_BACKOFF_S):
        if delay:
            _wait(delay)
        try:
            if same_session:
                kind = db.session.execute(FAIL_SQL, {"e": error, "i": job_id}).scalar()
                db.session.commit()
            else:
                db.session.remove()
                with _progress_engine(current_app.config["SQLALCHEMY_DATABASE_URI"]).connect() \
                        as c:
                    kind = c.execute(FAIL_SQL, {"e": error, "i": job_id}).scalar()
            if kind:
                _cleanup(kind, job_id)
            log.info("job %s recorded as failed (attempt %s)", job_id, i + 1)
            return True
        except Exception as e:
            try:
                db.session.rollback()
            except Exception:
                pass
            log.warning("job %s: recording the failure failed (attempt %s): %s",
                        job_id, i + 1, type(e).__name__)
    log.critical("job %s: failure not recorded; the reaper will fail it when the database is "
                 "back", job_id)
    return False


def _cleanup(kind: str, job_id: int) -> None:
    target = ON_FAILURE.get(kind)
    if not target:
        return
    module, func = target.split(":")
    try:
        getattr(importlib.import_module(module), func)(job_id)
        db.session.commit()
    except Exception:
        db.session.rollback()
        log.exception("cleanup after job %s failed", job_id)


def stale_seconds() -> int:
    return int(current_app.config.get("JOBS_STALE_S") or STALE_S)


def reap(stale_s: int | None = None) -> list[int]:
    """Fail every queued or running job whose heartbeat is older than `stale_s` seconds (by the
    database's clock): its process is gone.  Returns their ids; each can be re-run."""
    stale = int(stale_s if stale_s is not None else stale_seconds())
    ids = [r[0] for r in db.session.execute(text("""
        UPDATE job SET status = 'failed', message = 'failed', updated_at = now(),
               error = 'the process running this job stopped (no heartbeat for '
                       || :s || ' s); nothing more was done — re-run the job'
        WHERE status IN ('queued', 'running') AND heartbeat_at IS NOT NULL
          AND heartbeat_at < clock_timestamp() - make_interval(secs => :s)
        RETURNING id, kind"""), {"s": stale}).all()]
    db.session.commit()
    for job_id in ids:
        kind = db.session.get(Job, job_id).kind
        log.error("job %s reaped: no heartbeat for %s s", job_id, stale)
        _cleanup(kind, job_id)
    return ids


def rerun(job_id: int, actor) -> Job:
    """A failed job again, as a new job with the same kind and parameters."""
    job = db.session.get(Job, job_id)
    if job is None or job.status != "failed":
        raise DomainError(NOT_FAILED, status=getattr(job, "status", None))
    return submit(job.kind, dict(job.params), actor, rerun_of=job.id)


def queue_depth() -> dict[str, int]:
    return {s: n for s, n in db.session.execute(text(
        "SELECT status, count(*) FROM job WHERE status IN ('queued', 'running') GROUP BY 1"))}


def latest(kind: str, **params) -> Job | None:
    """The newest job of `kind` whose integer parameters equal `params`."""
    stmt = select(Job).where(Job.kind == kind)
    for k, v in params.items():
        stmt = stmt.where(Job.params[k].as_integer() == v)
    return db.session.scalar(stmt.order_by(Job.id.desc()))
