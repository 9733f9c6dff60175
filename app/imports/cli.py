from pathlib import Path

import click
from flask.cli import AppGroup

from app.errors import DomainError
from app.extensions import db

from . import operations as ops
from .models import ImportBatch

import_cli = AppGroup("parcels", help="The parcel register: survey imports.")


@import_cli.command("import")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--srid", type=int, help="Declare the CRS (EPSG code) when the files do not say.")
@click.option("--encoding", help="Declare the .dbf encoding when there is no .cpg (e.g. GBK).")
@click.option("--tolerance", type=float, help="Overlap tolerance in m² (default: registry setting).")
@click.option("--accept", "accept_mode", type=click.Choice(["no", "all", "valid-part"]),
              default="no", show_default=True,
              help="After validation: register nothing, everything (only if faultless), or the "
                   "valid part (faulty features wait in quarantine).")
@click.option("--report", type=click.Path(path_type=Path), help="Write the fault report (CSV).")
@click.option("--user", "username", default="system", help="Recorded as the actor.")
def import_command(path, srid, encoding, tolerance, accept_mode, report, username):
    """Import a survey delivery (NY/T 2539 folder, Shapefile, GeoPackage or GeoJSON)."""
    with click.progressbar(length=100, label="importing", show_percent=True) as bar:
        state = {"pct": 0}

        def progress(i, n, what=""):
            pct = int(100 * i / n) if n else 0
            bar.label = what[:40]
            if pct > state["pct"]:
                bar.update(pct - state["pct"])
                state["pct"] = pct

        try:
            batch = ops.run(username, path, srid, encoding, tolerance, progress)
        except DomainError as e:
            raise click.ClickException(e.full()) from None
    click.echo(f"batch {batch.id}: {batch.counts['features']} features, "
               f"{batch.counts['fault_total']} fault(s)")
    for rule, n in sorted(batch.counts["faults"].items()):
        click.echo(f"  {rule}: {n}")
    if report:
        report.write_text(ops.report_csv(batch.id), encoding="utf-8")
        click.echo(f"report written to {report}")
    if accept_mode != "no":
        try:
            result = ops.accept(username, batch, valid_part=accept_mode == "valid-part")
        except DomainError as e:
            raise click.ClickException(e.full()) from None
        db.session.commit()
        click.echo(f"registered: {result}")


@import_cli.command("report")
@click.argument("batch_id", type=int)
def report_command(batch_id):
    """Print a batch's fault report as CSV."""
    if db.session.get(ImportBatch, batch_id) is None:
        raise click.ClickException(f"no batch {batch_id}")
    click.echo(ops.report_csv(batch_id), nl=False)


@import_cli.command("housekeeping")
@click.option("--keep-days", type=int, help="Keep uploads this many days "
                                            "(default: IMPORT_UPLOAD_KEEP_DAYS).")
def housekeeping_command(keep_days):
    """Remove old uploads and drop the staging indexes of finished import batches."""
    out = ops.housekeeping("system", keep_days)
    db.session.commit()
    click.echo(f"uploads removed: {len(out['uploads_removed'])} of batches, "
               f"{out['orphans_removed']} refused; staging indexes dropped: "
               f"{len(out['indexes_dropped'])}")
