"""The proposed manifest as YAML a department can read and edit: every choice commented.

Each comment says why the choice was made, how sure the hub is, the other
candidates, and ``TODO`` where a person has to decide.
"""

from __future__ import annotations

import datetime as dt
import json
import pathlib

from twinhub.guided.inspect import Profile
from twinhub.guided.propose import LabelDraft, StandardScore

TODO = "TODO"


def _q(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)  # JSON scalars are YAML scalars


def relative_source(source: dict, manifest_dir: pathlib.Path | None) -> dict:
    """``source`` with its path relative to the manifest's folder (the registry makes it absolute again)."""
    if manifest_dir is None or "path" not in source:
        return source
    path = pathlib.Path(source["path"]).resolve()
    if not path.is_relative_to(manifest_dir.resolve()):
        return source  # elsewhere: the absolute path reads better than ../../..
    return {**source, "path": path.relative_to(manifest_dir.resolve()).as_posix()}


def _source_lines(source: dict, profile: Profile) -> list[str]:
    notes = {
        "encoding": "detected from the first bytes" if profile.encoding else "",
        "crs": _crs_note(profile),
    }
    for key in ("x", "y", "geometry"):
        if key in source and profile.located is not None:
            notes[key] = profile.located.note
    lines = ["source:"]
    for key, value in source.items():
        note = notes.get(key, "")
        lines.append(f"  {key}: {_q(value)}" + (f"  # {note}" if note else ""))
    if profile.encoding and "encoding" not in source and source.get("format") == "csv":
        lines.append(f"  # encoding: {_q(profile.encoding)}  # detected; the hub detects it on every run")
    if "crs" not in source and profile.crs.how == "declared":
        lines.append(f"  # crs: not needed: {'; '.join(profile.crs.evidence)}")
    return lines


def _crs_note(profile: Profile) -> str:
    choice = profile.crs
    if choice.how == "given":
        return "given with --crs"
    if choice.how != "detected":
        return ""
    if choice.decided_by:
        return f"the coordinate ranges tie; the hub's evidence ({', '.join(choice.decided_by)}) decides"
    others = ", ".join(f"{c.crs}{' swapped' if c.swapped else ''} {c.confidence:.0%}" for c in choice.candidates[1:4])
    text = f"detected from the coordinate ranges, confidence {choice.confidence:.0%}" + (f"; other candidates: {others}" if others else "")
    return (f"{TODO}: confirm with the data's owner; " if not choice.sure else "") + text


def _field_lines(chosen: StandardScore) -> list[str]:
    lines = ["fields:"]
    for m in chosen.mappings:
        need = "required" if m.required else "optional"
        if m.column is None:
            lines.append(f"  # {m.field}:   # {TODO + ': ' if m.required else ''}{need}; no column fits it")
            continue
        todo = f"{TODO}: check; " if not m.sure else ""
        lines.append(f"  {m.field}: {_q(m.value)}  # {todo}confidence {m.confidence:.2f}: {m.why}")
    return lines


def _privacy_lines(manifest: dict, profile: Profile, chosen: StandardScore) -> list[str]:
    """Personal data in the sample: mapped columns are declared under ``columns`` (docs/governance.md)."""
    by_column = {m.column: m.field for m in chosen.mappings if m.column}
    lines = []
    for column, kinds in profile.privacy.items():
        if column not in by_column:
            lines.append(f"# note: column {column} holds {', '.join(kinds)}; it is not mapped, so not published")
    declared = manifest.get("columns") or {}
    if declared:
        lines.append(f"columns:  # {TODO}: personal data found in the sample; protected (masked) unless you say otherwise")
        for field_name, policy in declared.items():
            lines.append(f"  {field_name}: {{personal_data: {_q(policy['personal_data'])}}}"
                         f"  # column {chosen.fields[field_name]}; protect: mask | pseudonymize | none")
    return lines


def _label_lines(dataset_id: str, drafts: list[LabelDraft]) -> list[str]:
    if not drafts:
        return ["labels: {}"]
    lines = ["labels: {}  # inline values or shared crosswalk names per field (docs/standards.md); drafts:"]
    for d in drafts:
        todo = len([e for e in d.entries if e.code is None])
        lines.append(f"  # {d.field} ({d.column}): crosswalk draft {dataset_id}.{d.field}.yaml beside this file, "
                     f"{todo} value(s) to fill" + (f" ({TODO})" if todo else ""))
    return lines


def _vocabulary_lines(manifest: dict) -> list[str]:
    """``vocabularies:`` free text fields whose values are a pack vocabulary's (districts)."""
    bound = manifest.get("vocabularies") or {}
    if not bound:
        return []
    return ["vocabularies:  # the values are this vocabulary's labels: outdated ones are mapped, unknown ones counted"] + [
        f"  {field_name}: {_q(name)}" for field_name, name in bound.items()]


def manifest_text(manifest: dict, profile: Profile, scores: list[StandardScore], drafts: list[LabelDraft],
                  command: str) -> str:
    """The manifest ``manifest`` (its keys) with comments from the profile and the scores."""
    chosen, others = scores[0], scores[1:4]
    dataset_id = f"{manifest['department']}.{manifest['dataset']}"
    runners = ", ".join(f"{s.standard.name} {s.score:.0%}" for s in others)
    lines = [
        f"# Manifest proposed by `{command}` on {dt.date.today().isoformat()}.",
        f"# Check every {TODO}, then:  twinhub register THIS_FILE --dry-run   (the dry run again)",
        "#                             twinhub register THIS_FILE --yes       (register it, with its crosswalk drafts)",
        f"department: {_q(manifest['department'])}",
        f"dataset: {_q(manifest['dataset'])}",
        f"title: {_q(manifest['title'])}",
        f"description: {_q(manifest.get('description', ''))}  # {TODO}: say what the data is, in markdown",
        f"standard: {_q(manifest['standard'])}  # fits {chosen.score:.0%} of its fields"
        + (f"; other standards: {runners}" if runners else ""),
        *(f"# note: {n}" for n in chosen.notes),
        *_source_lines(manifest["source"], profile),
        *_field_lines(chosen),
        *_privacy_lines(manifest, profile, chosen),
        *_label_lines(dataset_id, drafts),
        *_vocabulary_lines(manifest),
        f"classification: {_q(manifest.get('classification', 'internal'))}  # {TODO}: public | internal | sensitive | restricted",
        "# schedule: \"0 2 * * *\"   # cron in the city's timezone, to run it regularly",
        "# steward: data@department.example   # who answers for the data",
    ]
    return "\n".join(lines) + "\n"
