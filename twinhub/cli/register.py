"""``twinhub register SOURCE --department D``: the command behind guided registration.

Without ``--out`` or ``--yes`` it prints the proposal and the dry run and writes
nothing. ``--out FILE`` writes the commented manifest and its crosswalk drafts for
the department to edit; ``--yes`` also registers it through the same registration
function as ``twinhub register MANIFEST`` (so a sensitive or restricted dataset still
waits for a steward's review). Given an edited manifest with ``--dry-run`` it shows
the new dry run; with ``--yes`` it registers it with its drafts.
"""

from __future__ import annotations

import json
import pathlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

import click

from twinhub.guided.source import GuidedError, is_manifest
from twinhub.hub.home import Hub
from twinhub.hub.manifest import ManifestError

if TYPE_CHECKING:  # the proposal's modules load pandas and the connectors: only when guided
    from twinhub.guided.guide import Proposal

PROPOSALS = "proposals"  # under the hub home: where --yes without --out keeps the manifest it registers


@dataclass(frozen=True)
class Options:
    department: str | None = None
    dataset: str | None = None
    standard: str | None = None
    crs: str | None = None
    out: pathlib.Path | None = None
    yes: bool = False
    dry_run: bool = False
    fmt: str = "table"


def wants_guided(sources: tuple[str, ...], opts: Options) -> bool:
    """Guided when a SOURCE is not a manifest, or a manifest is to be dry-run or registered with its drafts."""
    return bool(opts.department) or opts.dry_run or opts.yes or not all(is_manifest(s) for s in sources)


def _emit(proposal: Proposal, fmt: str, extra: dict | None = None, hub: Hub | None = None) -> None:
    """The report; with ``hub`` (not yet registered), it also says whether registering it waits for review."""
    from twinhub.cli.register_report import render

    if fmt == "json":
        click.echo(json.dumps({**proposal.as_dict(), **(extra or {})}, ensure_ascii=False, indent=2, default=str))
    else:  # table (csv has no shape for a report: the text is shown too)
        click.echo(render(proposal, hub))


def _register(hub: Hub, path: pathlib.Path) -> dict:
    """Register the manifest at ``path`` (the hub's one registration function) and install its drafts."""
    from twinhub.guided.guide import install_drafts
    from twinhub.hub.registration import register

    entry, replaced = register(hub, path)
    installed = install_drafts(hub, path, entry.manifest)
    review = list(getattr(entry, "review", None) or [])
    return {"registered": entry.id, "replaced": replaced, "review": review, "crosswalks": [str(p) for p in installed]}


def _say_registered(outcome: dict, path: pathlib.Path) -> None:
    for p in outcome["crosswalks"]:
        click.echo(f"installed crosswalk {p}")
    if outcome["review"]:
        click.secho(f"{outcome['registered']} waits for a steward's review ({'; '.join(outcome['review'])}); it does "
                    f"not run until approved: twinhub review show {outcome['registered']}", fg="yellow")
    else:
        click.echo(f"{'updated' if outcome['replaced'] else 'registered'} {outcome['registered']} from {path}")


def run_guided(hub: Hub, sources: tuple[str, ...], opts: Options) -> int:
    """The guided command; returns the exit code (2: the user's to fix)."""
    if len(sources) != 1:
        raise click.UsageError("guided registration takes one SOURCE (a file, URL or database table, or a manifest)")
    source = sources[0]
    try:
        if is_manifest(source):
            return _manifest(hub, pathlib.Path(source), opts)
        if not opts.department:
            raise click.UsageError("give --department: the department the dataset belongs to (its SQL schema)")
        return _source(hub, source, opts)
    except GuidedError as exc:
        click.secho(f"error: {exc}", fg="red", err=True)
        return 2


def _source(hub: Hub, source: str, opts: Options) -> int:
    from twinhub.guided.guide import propose, write

    if opts.out and opts.out.exists():  # it may hold the department's edits
        raise GuidedError(f"{opts.out} exists: edit it and run `twinhub register {opts.out} --dry-run`, "
                          "or remove it (and its crosswalk drafts) to propose afresh")
    proposal = propose(hub, source, opts.department, opts.dataset, opts.standard, opts.crs,
                       command=f"twinhub register {source} --department {opts.department}")
    if not (opts.out or opts.yes):
        _emit(proposal, opts.fmt, hub=hub)
        if opts.fmt == "table":
            click.echo("\nnothing was written: add --out FILE to write the manifest to edit, or --yes to register it")
        return 0
    path = opts.out or hub.home / PROPOSALS / proposal.manifest["department"] / f"{proposal.manifest['dataset']}.yaml"
    written = write(proposal, path, hub.pack)
    extra: dict = {"written": [str(p) for p in written]}
    if opts.yes:
        try:
            extra.update(_register(hub, written[0]))
        except ManifestError as exc:
            _emit(proposal, opts.fmt, extra)
            click.secho(f"{exc}\nedit {written[0]} and run: twinhub register {written[0]} --yes", fg="red", err=True)
            return 2
    _emit(proposal, opts.fmt, extra, hub=None if opts.yes else hub)
    if opts.fmt == "table":
        click.echo("")
        for p in written:
            click.echo(f"wrote {p}")
        if opts.yes:
            _say_registered(extra, written[0])
        else:
            click.echo(f"edit it, then: twinhub register {written[0]} --dry-run   or   --yes to register it")
    return 0


def _manifest(hub: Hub, path: pathlib.Path, opts: Options) -> int:
    from twinhub.guided.guide import rerun

    if not path.is_file():
        raise GuidedError(f"{path}: no such manifest file")
    proposal = rerun(hub, path)
    extra: dict = {}
    if opts.yes:
        try:
            extra = _register(hub, path)
        except ManifestError as exc:
            _emit(proposal, opts.fmt)
            click.secho(str(exc), fg="red", err=True)
            return 2
    _emit(proposal, opts.fmt, extra, hub=None if opts.yes else hub)
    if opts.yes and opts.fmt == "table":
        _say_registered(extra, path)
    return 0
