"""A worker process for the fault tests: runs one job and SIGKILLs itself when the job reports
progress starting with KILL_AT (a real SIGKILL at a known point of the work).

    python -m tests.fault_worker JOB_ID KILL_AT
"""
import os
import signal
import sys

from app import create_app
from app.jobs import operations as jobs


def main() -> None:
    job_id, kill_at = int(sys.argv[1]), sys.argv[2]
    app = create_app()
    with app.app_context():
        from app.jobs.models import Job

        kind = jobs.db.session.get(Job, job_id).kind
        module, func = jobs.REGISTRY[kind].split(":")
        import importlib

        real = getattr(importlib.import_module(module), func)

        def killed_midway(job, progress):
            def p(done, total, message=""):
                progress(done, total, message)
                if message.startswith(kill_at):
                    os.kill(os.getpid(), signal.SIGKILL)
            return real(job, p)

        sys.modules[__name__].killed_midway = killed_midway
        jobs.REGISTRY[kind] = f"{__name__}:killed_midway"
        jobs.execute(job_id)


if __name__ == "__main__":
    main()
