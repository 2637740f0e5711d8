"""``twinhub labels``: the review queue of unmapped label values, and accepting a mapping.

The queue is computed from the catalog, not stored: every row held back by
``label_unmapped`` in ``catalog.quarantine`` (the dataset's latest publish)
counts for its value. Accepting writes the mapping into a crosswalk file
(standards/crosswalk_files.py says which); the next run maps the value and publishes
the rows, and the value leaves the queue.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass

import click

from twinhub.catalog.info import last_published
from twinhub.catalog.lake import META_SCHEMA
from twinhub.cli import output
from twinhub.cli.options import as_refused, format_option, open_hub
from twinhub.hub.home import Hub
from twinhub.hub.registry import Registered, lookup, registered
from twinhub.standards import crosswalk_files
from twinhub.standards.labels import Suggestion, normalize, suggest
from twinhub.standards.pack import MATCH_TYPES, StandardsError, code_problem


@dataclass
class QueueEntry:
    dataset: str
    field: str
    source_column: str | None
    value: str
    rows: int
    suggestions: list[Suggestion]

    def accept_command(self) -> str:
        code = self.suggestions[0].code if self.suggestions else "CODE"
        return f"twinhub labels accept {self.dataset} {self.field} {_quote(self.value)} {code}"


def _quote(text: str) -> str:
    return text if text and all(c.isalnum() or c in "_-." for c in text) else json.dumps(text, ensure_ascii=False)


def _held_values(hub: Hub, dataset: str | None) -> Counter:
    """(dataset, field, source column, value) -> rows held back by label_unmapped."""
    counts: Counter = Counter()
    if not hub.lake.exists():
        return counts
    con = hub.lake.connect(read_only=True)
    try:
        sql = f"SELECT dataset, reasons FROM {META_SCHEMA}.quarantine WHERE checks LIKE '%label_unmapped%'"
        rows = con.execute(sql + (" AND dataset = ?" if dataset else ""), [dataset] if dataset else []).fetchall()
    finally:
        con.close()
    for name, reasons in rows:
        for reason in json.loads(reasons):
            if reason.get("check") == "label_unmapped":
                counts[(name, reason.get("column"), reason.get("source_column"), str(reason.get("value")))] += 1
    return counts


def _field_vocabulary(hub: Hub, entry: Registered, field_name: str) -> str:
    standard = hub.pack.standard(entry.manifest.standard)
    vocabularies = standard.vocabulary_fields
    if field_name not in vocabularies:
        raise StandardsError(f"{entry.id}: {field_name!r} is not a field with a vocabulary in standard "
                             f"{standard.ref}; fields with one: {', '.join(sorted(vocabularies)) or 'none'}")
    return vocabularies[field_name]


def review_queue(hub: Hub, dataset: str | None = None) -> list[QueueEntry]:
    """Unmapped values with their counts and suggested codes, most frequent first per field."""
    known = {r.id: r for r in registered(hub)}
    if dataset is not None:
        known = {dataset: lookup(hub, dataset)}
    shared = crosswalk_files.available(hub.pack, hub.home)
    entries = []
    for (name, field_name, column, value), rows in _held_values(hub, dataset).items():
        entry = known.get(name)
        if entry is None:  # quarantine of a dataset no longer registered
            continue
        vocabulary = hub.pack.vocabulary(_field_vocabulary(hub, entry, field_name))
        others = [c for c in shared.values() if c.vocabulary == vocabulary.name]
        entries.append(QueueEntry(name, field_name, column, value, rows, suggest(value, vocabulary, others)))
    return sorted(entries, key=lambda e: (e.dataset, e.field, -e.rows, e.value))


def coverage(hub: Hub, dataset: str) -> dict[str, dict]:
    """Per field, the label record of the dataset's latest published run (run details ``labels``)."""
    run = last_published(hub.lake, dataset)
    details = json.loads(run["details"]) if run and run.get("details") else {}
    return details.get("labels") or {}


@click.group("labels")
def labels() -> None:
    """Review unmapped label values and accept mappings into crosswalks."""


@labels.command("review")
@click.argument("dataset", required=False)
@as_refused("the queue shows source values held in the quarantine, which no grant covers")
@format_option
@click.pass_context
def labels_review(ctx: click.Context, dataset: str | None, fmt: str) -> None:
    """Show the values held back as label_unmapped, with their counts and suggested codes."""
    hub = open_hub(ctx)
    queue = review_queue(hub, dataset)
    columns = ["dataset", "field", "source_column", "value", "rows", "suggestions"]
    if fmt != "table":
        rows = [[e.dataset, e.field, e.source_column, e.value, e.rows,
                 [{"code": s.code, "label": s.label, "score": s.score, "via": s.via} for s in e.suggestions]]
                for e in queue]
        click.echo(output.render(columns, rows, fmt))
        return
    rows = [[e.dataset, e.field, e.source_column, e.value, e.rows,
             "; ".join(f"{s.code} {s.score:.2f}" for s in e.suggestions) or "-"] for e in queue]
    click.echo(output.table(columns, rows))
    for name in sorted({e.dataset for e in queue} | ({dataset} if dataset else set())):
        for field_name, stats in coverage(hub, name).items():
            if stats.get("values"):
                click.echo(f"{name}.{field_name}: {stats['mapped']} of {stats['values']} values mapped "
                           f"({stats['share_mapped']:.1%})")
    if queue:
        click.echo("\naccept a mapping (then `twinhub run DATASET` publishes the rows):")
        for e in queue[:10]:
            click.echo(f"  {e.accept_command()}")
    else:
        click.echo("\nnothing to review: every label value was mapped")


@labels.command("accept")
@click.argument("dataset")
@click.argument("field_name", metavar="FIELD")
@click.argument("value")
@click.argument("code")
@click.option("--match", type=click.Choice(MATCH_TYPES), default="exact", show_default=True,
              help="exact: the same concept; close: nearly; broader: the code is broader than the value.")
@click.option("--crosswalk", "crosswalk_name",
              help="Crosswalk to write (default: the first one the manifest names for FIELD, else the dataset's own).")
@click.option("--note", default="", help="Why, for the crosswalk file.")
@click.pass_context
def labels_accept(ctx: click.Context, dataset: str, field_name: str, value: str, code: str, match: str,
                  crosswalk_name: str | None, note: str) -> None:
    """Map VALUE of DATASET's FIELD to vocabulary CODE in a crosswalk file."""
    hub = open_hub(ctx)
    entry = lookup(hub, dataset)
    vocabulary = hub.pack.vocabulary(_field_vocabulary(hub, entry, field_name))
    problem = code_problem(vocabulary, code)
    if problem:
        close = [s.code for s in suggest(code, vocabulary)]
        raise StandardsError(problem + (f" (did you mean {', '.join(close)}?)" if close else ""))
    names, _ = crosswalk_files.split_spec(entry.manifest.labels.get(field_name, {}))
    target = crosswalk_name or (names[0] if names else crosswalk_files.dataset_crosswalk_name(dataset, field_name))
    path, written = crosswalk_files.add_mapping(hub.pack, hub.home, target, vocabulary.name, value, code, match, note)
    held = sum(n for (_, f, _, v), n in _held_values(hub, dataset).items()
               if f == field_name and normalize(v) == normalize(value))
    click.echo(f"{value!r} -> {code} ({match}) is in crosswalk {written.ref}: {path}")
    if not names and not crosswalk_name:
        click.echo(f"(the dataset's own crosswalk: the hub applies it to {dataset}.{field_name} automatically)")
    click.echo(f"`twinhub run {dataset}` publishes the {held} row(s) held back for it" if held
               else "no rows are held back for this value in the latest publish")
