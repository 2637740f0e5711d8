"""``twinhub serve`` (the map and OGC API), ``twinhub tokens`` (who reads it) and ``twinhub catalog purge``.

    twinhub serve [--host 127.0.0.1] [--port 8000] [--workers N] [--dagster-url URL]
    twinhub tokens issue CONSUMER --until 2027-06-30 [--note TEXT]
    twinhub tokens list [--consumer C]
    twinhub tokens revoke ID --reason TEXT
    twinhub catalog purge DATASET --version N --reason TEXT
"""

from __future__ import annotations

import click

from twinhub.cli import output
from twinhub.cli.options import format_option, is_loopback, open_hub


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Worker processes (each opens the catalog read-only).")
@click.option("--dagster-url", help="Where the map links each feature's Dagster asset (e.g. the UI behind SSO).")
@click.pass_context
def serve(ctx: click.Context, host: str, port: int, workers: int, dagster_url: str | None) -> None:
    """Serve the city map at / and the catalog as OGC API – Features and Tiles (docs/serving.md)."""
    import os

    from twinhub.serve.server import ENV_DAGSTER_URL
    from twinhub.serve.server import serve as run

    hub = open_hub(ctx)
    if not is_loopback(host):
        click.secho(f"warning: --host {host} serves beyond this machine: put it behind the city's TLS reverse "
                    "proxy, or tokens travel in clear (docs/serving.md)", fg="yellow", err=True)
    if dagster_url:
        os.environ[ENV_DAGSTER_URL] = dagster_url
    click.echo(f"twinhub serving {hub.home} at http://{host}:{port}/ (Ctrl-C stops it)", err=True)
    run(hub, host, port, workers)


@click.group("tokens")
def tokens() -> None:
    """API tokens: how a GIS client or the map reads the hub as one consumer (docs/serving.md)."""


@tokens.command("issue")
@click.argument("consumer")
@click.option("--until", required=True, help="The last day the token is valid, YYYY-MM-DD.")
@click.option("--note", help="What it is for (shown by tokens list).")
@click.pass_context
def issue(ctx: click.Context, consumer: str, until: str, note: str | None) -> None:
    """Issue a token to CONSUMER (a department, or user:NAME): shown once, kept only as a hash."""
    from twinhub.catalog.grants import parse_consumer, parse_until
    from twinhub.catalog.tokens import issue_token
    from twinhub.hub.consumers import city_today, departments

    hub = open_hub(ctx)
    text, token = issue_token(hub.lake, parse_consumer(consumer, departments(hub)), parse_until(until),
                              city_today(hub), note)
    click.echo(text)
    click.echo(f"token {token.id} for {token.consumer}, valid through {token.until}: copy it now, it is not shown "
               "again (send it as Authorization: Bearer <token>)", err=True)


@tokens.command("list")
@click.option("--consumer", help="Only this consumer's tokens.")
@format_option
@click.pass_context
def list_tokens(ctx: click.Context, consumer: str | None, fmt: str) -> None:
    """Tokens by id, consumer, validity and state (never the tokens themselves)."""
    from twinhub.catalog.tokens import list_tokens as listed
    from twinhub.hub.consumers import city_today

    hub = open_hub(ctx)
    today = city_today(hub)
    rows = [[t.id, t.consumer, t.until.isoformat(), t.state(today), t.issued_by, t.issued_at, t.note]
            for t in listed(hub.lake, consumer)]
    click.echo(output.render(["id", "consumer", "until", "state", "issued_by", "issued_at", "note"], rows, fmt))


@tokens.command("revoke")
@click.argument("token_id", metavar="ID")
@click.option("--reason", required=True, help="Why: recorded in the audit log.")
@click.pass_context
def revoke(ctx: click.Context, token_id: str, reason: str) -> None:
    """Revoke the token ID (as tokens list shows it): every server refuses it from the next request."""
    from twinhub.catalog.tokens import revoke_token

    token = revoke_token(open_hub(ctx).lake, token_id, reason)
    click.echo(f"revoked token {token.id} of {token.consumer}")


@click.command("purge")
@click.argument("dataset")
@click.option("--version", "version", type=int, required=True,
              help="The leaked version to remove from history (see `catalog show`).")
@click.option("--reason", required=True, help="Why, for the audit log.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
def purge(ctx: click.Context, dataset: str, version: int, reason: str, yes: bool) -> None:
    """Remove VERSION of DATASET from history: its rows cannot be read again, with --as-of or from disk (audited)."""
    from twinhub.catalog.versions import purge as purge_version

    if not yes:
        click.confirm(f"Purge version {version} of {dataset}? Every catalog version from it to {dataset}'s next "
                      "version is expired, other datasets' included.", abort=True)
    from twinhub.serve.tilecache import forget_all

    hub = open_hub(ctx)
    result = purge_version(hub.lake, dataset, version, reason)
    forget_all(hub.home)  # tiles drawn from the purged rows, kept for the servers' workers
    others = "; ".join(f"{d} {', '.join(map(str, v))}" for d, v in result.others.items()) or "none"
    click.echo(f"{dataset}: version {version} purged: catalog versions {', '.join(map(str, result.snapshots))} "
               f"expired, {len(result.files)} files and {result.inlined_rows} inlined rows deleted; "
               f"other datasets' versions gone with them: {others}")


def register(main: click.Group) -> None:
    main.add_command(serve)
    main.add_command(tokens)
    main.commands["catalog"].add_command(purge)
