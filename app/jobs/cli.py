import click
from flask import current_app
from flask.cli import AppGroup

jobs_cli = AppGroup("jobs", help="Background jobs.")


@jobs_cli.command("worker")
@click.option("--burst", is_flag=True, help="Stop when the queue is empty.")
def worker(burst: bool):
    """Run an RQ worker for the 'sanquan' queue (needs REDIS_URL)."""
    from redis import Redis
    from rq import Queue, Worker

    url = current_app.config.get("REDIS_URL")
    if not url:
        raise click.ClickException("REDIS_URL is not set")
    conn = Redis.from_url(url)
    Worker([Queue("sanquan", connection=conn)], connection=conn).work(burst=burst)
