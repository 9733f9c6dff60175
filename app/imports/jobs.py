import os
from pathlib import Path

from flask import current_app

from app.auth.models import User
from app.errors import DomainError
from app.extensions import db
from app.jobs import operations as jobs

from . import operations as ops
from . import uploads


def _bound_memory() -> None:
    """In an RQ work horse (a process forked for this job alone) the import's address space
    is bounded (setting IMPORT_JOB_MAX_MEMORY_MB); a thread in the web process is not."""
    limit = int(current_app.config.get("IMPORT_JOB_MAX_MEMORY_MB", 0) or 0)
    if limit and jobs.mode() == "rq" and os.environ.get("SANQUAN_JOB_FORKED") != "0":
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (limit * 1024 ** 2, limit * 1024 ** 2))


def run_import(job, progress) -> dict:
    p, job_id = job.params, job.id  # read now: after a lost connection `job` cannot load
    actor = db.session.get(User, job.created_by) if job.created_by else "system"
    _bound_memory()
    upload = Path(p["path"])
    progress(0, 1, "checking the upload")
    try:
        source = uploads.prepare(upload)  # zip checks, then extraction — here, not in the request
        batch = ops.run(actor, source, p.get("srid"), p.get("encoding"), p.get("tolerance"),
                        progress, job_id=job_id, source_name=upload.name,
                        upload_path=str(upload.parent))
    except DomainError:
        raise
    except Exception as e:  # the page shows a reference, never raw text, paths or SQL
        current_app.logger.exception("import job %s failed", job_id)
        raise DomainError(ops.JOB_FAILED, ref=job_id) from e
    finally:
        uploads.discard_extracted(upload)
    return {"batch_id": batch.id, "faults": batch.counts.get("fault_total", 0)}


def on_failure(job_id: int) -> None:
    """app.jobs' hook after an import job failed or was reaped: discard its staging."""
    ops.discard_failed(job_id)
