"""`flask opendata export [--out DIR]`: the daily open-data run (see README for the cron line)."""
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup

from . import operations as ops

opendata_cli = AppGroup("opendata", help="Open data: daily public exports.")


@opendata_cli.command("export")
@click.option("--out", "out", type=click.Path(file_okay=False), default=None,
              help="folder to write (default: OPENDATA_DIR or ./opendata)")
def export_cmd(out):
    folder = Path(out or current_app.config.get("OPENDATA_DIR") or "opendata")
    written = ops.export(folder, current_app.config.get("PUBLIC_BASE_URL") or "")
    for name, n in written.items():
        click.echo(f"{folder / name}: {n} rows")
