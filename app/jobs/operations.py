"""Background jobs with progress.  In-process threads by default; RQ (Redis) when REDIS_URL is
set and JOBS_MODE is 'rq'; inline ('sync') for tests that run inside one transaction."""
from __future__ import annotations

import importlib
import threading
import traceback
from concurrent.futures import ThreadPoolExecutor

from flask import current_app
from sqlalchemy import create_engine, select, text

from app.errors import DomainError
from app.extensions import db

from .models import Job

# kind -> "module:function"; the function takes (job, progress) and returns a JSON-able result.
REGISTRY = {
    "import": "app.imports.jobs:run_import",
    "certificates": "app.campaigns.jobs:run_batch",
}
_executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="sanquan-job")
_engines: dict[str, object] = {}
_lock = threading.Lock()


def _progress_engine(url: str):
    with _lock:
        if url not in _engines:
            _engines[url] = create_engine(url, isolation_level="AUTOCOMMIT", pool_size=2)
        return _engines[url]


def mode() -> str:
    m = current_app.config.get("JOBS_MODE")
    if m:
        return m
    return "rq" if current_app.config.get("REDIS_URL") else "thread"


def submit(kind: str, params: dict, actor) -> Job:
    job = Job(kind=kind, params=params, created_by=getattr(actor, "id", None),
              message="queued")
    db.session.add(job)
    db.session.commit()
    m = mode()
    if m == "sync":
        execute(job.id, same_session=True)
    elif m == "rq":
        from redis import Redis
        from rq import Queue

        Queue("sanquan", connection=Redis.from_url(current_app.config["REDIS_URL"])).enqueue(
            "app.worker.execute_in_worker", job.id,
            job_timeout=int(current_app.config.get(f"{kind.upper()}_JOB_TIMEOUT_S", 6 * 3600)))
    else:
        app = current_app._get_current_object()
        _executor.submit(run_in_app, app, job.id)
    return job


def run_in_app(app, job_id: int) -> None:
    with app.app_context():
        execute(job_id)


def execute(job_id: int, same_session: bool = False) -> None:
    job = db.session.get(Job, job_id)
    url = current_app.config["SQLALCHEMY_DATABASE_URI"]

    def progress(done: int, total: int, message: str = "") -> None:
        sql = text("UPDATE job SET done = :d, total = :t, message = :m, status = 'running', "
                   "updated_at = now() WHERE id = :i")
        params = {"d": int(done), "t": int(total), "m": message[:500], "i": job_id}
        if same_session:
            db.session.execute(sql, params)
        else:  # visible at once, while the job's own transaction is still open
            with _progress_engine(url).connect() as c:
                c.execute(sql, params)

    module, func = REGISTRY[job.kind].split(":")
    fn = getattr(importlib.import_module(module), func)
    progress(0, 1, "started")
    try:
        result = fn(job, progress)
        db.session.commit()
        job = db.session.get(Job, job_id)
        db.session.refresh(job)
        job.status, job.result, job.message = "done", result, "done"
        job.done = job.total or 1
        db.session.commit()
    except Exception as e:  # the job fails visibly; the page shows why
        db.session.rollback()
        job = db.session.get(Job, job_id)
        job.status = "failed"
        # A rule's refusal is shown as it is; anything else only by its kind: its text may carry
        # file paths and database internals (issue 12), which stay in the server log.
        job.error = e.full() if isinstance(e, DomainError) else (
            f"{type(e).__name__}: the job failed; the details are in the server log "
            f"(job {job_id}).")
        job.message = "failed"
        current_app.logger.error("job %s failed: %s", job_id, traceback.format_exc())
        db.session.commit()


def latest(kind: str, **params) -> Job | None:
    """The newest job of `kind` whose integer parameters equal `params`."""
    stmt = select(Job).where(Job.kind == kind)
    for k, v in params.items():
        stmt = stmt.where(Job.params[k].as_integer() == v)
    return db.session.scalar(stmt.order_by(Job.id.desc()))
