import click
from flask.cli import AppGroup

from . import operations as ops

audit_cli = AppGroup("audit", help="The audit log.")


@audit_cli.command("verify")
def verify_command():
    """Recompute the hash chain; exit 1 and name every breach if it was tampered with."""
    n, breaches = ops.verify()
    if not breaches:
        click.echo(f"audit log intact: {n} entries, hash chain verified")
        return
    for b in breaches:
        click.echo(f"BREACH seq={b.seq} id={b.id}: {b.problem}", err=True)
    click.echo(f"audit log TAMPERED: {len(breaches)} problem(s) in {n} entries", err=True)
    raise SystemExit(1)
