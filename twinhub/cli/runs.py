"""Running datasets and what they left served: ``twinhub run``, ``twinhub datasets``, ``twinhub quarantine``.

Every summary says which version each dataset serves after the run: its number for the dataset
(``v3``, what ``twinhub rollback DATASET v3`` takes) beside the catalog snapshot (what ``--as-of``
reads). A run that published nothing says the version that stays served and its counts; a run the
audit blocked prints the checks that blocked it and a sample of the failing rows with their reasons.

Kept light at import (click and the CLI's own helpers): ``twinhub datasets`` over a thousand datasets
answers in well under a second (docs/production.md, Scale).
"""

from __future__ import annotations

import json
import logging
import sys
from collections import Counter

import click

from twinhub.cli import output
from twinhub.cli.options import as_refused, format_option, open_hub
from twinhub.hub.home import Hub

SAMPLE_SHOWN = 5  # failing rows printed per blocking check (the rest: twinhub quarantine DATASET --run RUN)


@click.command()
@format_option
@click.pass_context
def datasets(ctx: click.Context, fmt: str) -> None:
    """List registered datasets, their last run and the version they serve (with its counts)."""
    from twinhub.catalog.runs import latest_runs, version_label
    from twinhub.hub.registry import registered
    from twinhub.standards.tiers import highest

    hub = open_hub(ctx)
    latest = latest_runs(hub.lake)
    rows = []
    waiting = _pending_review(hub)
    for r in registered(hub, include_retired=True):
        m, run = r.manifest, latest.get(r.id, {})
        tier = highest([m.tier, run.get("served_tier") or m.tier])  # the scan may have raised the served version's
        status = f"retired {r.retired.get('at', '')}".strip() if r.retired is not None else run.get("status")
        if waiting.pop(r.id, None) is not None:  # a change waits; the approved version keeps running
            status = f"{status}; change pending review" if status else "change pending review"
        rows.append([r.id, m.title, m.standard, m.source["format"], tier, m.schedule, status,
                     version_label(run.get("served_version"), run.get("served_snapshot")) or None,
                     run.get("served_published"), run.get("served_quarantined")])  # the served version's
    for p in waiting.values():  # new registrations a steward has not decided yet: they do not run
        m = p.manifest
        rows.append([p.id, m.title, m.standard, m.source["format"], p.tier, m.schedule, "pending review", None, None,
                     None])
    rows.sort(key=lambda row: row[0])
    cols = ["dataset", "title", "standard", "format", "classification", "schedule", "last_run", "served",
            "published", "quarantined"]
    click.echo(output.render(cols, rows, fmt))


def _pending_review(hub: Hub) -> dict:
    """Registrations waiting for a steward (twinhub/review.py), by dataset id."""
    from twinhub.hub.review import pending

    return {p.id: p for p in pending(hub)}


@click.command()
@click.argument("datasets", nargs=-1)
@click.option("--all", "run_all", is_flag=True, help="Run every registered dataset.")
@click.option("--failed", "only_failed", is_flag=True, help="Run the datasets whose last run failed or was blocked.")
@click.option("--force", is_flag=True, help="Publish a new version even if source and configuration are unchanged.")
@click.option("--wait", is_flag=True, help="Wait for another run publishing the same dataset instead of failing.")
@click.pass_context
def run(ctx: click.Context, datasets: tuple[str, ...], run_all: bool, only_failed: bool, force: bool,
        wait: bool) -> None:
    """Pull, conform and publish DATASETS (department.dataset) through Dagster."""
    if (bool(datasets) + run_all + only_failed) != 1:
        raise click.UsageError("name DATASETS to run, or use --all or --failed")
    hub = open_hub(ctx)
    if only_failed:
        from twinhub.catalog.runs import latest_runs
        from twinhub.hub.registry import registered

        latest = latest_runs(hub.lake)
        datasets = tuple(r.id for r in registered(hub) if latest.get(r.id, {}).get("status") in ("failed", "blocked"))
        if not datasets:
            click.echo("no dataset's last run failed")
            return
    summary = run_and_report(hub, list(datasets) or None, force=force, wait=wait)
    if not summary.ok:
        ctx.exit(1)


def _progress() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("  %(message)s"))
    log = logging.getLogger("twinhub")
    log.handlers[:] = [handler]
    log.setLevel(logging.INFO)
    log.propagate = False


def run_and_report(hub: Hub, datasets: list[str] | None, force: bool = False, wait: bool = False):
    """Run ``datasets`` (all when None) and print the summary: per dataset its run's figures and the
    version served after it; what a blocked or failed run left served, and why it was blocked."""
    from twinhub.hub.registry import lookup
    from twinhub.pipelines.runner import run_datasets

    for dataset in datasets or []:  # an unknown or pending dataset is refused before Dagster starts
        lookup(hub, dataset)
    _progress()
    click.echo("running through Dagster (in-process)…", err=True)
    summary = run_datasets(hub, datasets, force=force, wait=wait)
    rows = [[o.dataset, o.status if o.ok else o.status.upper(), o.rows_read, o.rows_published, o.rows_quarantined,
             o.rows_filtered, o.served_label or None, o.changes] for o in summary.outcomes]
    click.echo(output.table(["dataset", "status", "read", "published", "quarantined", "filtered", "served", "changes"],
                            rows))
    for o in summary.outcomes:
        if not o.ok:
            click.secho(f"{o.dataset} {o.status}: {o.error}", fg="red", err=True)
            for line in blocked_lines(o.dataset, o.blocked_by, summary.run_id):
                click.echo(line, err=True)
    _say_raised(hub, {o.dataset for o in summary.outcomes if o.ok})
    click.echo(f"dagster run: {summary.run_id}", err=True)
    return summary


def blocked_lines(dataset: str, blocked_by: list[dict], run_id: str, shown: int = SAMPLE_SHOWN) -> list[str]:
    """Each blocking check that failed: its figures and up to ``shown`` failing rows with their reasons."""
    lines = []
    for block in blocked_by:
        facts = block["facts"]
        figures = ", ".join(f"{k} {v}" for k, v in facts.items() if k in (
            "rows_failing", "share_failing", "max_share", "rows_served", "rows_conforming", "drop", "max_drop"))
        lines.append(f"  blocked by {block['check']}: {figures}")
        if facts.get("by_check"):
            lines.append("    rows failing per check: " + ", ".join(f"{k} {v}" for k, v in facts["by_check"].items()))
        for row in block["sample"][:shown]:
            reasons = "; ".join(_reason_text(x) for x in row.get("reasons") or [])
            lines.append(f"    source row {row.get('source_row')}: {reasons}")
    if blocked_by:
        lines.append(f"  every recorded failing row: twinhub quarantine {dataset} --run {run_id}")
    return lines


def _reason_text(reason: dict) -> str:
    where = reason.get("source_column") or reason.get("column")
    value = f" = {reason['value']!r}" if reason.get("value") is not None else ""
    return f"{reason.get('check')} ({where}{value}): {reason.get('message', '')}" if where else \
        f"{reason.get('check')}: {reason.get('message', '')}"


def _say_raised(hub: Hub, datasets: set[str]) -> None:
    """Undeclared personal data the scan found in what was just published (until a steward acknowledges it)."""
    from twinhub.hub.review import raised_by_scan

    for item in raised_by_scan(hub):
        if item.id in datasets:
            click.secho(f"{item.id}: {item.why}; published {item.tier}; the steward sees it in twinhub review list "
                        f"(declare the columns in the manifest: docs/governance.md)", fg="yellow", err=True)


@click.command()
@click.argument("dataset")
@click.option("--run", "run_id", metavar="RUN_ID", help="The rows of this run instead: a blocked run's failing "
                                                        "rows as its audit recorded them, or a version's quarantine.")
@as_refused("it shows the source records as read, which no grant covers")
@format_option
@click.pass_context
def quarantine(ctx: click.Context, dataset: str, run_id: str | None, fmt: str) -> None:
    """Show DATASET's quarantined rows with every reason (the served version's, or --run RUN_ID's)."""
    hub = open_hub(ctx)
    if run_id:
        rows, note = _rows_of_run(hub, dataset, run_id)
    else:
        from twinhub.catalog.info import quarantine_rows

        rows, note = quarantine_rows(hub.lake, dataset), ""
    if fmt == "json":
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2, default=str))
        return
    flat = [[r["source_row"], x["check"], x.get("column"), x.get("source_column"), x.get("value"), x.get("message")]
            for r in rows for x in r["reasons"]]
    click.echo(output.render(["source_row", "check", "column", "source_column", "value", "message"], flat, fmt))
    if fmt == "table":
        click.echo(f"\n{len(rows)} rows quarantined: {reason_counts(rows)}{note}")


def _rows_of_run(hub: Hub, dataset: str, run_id: str) -> tuple[list[dict], str]:
    """The rows ``run_id`` held back: a blocked run's failing rows (from the audit's record in the hub's
    Dagster instance: its stage was discarded), or the quarantine of the version a run published."""
    from twinhub.catalog.runs import quarantine_at, recent_runs, run_record, version_label
    from twinhub.errors import UserError

    record = run_record(hub.lake, dataset, run_id)
    if record is None:
        runs = ", ".join(f"{r['run_id']} ({r['status']})" for r in recent_runs(hub.lake, dataset)) or "none"
        raise UserError(f"--run {run_id}: {dataset} has no such run; its newest runs: {runs}")
    if record["status"] == "blocked":
        from twinhub.pipelines.runner import recorded_blocks

        blocks = recorded_blocks(hub, run_id, dataset)
        rows: dict[int, dict] = {}
        for block in blocks:
            for row in block["sample"]:
                rows.setdefault(row["source_row"], {"source_row": row["source_row"], "run_id": run_id,
                                                    "reasons": row.get("reasons") or []})
        failing = sum(b["facts"].get("rows_failing") or 0 for b in blocks)
        return sorted(rows.values(), key=lambda r: r["source_row"]), (
            f"\nrun {run_id} was blocked by {', '.join(b['check'] for b in blocks) or 'the audit'} "
            f"({failing} rows failing); its stage was discarded, so these are the rows its audit recorded")
    if record["snapshot"] is None:
        raise UserError(f"--run {run_id}: that run of {dataset} was {record['status']} and published no version; "
                        f"its error: {record.get('error') or 'none recorded'}")
    return quarantine_at(hub.lake, dataset, record["snapshot"]), (
        f"\n(the quarantine of {version_label(record['number'], record['snapshot'])}, published by run {run_id})")


def reason_counts(rows: list[dict]) -> str:
    """'duplicate_key 2, type 1': how often each check held rows back."""
    counts = Counter(x["check"] for r in rows for x in r["reasons"])
    return ", ".join(f"{k} {v}" for k, v in counts.most_common())


COMMANDS = (datasets, run, quarantine)
