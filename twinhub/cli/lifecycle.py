"""A dataset's lifecycle: `twinhub retire DATASET --reason TEXT` (a steward's command)."""

from __future__ import annotations

import click

from twinhub.cli.options import open_hub, reload_ui


@click.command("retire")
@click.argument("dataset")
@click.option("--reason", required=True, help="Why it is retired: kept in its registry entry and audited.")
@click.pass_context
def retire_command(ctx: click.Context, dataset: str, reason: str) -> None:
    """Retire DATASET: it no longer runs and leaves the city layers and open exports; its versions stay.

    Registering its manifest again brings it back (through review as any registration).
    """
    from twinhub.hub.retire import retire

    hub = open_hub(ctx)
    done = retire(hub, dataset, reason)
    click.echo(f"retired {done.entry.id}: it no longer runs; its versions and quarantine stay readable")
    for table in done.rebuilt:
        click.echo(f"rebuilt {table} without it")
    for table in done.dropped:
        click.echo(f"dropped {table}: {done.entry.id} was its only published dataset")
    reload_ui(hub)


def register(main: click.Group) -> None:
    main.add_command(retire_command)
