"""The options and helpers every command shares, defined once.

Subcommand modules import this module, never ``twinhub.cli.main`` (main imports them: that way
round there is no cycle). What each option means is the same on every command (docs/cli.md):

* ``--home DIR``: the hub home; before or after the subcommand (``twinhub datasets --home DIR``).
* ``--format table|json|csv``: how the command prints what it found, nothing else. File formats
  have their own option (``export --file-format``, ``export-catalog --metadata-format``).
* ``--department D``: the department you act for. Registering, it is the department the new
  dataset belongs to (its SQL schema); reading, it is recorded in the audit log and counted by
  ``twinhub report``. Reading commands default to ``$TWINHUB_DEPARTMENT``.
* ``--as CONSUMER``: read only what CONSUMER (a department, or ``user:NAME``) is granted, through the
  same enforcement as ``twinhub query --as``; a command that cannot honour it refuses it.
* ``--dialect``: the SQL dialects of the query guard (twinhub/catalog/guard.py), aliases included.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from twinhub.cli import output
from twinhub.errors import UserError
from twinhub.hub.home import ENV_HOME, Hub

if TYPE_CHECKING:  # the catalog's modules load duckdb and sqlglot: imported when a command runs
    from twinhub.catalog.enforce import AsConsumer

ENV_DEPARTMENT = "TWINHUB_DEPARTMENT"  # as twinhub.catalog.audit.ENV_DEPARTMENT (not imported: it loads duckdb)
HOME_HELP = f"Hub home folder (default: ${ENV_HOME}, else ~/.twinhub)."
HOME_AFTER = "home_after_subcommand"  # the name of --home where a subcommand accepts it


class OptionRefused(UserError):
    """An option this command does not take (any more, or not yet): the message says what to write instead."""


LOOPBACK_HOSTS = ("localhost", "::1")  # and 127.0.0.0/8


def is_loopback(host: str) -> bool:
    """Whether ``host`` is this machine only (127.0.0.0/8, ::1, localhost); 0.0.0.0 and :: are every interface."""
    import ipaddress

    if host.strip().lower() in LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name other than localhost may resolve to anything
        return False


def open_hub(ctx: click.Context, create: bool = False) -> Hub:
    """The hub of ``--home`` (given before or after the subcommand), ``$TWINHUB_HOME`` or ~/.twinhub.

    Only the commands that make a hub (``init``, ``register``, ``demo``) pass ``create``: any other on a
    folder that is not a hub says so (exit 2) instead of leaving an empty hub behind a mistyped --home."""
    return Hub.open(ctx.find_root().obj["home"], create=create)


# --------------------------------------------------------------------------- --home after the subcommand


def _home_after(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    if value is None:
        return
    root = ctx.find_root()
    given = root.params.get("home")
    if root.get_parameter_source("home") == click.core.ParameterSource.COMMANDLINE and given != value:
        raise click.UsageError(f"--home given twice ({given} and {value}): give it once")
    root.obj["home"] = value


def accept_global_options(command: click.Command) -> click.Command:
    """Let ``command`` (and, for a group, every command under it) take ``--home`` after its name too."""
    if not any(p.name == HOME_AFTER for p in command.params):
        command.params.append(click.Option(["--home", HOME_AFTER], type=click.Path(file_okay=False), hidden=True,
                                           expose_value=False, callback=_home_after, help=HOME_HELP))
    for sub in getattr(command, "commands", {}).values():
        accept_global_options(sub)
    return command


# --------------------------------------------------------------------------- output rendering


def format_choice(*choices: str) -> Callable:
    """``--format``: how the command prints what it found (a command with one shape of output may offer fewer)."""
    choices = choices or output.FORMATS
    return click.option("--format", "fmt", type=click.Choice(choices), default="table", show_default=True,
                        help=f"How to print the result: {', '.join(choices)}.")


format_option = format_choice()


def renamed(old: str, new: str, why: str) -> Callable:
    """Keep ``old`` as a hidden option that fails with a hint to ``new`` (the option was renamed)."""
    def refuse(ctx: click.Context, param: click.Parameter, value: Any) -> None:
        if value is not None:
            raise OptionRefused(f"{ctx.command_path}: {old} {value} is now {new} {value} ({why}; docs/cli.md)")

    return click.option(old, f"_renamed_{old.strip('-').replace('-', '_')}", hidden=True, expose_value=False,
                        callback=refuse, is_eager=True)


# --------------------------------------------------------------------------- department and consumer


def department_option(reading: bool = True) -> Callable:
    """``--department``: the department you act for (reading: for the audit log, default $TWINHUB_DEPARTMENT)."""
    if not reading:
        return click.option("--department", help="The department you register for: the dataset's department "
                                                 "(its SQL schema).")
    return click.option("--department", envvar=ENV_DEPARTMENT, metavar="DEPARTMENT",
                        help=f"The department you read for (default: ${ENV_DEPARTMENT}), recorded in the audit log "
                             "and counted by `twinhub report`.")


def as_option(what: str = "Read only what CONSUMER (a department, or user:NAME) is granted",
              default: str = "the local steward") -> Callable:
    """``--as CONSUMER``, honoured by the command through :func:`consumer` (the enforcement of ``query --as``)."""
    return click.option("--as", "as_consumer", metavar="CONSUMER", help=f"{what} (default: {default}).")


def as_refused(why: str) -> Callable:
    """``--as CONSUMER`` on a command that cannot read as a consumer yet: refused, never ignored."""
    def refuse(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
        if value is not None:
            raise OptionRefused(f"{ctx.command_path} cannot read as a consumer yet ({why}), so --as {value} is "
                                "refused rather than ignored: read the published tables as that consumer with "
                                f"`twinhub query --as {value} \"SELECT ...\"`")

    return click.option("--as", "_as_refused", metavar="CONSUMER", expose_value=False, callback=refuse,
                        help=f"Refused: this command cannot read as a consumer yet ({why}).")


def consumer(hub: Hub, name: str | None, statement: str, action: str = "query") -> AsConsumer | None:
    """What a command run with ``--as NAME`` reads as (None without it); an unknown consumer is refused and audited."""
    if not name:
        return None
    from twinhub.cli.consumers import as_consumer

    return as_consumer(hub, name, statement, action=action)


# --------------------------------------------------------------------------- SQL dialects


class Dialect(click.ParamType):
    """A SQL dialect of the query guard (catalog/guard.py: SUPPORTED_DIALECTS and DIALECT_ALIASES): one list.

    The guard (and sqlglot with it) is imported when a value is checked, not when the CLI starts.
    """

    name = "dialect"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        from twinhub.catalog.guard import DIALECT_ALIASES, SUPPORTED_DIALECTS

        name = str(value).strip().lower()
        name = DIALECT_ALIASES.get(name, name)
        if name not in SUPPORTED_DIALECTS:
            aliases = ", ".join(f"{a} ({d})" for a, d in sorted(DIALECT_ALIASES.items()))
            self.fail(f"{value!r} is not a SQL dialect twinhub reads; choose one of {', '.join(SUPPORTED_DIALECTS)}, "
                      f"or an alias: {aliases}", param, ctx)
        return name


dialect_option = click.option("--dialect", type=Dialect(), default="duckdb", show_default=True, metavar="DIALECT",
                              help="The SQL dialect SQL is written in (postgres, mysql, tsql, redshift, ... and "
                                   "aliases such as postgis or mariadb: docs/cli.md); it is translated to DuckDB.")


# --------------------------------------------------------------------------- the running UI


def reload_ui(hub: Hub) -> None:
    """Tell a running Dagster UI of this hub that the registry changed (a warning if it cannot)."""
    from twinhub.cli.ui import reload_ui as reload

    try:
        address = reload(hub)
    except Exception as exc:  # noqa: BLE001 - the registry is updated either way; the UI catches up on its next reload
        click.secho(f"warning: could not reload the running Dagster UI: {exc}", fg="yellow", err=True)
        return
    if address:
        click.echo(f"the Dagster UI at {address} reloaded the registry", err=True)
