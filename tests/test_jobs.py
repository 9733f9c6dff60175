"""Background jobs: in-process threads, and RQ on a private Redis with a real worker process."""
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import create_engine, text

from app.extensions import db
from app.jobs import operations as jobs
from app.jobs.models import Job
from tests.test_import_sample import SAMPLE

ROOT = Path(__file__).resolve().parents[1]


def _wait(app, job_id, timeout=120):
    deadline = time.time() + timeout
    seen = set()
    while time.time() < deadline:
        with app.app_context():
            job = db.session.get(Job, job_id)
            seen.add(job.status)
            if job.status in ("done", "failed"):
                out = (job.status, job.result, job.error, job.percent)
                db.session.remove()
                return out, seen
            db.session.remove()
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish; saw {seen}")


def _cleanup(app, job_id):
    """Remove a committed job and its batch: the owner's rights (the app's role deletes nothing)."""
    engine = create_engine(app.config["MIGRATE_DATABASE_URL"])
    with engine.begin() as c:
        for table in ("import_fault", "import_feature", "import_record"):
            c.execute(text(f"DELETE FROM {table} WHERE batch_id IN "
                           "(SELECT id FROM import_batch WHERE job_id = :j)"), {"j": job_id})
        c.execute(text("DELETE FROM import_batch WHERE job_id = :j"), {"j": job_id})
        c.execute(text("DELETE FROM job WHERE id = :j"), {"j": job_id})
    engine.dispose()


def test_thread_job_reports_progress_and_result(app):
    app.config["JOBS_MODE"] = "thread"
    try:
        with app.test_request_context():
            job = jobs.submit("import", {"path": str(SAMPLE)}, None)
            job_id = job.id
            db.session.remove()
        (status, result, error, percent), seen = _wait(app, job_id)
        assert status == "done", error
        # The faults the job reports are those its batch staged (counted in the staging).
        with app.app_context():
            staged = db.session.scalar(text(
                "SELECT count(*) FROM import_fault WHERE batch_id = :b"),
                {"b": result["batch_id"]})
            db.session.remove()
        assert staged > 0 and result["faults"] == staged and percent == 100
        assert "running" in seen or "queued" in seen
    finally:
        app.config["JOBS_MODE"] = None
        _cleanup(app, job_id)


def test_failed_job_says_why(app):
    app.config["JOBS_MODE"] = "thread"
    try:
        with app.test_request_context():
            job_id = jobs.submit("import", {"path": "/nonexistent/delivery.gpkg"}, None).id
            db.session.remove()
        (status, _, error, _), _ = _wait(app, job_id)
        assert status == "failed" and error
    finally:
        app.config["JOBS_MODE"] = None
        _cleanup(app, job_id)


def test_rq_job_runs_in_a_worker_process(app):
    server = shutil.which("redis-server")
    assert server, "redis-server is installed by the Makefile"
    tmp = tempfile.mkdtemp(prefix="sanquan-redis-")
    sock = os.path.join(tmp, "redis.sock")
    redis = subprocess.Popen([server, "--port", "0", "--unixsocket", sock, "--save", "",
                              "--appendonly", "no", "--dir", tmp],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    job_id = None
    try:
        for _ in range(50):
            if os.path.exists(sock):
                break
            time.sleep(0.1)
        url = f"unix://{sock}"
        app.config.update(REDIS_URL=url, JOBS_MODE=None)
        with app.test_request_context():
            assert jobs.mode() == "rq"
            job_id = jobs.submit("import", {"path": str(SAMPLE)}, None).id
            db.session.remove()
        env = {**os.environ, "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
               "REDIS_URL": url, "FLASK_APP": "wsgi.py"}
        worker = subprocess.run([sys.executable, "-m", "flask", "jobs", "worker", "--burst"],
                                cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        assert worker.returncode == 0, worker.stderr[-2000:]
        (status, result, error, _), _ = _wait(app, job_id, timeout=30)
        assert status == "done", error
        assert result["faults"] == 9
    finally:
        app.config.update(REDIS_URL=None, JOBS_MODE=None)
        redis.terminate()
        redis.wait()
        shutil.rmtree(tmp, ignore_errors=True)
        if job_id:
            _cleanup(app, job_id)
