"""Entry point of an RQ worker process (`flask jobs worker`): builds the app, then runs one job.

It sits at the top of the house (beside `main` and `rest`): it is the only module besides
`app/__init__.py` that needs `create_app`, so `app.jobs` (infrastructure) never imports the app."""
from app import create_app
from app.jobs.operations import run_in_app


def execute_in_worker(job_id: int) -> None:
    run_in_app(create_app(), job_id)
