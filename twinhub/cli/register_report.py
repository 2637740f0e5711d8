"""The guided registration's report for a person: profile, CRS, standard, fields, labels, dry run."""

from __future__ import annotations

import json

from twinhub.cli import output
from twinhub.guided.dryrun import DryRun
from twinhub.guided.guide import Proposal

LABEL_ROWS = 8  # draft values shown per field (the draft file has them all)


def _profile(proposal: Proposal) -> list[str]:
    p = proposal.profile
    geometry = ", ".join(p.geometry_columns) or ("the source's own" if p.geometry_type else "none")
    head = [f"source: {p.describe}", f"sampled {p.rows_sampled} rows; encoding {p.encoding or 'n/a'}; "
            f"geometry: {geometry} ({p.geometry_type or 'no geometry'})"]
    rows = [[c.name, c.type, f"{c.null_share:.0%}", c.distinct, "yes" if c.unique else "", ", ".join(c.examples),
             p.looks.get(c.name, "")] for c in p.columns]
    lines = head + ["", output.table(["column", "type", "blank", "distinct", "unique", "examples", "looks like"], rows)]
    return lines + [f"personal data: {line}" for line in privacy_lines(p.privacy)]


def privacy_lines(found: dict) -> list[str]:
    """One line per source column holding personal data (redacted examples)."""
    return [f"column {column} holds " + ", ".join(f"{kind} in {f['values']} values (e.g. {', '.join(f['examples'][:2])})"
                                                  for kind, f in kinds.items())
            for column, kinds in found.items()]


def _crs(proposal: Proposal) -> list[str]:
    choice = proposal.profile.crs
    if choice.how == "declared":
        lines = ["CRS: declared by the source"]
    elif choice.how == "none":
        lines = ["CRS: none (no geometry)"]
    else:
        how = [choice.how] + ([f"confidence {choice.confidence:.0%}"] if choice.how == "detected" else [])
        how += [f"decided by the hub's evidence: {' and '.join(choice.decided_by)}"] if choice.decided_by else []
        lines = [f"CRS: {choice.crs} ({', '.join(how)})"]
    lines += [f"  evidence: {e}" for e in choice.evidence]
    if choice.candidates:
        rows = [[i, c.crs, c.title, "yes" if c.swapped else "", f"{c.inside_share:.0%}", f"{c.confidence:.0%}",
                 ", ".join(c.alike[:3])] for i, c in enumerate(choice.candidates, 1)]
        lines += ["", output.table(["rank", "crs", "title", "x/y swapped", "inside city", "confidence", "alike"], rows)]
    if choice.how == "detected" and not choice.sure:
        lines.append("  TODO: several CRSs fit equally well; confirm with the data's owner (or give --crs)")
    return lines


def _standards(proposal: Proposal) -> list[str]:
    chosen = proposal.scores[0]
    rows = [[s.standard.ref, f"{s.score:.0%}", "chosen" if s is chosen else ""] for s in proposal.scores]
    lines = [f"standard: {chosen.standard.ref} ({chosen.standard.title})", "",
             output.table(["standard", "fit", ""], rows)]
    lines += [f"  note: {n}" for n in chosen.notes]
    rows = [[m.field, "yes" if m.required else "", _mapped(m.value), f"{m.confidence:.2f}",
             ("" if m.sure or not m.column else "TODO ") + m.why] for m in chosen.mappings]
    return lines + ["", output.table(["field", "required", "column", "confidence", "why"], rows)]


def _mapped(value: str | dict | None) -> str:
    """A field's mapping as the manifest writes it: the column, or the derived mapping in flow style."""
    if value is None:
        return "-"
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _labels(proposal: Proposal) -> list[str]:
    lines = []
    for d in proposal.drafts:
        todo = len(d.unfilled)
        lines.append(f"labels {d.field} ({d.column} -> {d.vocabulary}): {len(d.entries)} values, "
                     f"{len(d.entries) - todo} mapped, {todo} to fill")
        rows = [[e.value, e.rows, e.code or "?", e.how, e.note] for e in sorted(d.entries, key=lambda e: -e.rows)]
        lines += [output.table(["value", "rows", "code", "how", "note"], rows[:LABEL_ROWS])]
        if len(rows) > LABEL_ROWS:
            lines.append(f"  … {len(rows) - LABEL_ROWS} more in the crosswalk draft")
        lines.append("")
    return lines


def dry_run_lines(result: DryRun, unfilled: dict[str, int] | None = None) -> list[str]:
    lines = [f"dry run: {result.rows_read} rows read: {result.would_publish} would publish, "
             f"{result.would_quarantine} would be quarantined ({result.seconds:.1f} s; nothing was published)"]
    for r in result.reasons:
        first = r["examples"][0] if r["examples"] else {}
        examples = ", ".join(f"row {x['source_row']} {x['value']!r}" for x in r["examples"])
        lines.append(f"  {r['check']} {r['column'] or ''}: {r['rows']} rows: {first.get('message') or ''}")
        lines.append(f"      e.g. {examples}")
    for name, n in (unfilled or {}).items():
        if n:
            lines.append(f"  {name}: {n} values in the crosswalk draft are still \"?\"")
    return lines


def tier_lines(manifest: dict, hub=None) -> list[str]:
    """The tier the manifest declares (classification raised by its columns) and whether registering it
    waits for a steward (twinhub/review.py: a new sensitive dataset, or a change to an approved one)."""
    from twinhub.hub.manifest import ManifestError, parse_manifest
    from twinhub.hub.review import review_reasons

    try:
        parsed = parse_manifest(dict(manifest), "proposal")
    except ManifestError:
        return []  # its problems are listed below
    if hub is None:
        return [f"tier: {parsed.tier}"]
    from twinhub.hub.registry import lookup

    try:
        approved = lookup(hub, parsed.id).manifest
    except ManifestError:
        approved = None
    reasons = review_reasons(hub, parsed, approved)
    if reasons:
        return [f"tier: {parsed.tier}: registering it waits for a steward's review ({'; '.join(reasons)}); "
                "it does not run until approved"]
    return [f"tier: {parsed.tier}: registering it needs no review"]


def render(proposal: Proposal, hub=None) -> str:
    """The whole report as text."""
    parts: list[str] = []
    if proposal.profile is not None:
        parts += _profile(proposal) + [""] + _crs(proposal) + [""] + _standards(proposal) + [""] + _labels(proposal)
    else:
        parts.append(f"{proposal.id} ({proposal.manifest['standard']}, {proposal.manifest['source'].get('format')} source)")
    if proposal.dry_run is not None:
        parts += dry_run_lines(proposal.dry_run, proposal.unfilled)
    parts += tier_lines(proposal.manifest, hub)
    if proposal.problems:
        parts += ["", "before it can be registered:"] + [f"  - {k}: {v}" for k, v in proposal.problems.items()]
    return "\n".join(parts)
