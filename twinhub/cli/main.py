"""The ``twinhub`` command line."""

from __future__ import annotations

import importlib
import os
import pathlib
import sys
from zoneinfo import ZoneInfo

import click

from twinhub.cli import output
from twinhub.cli.options import (
    HOME_HELP,
    accept_global_options,
    as_option,
    consumer,
    department_option,
    dialect_option,
    format_option,
    is_loopback,
    open_hub,
    reload_ui,
)
from twinhub.cli.runs import COMMANDS as RUN_COMMANDS
from twinhub.errors import DEBUG_ENV, EXIT_FAILED, EXIT_USER, is_user_error
from twinhub.hub.home import ENV_HOME, Hub
from twinhub.hub.manifest import ManifestError

# Heavy modules (pandas, GDAL, pyproj, DuckDB's SQL tooling) are imported inside the commands that
# use them, and the command groups kept in their own modules only when asked for: `twinhub datasets`
# over a thousand datasets answers in well under a second (docs/production.md, Scale).
COMMAND_MODULES = ("twinhub.cli.catalog", "twinhub.cli.standards", "twinhub.cli.ops", "twinhub.cli.governance",
                   "twinhub.cli.serve", "twinhub.cli.lifecycle", "twinhub.cli.crs")


def _default_max_rows() -> int:
    from twinhub.catalog.query import DEFAULT_MAX_ROWS

    return DEFAULT_MAX_ROWS


DEMO_QUERY = """\
SELECT s.name AS shelter, e.name AS care_home,
       round(ST_Distance(s.geometry::geography, e.geometry::geography)) AS metres
FROM emergency.shelters s
JOIN civil_affairs.elderly_care e
  ON ST_DWithin(s.geometry::geography, e.geometry::geography, 400)
ORDER BY metres"""


class Group(click.Group):
    """Turns errors into a one-line message: exit 2 for the user's to fix, 1 for anything else.

    Whether an error is the user's to fix is its type's to say (twinhub/errors.py ``user_error``).
    ``TWINHUB_DEBUG=1`` shows the traceback of an unexpected error.
    """

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except Exception as exc:
            if is_user_error(exc):
                click.secho(f"error: {exc}", fg="red", err=True)
                ctx.exit(EXIT_USER)
            if os.environ.get(DEBUG_ENV):
                raise
            click.secho(f"error: {type(exc).__name__}: {exc}\n(set {DEBUG_ENV}=1 to see where)", fg="red", err=True)
            ctx.exit(EXIT_FAILED)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        command = super().get_command(ctx, name)
        if command is None and self is main and _add_command_modules():
            command = super().get_command(ctx, name)
        return accept_global_options(command) if command is not None else None

    def list_commands(self, ctx: click.Context) -> list[str]:
        if self is main:
            _add_command_modules()
        return super().list_commands(ctx)


_added: list[str] = []


def _add_command_modules() -> bool:
    """Register the commands of COMMAND_MODULES (in order: one may extend an earlier one's group) once."""
    if _added:
        return False
    for name in COMMAND_MODULES:
        _added.append(name)
        importlib.import_module(name).register(main)
    return True


@click.group(cls=Group)
@click.option("--home", type=click.Path(file_okay=False), envvar=ENV_HOME, help=HOME_HELP + " Also after the command.")
@click.pass_context
def main(ctx: click.Context, home: str | None) -> None:
    """twinhub: register departments' datasets, conform them to shared standards, publish one catalog."""
    ctx.ensure_object(dict)
    ctx.obj["home"] = home


@main.command()
@click.pass_context
def init(ctx: click.Context) -> None:
    """Create the hub home: configuration, registry and an empty catalog."""
    hub = open_hub(ctx, create=True)
    click.echo(f"hub home: {hub.home}\nconfiguration: {hub.home / 'twinhub.yaml'}\ntarget CRS: {hub.target_crs}")


@main.command()
@click.argument("manifests", metavar="MANIFEST... | SOURCE", nargs=-1, required=True)
@click.option("--department", help="Guided: the department you register for: SOURCE (file, URL, database table) "
                                   "becomes a dataset of it (its SQL schema).")
@click.option("--dataset", help="Guided: the dataset's name (default: from the file or table name).")
@click.option("--standard", help="Guided: use this standard instead of the best-fitting one.")
@click.option("--crs", help="Guided: the source's CRS (e.g. EPSG:4549), when the coordinates cannot tell.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=pathlib.Path),
              help="Guided: write the proposed manifest (and its crosswalk drafts beside it) here.")
@click.option("--yes", is_flag=True, help="Guided: register the proposal (or the edited manifest with its drafts).")
@click.option("--dry-run", is_flag=True, help="Dry-run MANIFEST over its whole source (nothing is registered).")
@format_option
@click.pass_context
def register(ctx: click.Context, manifests: tuple[str, ...], fmt: str, **guided: object) -> None:
    """Check MANIFEST files against their source and standard, then add them to the registry.

    Or guided: `twinhub register SOURCE --department D` inspects SOURCE, proposes a
    manifest with a dry run, and writes it (--out) or registers it (--yes); see docs/registering.md.
    """
    from twinhub.cli.register import Options, run_guided, wants_guided

    opts = Options(**guided, fmt=fmt)
    if wants_guided(manifests, opts):
        ctx.exit(run_guided(open_hub(ctx, create=True), manifests, opts))
    manifests = tuple(pathlib.Path(m) for m in manifests)
    from twinhub.hub.registration import register as register_manifest

    hub = open_hub(ctx, create=True)
    failed = 0
    for path in manifests:
        try:
            entry, replaced = register_manifest(hub, path)
        except ManifestError as exc:
            click.secho(str(exc), fg="red", err=True)
            failed += 1
            continue
        failed += not _install_drafts(hub, path, entry)
        if entry.review:  # sensitive or restricted: a steward decides before it runs (twinhub/review.py)
            click.secho(f"{entry.id} waits for a steward's review ({'; '.join(entry.review)}); it does not run until "
                        f"approved: twinhub review show {entry.id}", fg="yellow")
            continue
        click.echo(f"{'updated' if replaced else 'registered'} {entry.id} ({entry.manifest.title}) from {path}")
    if len(manifests) > failed:
        reload_ui(hub)
    if failed:
        ctx.exit(2)


def _install_drafts(hub: Hub, path: pathlib.Path, entry) -> bool:
    """Install the crosswalk drafts beside the manifest (docs/registering.md); False if one is broken."""
    from twinhub.guided.guide import install_drafts
    from twinhub.guided.source import GuidedError

    try:
        for installed in install_drafts(hub, path, entry.manifest):
            click.echo(f"installed crosswalk {installed}")
    except GuidedError as exc:
        click.secho(f"{entry.id} is registered, but not its crosswalk draft: {exc}; fix it and register again",
                    fg="red", err=True)
        return False
    return True


@main.command()
@click.argument("sql")
@dialect_option
@click.option("--timeout", type=float, default=60.0, show_default=True, help="Cancel the query after this many seconds.")
@click.option("--as-of", "as_of", help="Read the catalog as of a version number or a time (city time if no offset).")
@click.option("--max-rows", type=int, default=_default_max_rows,
              help="Return at most this many rows (default: 100,000, catalog.query's DEFAULT_MAX_ROWS).")
@department_option()
@as_option()
@format_option
@click.pass_context
def query(ctx: click.Context, sql: str, dialect: str, timeout: float, as_of: str | None, max_rows: int,
          department: str | None, as_consumer: str | None, fmt: str) -> None:
    """Run one read-only SELECT over catalog tables (SQL '-' reads standard input)."""
    from twinhub.catalog.query import run_query
    from twinhub.catalog.sandbox import Limits
    from twinhub.catalog.versions import parse_as_of
    from twinhub.standards.crs import resolve_crs

    hub = open_hub(ctx)
    text = sys.stdin.read() if sql == "-" else sql
    result = run_query(hub.lake, text, dialect=dialect, timeout_s=timeout,
                       limits=Limits.from_config(hub.config.query.model_dump()),
                       geographic=resolve_crs(hub.target_crs).is_geographic, max_rows=max_rows,
                       as_of=parse_as_of(as_of, ZoneInfo(hub.city.timezone)) if as_of else None, department=department,
                       consumer=consumer(hub, as_consumer, text))
    click.echo(output.render(result.columns, result.rows, fmt))
    if result.truncated:
        click.secho(f"warning: only the first {result.max_rows} rows are shown; more matched "
                    "(raise --max-rows, or add LIMIT/WHERE)", fg="yellow", err=True)


def exposure_warning(host: str) -> str | None:
    """What ``twinhub ui --host HOST`` warns of when HOST is reachable beyond this machine (issue 15, finding 8)."""
    if is_loopback(host):
        return None
    return (f"warning: --host {host} serves the Dagster UI beyond this machine, and it has no authentication: "
            "anyone who reaches it can browse, launch runs and read check metadata. Keep it on 127.0.0.1 behind "
            "an authenticating reverse proxy (SSO): docs/production.md")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=3000, show_default=True, type=int)
@click.pass_context
def ui(ctx: click.Context, host: str, port: int) -> None:
    """Start the Dagster UI (webserver and daemon) on this hub."""
    from twinhub.cli.ui import serve

    hub = open_hub(ctx)
    if warning := exposure_warning(host):
        click.secho(warning, fg="yellow", err=True)
    click.echo(f"Dagster UI for {hub.home} at http://{host}:{port} (Ctrl-C stops it)", err=True)
    ctx.exit(serve(hub, host, port))


@main.command()
@click.option("--fresh", is_flag=True, help="Empty the hub's registry and catalog first.")
@click.pass_context
def demo(ctx: click.Context, fresh: bool) -> None:
    """Register the bundled sample city (4 departments) and publish it, then show what happened."""
    from twinhub.catalog.info import quarantine_rows
    from twinhub.catalog.query import run_query
    from twinhub.cli.demo import prepare_demo
    from twinhub.cli.runs import reason_counts, run_and_report
    from twinhub.standards.crs import resolve_crs

    hub = open_hub(ctx, create=True)
    entries = prepare_demo(hub, fresh=fresh)
    click.echo(f"hub home {hub.home}: registered {', '.join(e.id for e in entries)}", err=True)
    summary = run_and_report(hub, None)
    click.echo("\nquarantined rows by reason (twinhub quarantine DATASET shows each row):")
    for o in summary.outcomes:
        if o.ok and o.rows_quarantined:
            click.echo(f"  {o.dataset}: {reason_counts(quarantine_rows(hub.lake, o.dataset))}")
    click.echo("\nshelters within 400 m of an elderly care home (a cross-department query, postgres dialect):")
    result = run_query(hub.lake, DEMO_QUERY, dialect="postgres",  # metres on a projected hub's coordinates
                       geographic=resolve_crs(hub.target_crs).is_geographic)
    click.echo(output.table(result.columns, result.rows))
    home = f" --home {hub.home}" if ctx.obj["home"] else ""
    click.echo(
        "\nnext:\n"
        f"  twinhub{home} ui                                  browse the catalog in the Dagster UI\n"
        f"  twinhub{home} catalog show civil_affairs.elderly_care\n"
        f"  twinhub{home} query \"SELECT category, count(*) FROM water.pumping_stations GROUP BY 1\""
    )
    if not summary.ok:
        ctx.exit(1)


for _command in RUN_COMMANDS:  # datasets, run, quarantine: light to import, so `twinhub datasets` stays fast
    main.add_command(_command)

# Command groups kept in their own modules: one line each in COMMAND_MODULES (top of this file).
