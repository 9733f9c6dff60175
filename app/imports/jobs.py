from pathlib import Path

from app.auth.models import User
from app.extensions import db

from . import operations as ops


def run_import(job, progress) -> dict:
    p = job.params
    actor = db.session.get(User, job.created_by) if job.created_by else "system"
    batch = ops.run(actor, Path(p["path"]), p.get("srid"), p.get("encoding"), p.get("tolerance"),
                    progress, job_id=job.id)
    return {"batch_id": batch.id, "faults": batch.counts.get("fault_total", 0)}
