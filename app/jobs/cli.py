import threading
import time

import click
from flask import current_app
from flask.cli import AppGroup

from app.errors import DomainError

from . import operations as ops

jobs_cli = AppGroup("jobs", help="Background jobs.")


@jobs_cli.command("worker")
@click.option("--burst", is_flag=True, help="Stop when the queue is empty.")
def worker(burst: bool):
    """Run an RQ worker for the 'sanquan' queue (needs REDIS_URL).  It reaps stale jobs when
    it starts and every JOBS_REAP_EVERY_S seconds (default 60) while it runs."""
    from redis import Redis
    from rq import Queue, Worker

    url = current_app.config.get("REDIS_URL")
    if not url:
        raise click.ClickException("REDIS_URL is not set")
    ops.reap()
    app = current_app._get_current_object()
    every = int(app.config.get("JOBS_REAP_EVERY_S") or 60)

    def reaper():
        while True:
            time.sleep(every)  # a daemon thread beside the worker loop
            with app.app_context():
                try:
                    ops.reap()
                except Exception:
                    ops.log.warning("reaping failed", exc_info=True)

    threading.Thread(target=reaper, name="sanquan-reaper", daemon=True).start()
    conn = Redis.from_url(url)
    Worker([Queue("sanquan", connection=conn)], connection=conn).work(burst=burst)


@jobs_cli.command("reap")
@click.option("--stale", type=int, default=None,
              help="Seconds without a heartbeat (default JOBS_STALE_S, 120).")
def reap_cmd(stale):
    """Fail the jobs whose process is gone (stale heartbeat); they can be re-run."""

    ids = ops.reap(stale)
    click.echo(f"reaped {len(ids)} job(s): {' '.join(map(str, ids))}".rstrip(": "))


@jobs_cli.command("rerun")
@click.argument("job_id", type=int)
def rerun_cmd(job_id):
    """Run a failed job again, as a new job with the same parameters."""

    try:
        job = ops.rerun(job_id, None)
    except DomainError as e:
        raise click.ClickException(e.full()) from None
    click.echo(f"job {job.id} ({job.status}) re-runs job {job_id}")
