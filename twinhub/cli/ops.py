"""Stewards' operations: `twinhub ledger`, `twinhub trace`, `twinhub catalog vacuum`."""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil

import click

from twinhub.cli import output
from twinhub.cli.options import as_refused, format_option, open_hub

UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def duration(text: str) -> dt.timedelta:
    """'0s', '90m', '12h', '30d' as a timedelta."""
    match = re.fullmatch(r"\s*(\d+)\s*([smhdw])\s*", text or "")
    if not match:
        raise click.BadParameter(f"{text!r}: give a number and a unit, e.g. 30m, 12h, 30d (s, m, h, d, w)")
    return dt.timedelta(**{UNITS[match.group(2)]: int(match.group(1))})


@click.command("ledger")
@click.argument("dataset", required=False)
@click.option("--runs", type=int, default=10, show_default=True, help="Runs per dataset, newest first.")
@format_option
@click.pass_context
def ledger_command(ctx: click.Context, dataset: str | None, runs: int, fmt: str) -> None:
    """Per run: rows read, published, quarantined, added, updated, deleted, unchanged; flags runs that don't add up."""
    from twinhub.hub.ledger import COLUMNS, ledger

    rows = ledger(open_hub(ctx).lake, dataset, runs)
    columns = ([] if dataset else ["dataset"]) + list(COLUMNS)
    click.echo(output.render(columns, [[r.get(c) for c in columns] for r in rows], fmt))
    unbalanced = [r for r in rows if r["balanced"] is False]
    for r in unbalanced:
        click.secho(f"{r['dataset']} run {r['run_id']}: {r['rows_read']} rows read but {r['rows_published']} "
                    f"published + {r['rows_quarantined']} quarantined + {r['rows_filtered']} filtered", fg="red", err=True)
    if unbalanced:
        ctx.exit(1)


@click.command("trace")
@click.argument("dataset")
@click.option("--row", "source_row", type=int, required=True, help="The source row number (1 = first record).")
@click.option("--run", "run_id", help="The run to look in (default: the one behind the version served now).")
@as_refused("it shows the source row as read, which no grant covers")
@format_option
@click.pass_context
def trace_command(ctx: click.Context, dataset: str, source_row: int, run_id: str | None, fmt: str) -> None:
    """Where source row ROW of DATASET went: published under which key, or quarantined and why."""
    from twinhub.hub.ledger import trace

    found = trace(open_hub(ctx).lake, dataset, source_row, run_id)
    if fmt == "json":
        click.echo(json.dumps(found.__dict__, ensure_ascii=False, indent=2, default=str))
        return
    click.echo(found.describe())
    if found.row:
        click.echo(output.render(list(found.row), [list(found.row.values())], fmt))
    for reason in found.reasons or []:
        click.echo(f"  {reason.get('check')} {reason.get('column') or ''}: {reason.get('message') or ''}")


@click.command("vacuum")
@click.option("--dry-run", is_flag=True, help="List what would be removed; remove nothing.")
@click.option("--grace", default="1h", show_default=True,
              help="Spare data files younger than this: they may belong to a publish still in flight.")
@click.option("--older-than", "older_than", help="Also expire versions older than this (e.g. 90d): they can no "
                                                  "longer be read with --as-of or traced.")
@click.pass_context
def vacuum_command(ctx: click.Context, dry_run: bool, grace: str, older_than: str | None) -> None:
    """Remove dead runs' stage folders and data files no version uses (optionally expire old versions)."""
    from twinhub.catalog.vacuum import vacuum
    from twinhub.hub.locks import dead_stages

    hub = open_hub(ctx)
    expire = dt.datetime.now(dt.timezone.utc) - duration(older_than) if older_than else None
    stages = dead_stages(hub.home, hub.staging_dir)
    stage_bytes = sum(f.stat().st_size for s in stages for f in s.rglob("*") if f.is_file())
    report = vacuum(hub.lake, duration(grace), expire_before=expire, dry_run=dry_run)
    if not dry_run:
        for stage in stages:
            shutil.rmtree(stage, ignore_errors=True)
        for run_dir in hub.staging_dir.glob("*"):
            _remove_empty(run_dir)
    verb = "would remove" if dry_run else "removed"
    for path in [*map(str, stages), *report.orphaned, *report.old_files]:
        click.echo(f"{verb} {path}")
    freed = (stage_bytes + report.bytes_freed) / 1e6
    click.echo(f"{verb} {len(stages)} dead stage folders, {len(report.orphaned)} orphaned data files, "
               f"{len(report.expired_snapshots)} expired versions and {len(report.old_files)} files only they used: "
               f"{freed:.1f} MB {'to free' if dry_run else 'freed'}")


def _remove_empty(folder) -> None:
    for path in sorted(folder.rglob("*"), key=lambda p: -len(p.parts)) + [folder]:
        if path.is_dir():
            try:
                path.rmdir()
            except OSError:
                pass


def register(main: click.Group) -> None:
    main.add_command(ledger_command)
    main.add_command(trace_command)
    main.commands["catalog"].add_command(vacuum_command)
