import time

import click
from flask.cli import AppGroup

from app.divisions.operations import ensure_reference_divisions
from app.extensions import db
from app.settlement.operations import ensure_towns

from . import operations as ops

demo_cli = AppGroup("demo", help="Demo data that the project makes itself.")


@demo_cli.command("load")
@click.option("--parcels", default=4000, show_default=True,
              help="About how many parcels to generate (a village ≈ 1000; 1000000 for benchmarks).")
@click.option("--seed", default=2024, show_default=True)
@click.option("--if-empty", is_flag=True, help="Do nothing when the register already has data.")
def load(parcels: int, seed: int, if_empty: bool):
    """Generate a realistic county (上党区): villages, groups, households, parcels — and its
    story: confirmation, settlement, withdrawal and market in every state."""
    try:
        ops.refuse_in_production()
    except ops.DemoInProduction as e:
        raise click.ClickException(str(e)) from None
    t0 = time.monotonic()
    if if_empty and not ops.is_empty():
        added = ensure_reference_divisions() + ensure_towns()  # reference lists grow
        db.session.commit()
        click.echo(f"demo data already present ({added} reference row(s) added)")
        made = ops.complete_county(parcels, seed)  # an interrupted load: finish the county
        if made:
            click.echo("completed the demo county: "
                       + ", ".join(f"{k}: {v}" for k, v in made.items()))
    else:
        p = ops.plan(parcels)
        with click.progressbar(length=p.villages, label=f"generating {p.villages} village(s)",
                               show_pos=True, show_eta=True) as bar:
            done = [0]

            def progress(i, n):
                bar.update(i - done[0])
                done[0] = i

            totals = ops.generate(parcels, seed, progress)
        click.echo(", ".join(f"{k}: {v}" for k, v in totals.items()))
    made = ops.create_demo_users()
    if made:
        click.echo("demo accounts created: " + ", ".join(made))
    ops.populate(click.echo)  # campaigns, settlement, withdrawal, market (each once)
    click.echo(f"demo loaded in {time.monotonic() - t0:.1f} s")
