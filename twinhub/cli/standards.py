"""``twinhub standards``: the city's shared standards, changes to them, and how datasets score."""

from __future__ import annotations

import datetime as dt
import json
import pathlib
from collections import defaultdict

import click

from twinhub.catalog.info import last_published
from twinhub.cli import output
from twinhub.cli.options import format_option, open_hub
from twinhub.connectors import open_source
from twinhub.hub.home import Hub
from twinhub.hub.manifest import Manifest, load_manifest, source_policy
from twinhub.hub.registry import registered
from twinhub.standards import compat, crosswalk_files
from twinhub.standards.crs_detect import rank_crs_of_geometries
from twinhub.standards.pack import Standard, StandardsError, field_vocabularies, version_key
from twinhub.standards.score import combine, rescore


@click.group("standards")
def standards() -> None:
    """The city's shared standards: list and show them, check a change, score datasets."""


@standards.command("list")
@click.pass_context
def standards_list(ctx: click.Context) -> None:
    """Standards (every version on disk), vocabularies and crosswalks of the hub's pack."""
    pack = open_hub(ctx).pack
    click.echo(f"standards pack: {pack.root}\n")
    rows = [[s.name, ", ".join(sorted(pack.versions.get(s.name, {s.version: s}), key=version_key)), s.title,
             len(s.fields), s.geometry_field.custom.get("geometryType") if s.geometry_field else None]
            for s in sorted(pack.standards.values(), key=lambda s: s.name)]
    click.echo(output.table(["standard", "versions", "title", "fields", "geometry"], rows))
    rows = [[v.name, v.version, v.title, len(v.codes), len(v.concepts) - len(v.codes)]
            for v in sorted(pack.vocabularies.values(), key=lambda v: v.name)]
    click.echo("\n" + output.table(["vocabulary", "version", "title", "codes", "outdated"], rows))
    found = crosswalk_files.available(pack, open_hub(ctx).home)
    rows = [[c.name, c.version, c.vocabulary, len(c.entries), str(c.path)] for c in sorted(found.values(), key=lambda c: c.name)]
    click.echo("\n" + output.table(["crosswalk", "version", "vocabulary", "mappings", "file"], rows))


@standards.command("show")
@click.argument("ref")
@format_option
@click.pass_context
def standards_show(ctx: click.Context, ref: str, fmt: str) -> None:
    """Show standard REF (name, or name@version): every field with its rules."""
    standard = open_hub(ctx).pack.standard(ref)
    rows = []
    for f in standard.fields:
        rules = {k: v for k, v in f.constraints.items() if k not in ("required", "unique")}
        rows.append([f.name, f.custom.get("geometryType") or f.type, standard.required(f),
                     bool(f.constraints.get("unique")), f.custom.get("unit"), f.custom.get("vocabulary"),
                     json.dumps(rules, ensure_ascii=False) if rules else None, f.description])
    if fmt == "table":
        click.echo(f"{standard.ref}: {standard.title}\n{standard.description.strip()}\nkey: {standard.primary_key}\n")
    click.echo(output.render(["field", "type", "required", "unique", "unit", "vocabulary", "rules", "description"],
                             rows, fmt))


@standards.command("vocabulary")
@click.argument("name")
@format_option
@click.pass_context
def standards_vocabulary(ctx: click.Context, name: str, fmt: str) -> None:
    """Show vocabulary NAME: its version and every code, with the codes this hub's stewards accepted."""
    import yaml

    hub = open_hub(ctx)
    vocabulary = hub.pack.vocabulary(name)
    overlay = hub.home / "vocabularies" / f"{name}.yaml"
    added = {str(c["code"]): c for c in (yaml.safe_load(overlay.read_text(encoding="utf-8")) or {}).get("concepts", [])
             } if overlay.is_file() else {}
    rows = []
    for c in vocabulary.concepts:
        a = added.get(c.code)
        origin = (f"accepted by {a['accepted_by']} at {a['accepted_at']} (proposed by {a['proposed_by']} for "
                  f"{a['department']})") if a else "pack"
        rows.append([c.code, " / ".join(c.labels.values()), ", ".join(c.synonyms), c.broader,
                     f"replaced by {c.replaced_by}" if c.outdated else "", origin])
    if fmt == "table":
        click.echo(f"{vocabulary.name} {vocabulary.version}: {vocabulary.title}\n")
    click.echo(output.render(["code", "labels", "synonyms", "broader", "outdated", "origin"], rows, fmt))


# --------------------------------------------------------------------------- check


def _manifest_problems(hub: Hub, manifest: Manifest, standard: Standard) -> list[str]:
    """What the registered manifest would fail against ``standard`` as it is on disk now."""
    problems = [f"fields.{name}: {standard.name} {standard.version} has no such field"
                for name in manifest.fields if name not in standard.field_names]
    problems += [f"fields.{f.name}: now required by {standard.ref}; map it to a source column"
                 for f in standard.attribute_fields if standard.required(f) and f.name not in manifest.fields]
    vocabularies = field_vocabularies(standard, hub.pack, manifest.vocabularies, manifest.labels)  # enums, bindings
    _, label_problems = crosswalk_files.resolve(manifest.labels, vocabularies, hub.pack, hub.home)
    return problems + [f"{k}: {v}" for k, v in label_problems.items()]


def _affected(hub: Hub, dataset: str, new: Standard, changes: list[compat.Change]) -> dict[str, int]:
    """Published rows each breaking change would quarantine on the next run (where it can be counted)."""
    department, name = dataset.split(".", 1)
    con = hub.lake.connect(read_only=True)
    try:
        return compat.affected_rows(con, department, name, new, changes, hub.pack)
    finally:
        con.close()


def check_dataset(hub: Hub, entry) -> dict:
    """One registered dataset against the pack on disk: changes since its last publish, breaking or not."""
    manifest = entry.manifest
    result = {"dataset": entry.id, "published_with": None, "now": None, "status": "ok", "changes": [],
              "versioning": None, "affected_rows": {}}
    try:
        new = hub.pack.standard(manifest.standard)
    except StandardsError as exc:
        return {**result, "status": "breaks", "changes": [{"field": None, "kind": "standard_missing",
                                                           "breaking": True, "message": str(exc)}]}
    result["now"] = new.ref
    problems = _manifest_problems(hub, manifest, new)
    result["changes"] = [{"field": None, "kind": "manifest", "breaking": True, "message": p} for p in problems]
    run = last_published(hub.lake, entry.id)
    details = json.loads(run["details"]) if run and run.get("details") else {}
    used = details.get("standard") or {}
    if run is None:
        result["status"] = "breaks" if problems else "not published yet"
        return result
    result["published_with"] = f"{run.get('standard')}@{run.get('standard_version')}"
    old = compat.recall(hub.home / compat.FOLDER, used["snapshot"]) if used.get("snapshot") else None
    if old is None:
        same = used.get("digest") == new.digest
        result["status"] = "breaks" if problems else ("ok" if same else "unknown")
        if not same:
            result["changes"].append({"field": None, "kind": "no_copy", "breaking": False,
                                      "message": "no copy of the standard it was published with; run it once to record one"})
        return result
    changes = compat.compare(old, new, hub.pack)
    result["changes"] += [c.as_dict() for c in changes]
    result["versioning"] = compat.versioning_problem(old, new, changes)
    result["affected_rows"] = _affected(hub, entry.id, new, changes)
    breaking = problems or any(c.breaking for c in changes)
    result["status"] = "breaks" if breaking else ("compatible changes" if changes else "ok")
    return result


@standards.command("check")
@format_option
@click.pass_context
def standards_check(ctx: click.Context, fmt: str) -> None:
    """Report which registered datasets the standards on disk would break, before a run applies them.

    Compares each dataset's standard as it was last published with the pack on
    disk. Exits 1 when a dataset would break.
    """
    hub = open_hub(ctx)
    results = [check_dataset(hub, entry) for entry in registered(hub)]
    if fmt == "json":
        click.echo(json.dumps(results, ensure_ascii=False, indent=2))
    else:
        rows = []
        for r in results:
            messages = [("BREAKS " if c["breaking"] else "") + c["message"]
                        + (f" ({r['affected_rows'][c['message']]} published rows)" if c["message"] in r["affected_rows"] else "")
                        for c in r["changes"]] + ([r["versioning"]] if r["versioning"] else [])
            rows.append([r["dataset"], r["published_with"], r["now"], r["status"], messages[0] if messages else None])
            rows += [[None, None, None, None, m] for m in messages[1:]]
        click.echo(output.render(["dataset", "published with", "on disk", "status", "changes"], rows, fmt))
        broken = [r["dataset"] for r in results if r["status"] == "breaks"]
        if fmt == "table":
            click.echo(f"\n{len(broken)} of {len(results)} registered datasets would break"
                       + (f": {', '.join(broken)}" if broken else ""))
    if any(r["status"] == "breaks" for r in results):
        ctx.exit(1)


# --------------------------------------------------------------------------- score


def dataset_scores(hub: Hub, datasets: tuple[str, ...] = (), now: dt.datetime | None = None) -> list[dict]:
    """Each dataset's latest published score, freshness as of ``now``."""
    now = now or dt.datetime.now(dt.timezone.utc)
    weights = dict(hub.pack.city.score_weights)
    scores = []
    for entry in registered(hub):
        if datasets and entry.id not in datasets:
            continue
        run = last_published(hub.lake, entry.id)
        details = json.loads(run["details"]) if run and run.get("details") else {}
        current = rescore(details, weights, now) if details.get("score") else combine({}, weights)
        scores.append({"dataset": entry.id, "department": entry.manifest.department, **current,
                       "published_at": run.get("finished_at") if run else None})
    return scores


@standards.command("score")
@click.argument("datasets", nargs=-1)
@format_option
@click.pass_context
def standards_score(ctx: click.Context, datasets: tuple[str, ...], fmt: str) -> None:
    """The interoperability score of each dataset (latest publish) and of each department."""
    hub = open_hub(ctx)
    scores = dataset_scores(hub, datasets)
    parts = ["schema", "labels", "crs", "completeness", "freshness"]
    rows = [[s["dataset"], s["score"], *[(s["parts"] or {}).get(p) for p in parts], s["published_at"]] for s in scores]
    by_department = defaultdict(list)
    for s in scores:
        if s["score"] is not None:
            by_department[s["department"]].append(s["score"])
    departments = [[d, len(v), round(sum(v) / len(v), 1)] for d, v in sorted(by_department.items())]
    if fmt == "json":
        click.echo(json.dumps({"datasets": scores, "departments": [dict(zip(["department", "datasets", "score"], d))
                                                                   for d in departments]},
                              ensure_ascii=False, indent=2, default=str))
        return
    click.echo(output.render(["dataset", "score", *parts, "published_at"], rows, fmt))
    if fmt == "table":
        click.echo("\n" + output.table(["department", "datasets", "score"], departments))
        click.echo("\nparts are shares 0..1; the score is 100 x their weighted mean (docs/standards.md)")


# --------------------------------------------------------------------------- crs


@standards.command("crs")
@click.argument("manifest_path", metavar="MANIFEST", type=click.Path(exists=True, dir_okay=False, path_type=pathlib.Path))
@format_option
@click.pass_context
def standards_crs(ctx: click.Context, manifest_path: pathlib.Path, fmt: str) -> None:
    """Rank the CRSs MANIFEST's coordinates could be in, against the city (nothing is applied)."""
    hub = open_hub(ctx)
    manifest = load_manifest(manifest_path)
    folder = manifest_path.resolve().parent
    connector = open_source(manifest.source, folder, policy=source_policy(hub, manifest.department, folder))
    connector.check()
    first = next(iter(connector.chunks(2_000)), None)
    candidates = rank_crs_of_geometries(first.geometry if first is not None and first.geometry is not None else [],
                                        hub.pack.city, hub.target_crs)
    declared = manifest.source.get("crs") or connector.crs()
    if fmt == "json":
        click.echo(json.dumps({"declared": declared, "candidates": [c.as_dict() for c in candidates]},
                              ensure_ascii=False, indent=2))
        return
    if fmt == "table":
        click.echo(f"declared: {declared or 'nothing (source.crs is not set and the source declares none)'}")
    rows = [[i, c.crs, c.title, "yes" if c.swapped else "", f"{c.inside_share:.0%}", f"{c.confidence:.0%}",
             ", ".join(c.alike[:3]), c.note] for i, c in enumerate(candidates, 1)]
    click.echo(output.render(["rank", "crs", "title", "x/y swapped", "inside city", "confidence", "alike", "note"],
                             rows, fmt))
    if fmt == "table" and not candidates:
        click.echo("no known CRS puts these coordinates inside the city: ask the data's owner (a local grid?)")


def register(main: click.Group) -> None:
    """Add ``standards`` and ``labels`` to the CLI (one line in twinhub/cli.py)."""
    from twinhub.cli.labels import labels

    main.add_command(standards)
    main.add_command(labels)
