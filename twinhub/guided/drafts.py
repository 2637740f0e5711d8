"""Crosswalk drafts: a label field's values for the department to map, beside the proposed manifest.

A draft is a crosswalk file (standards/crosswalk_files.py's format) named after the
dataset's own crosswalk, ``<department>.<dataset>.<field>.yaml``, whose entries may
still say ``code: "?"``. Those are skipped when the draft is applied (their rows stay
in quarantine as ``label_unmapped``); the filled ones are checked against the
vocabulary. Registering with ``--yes`` installs the filled entries into the hub home's
``crosswalks/`` as the dataset's own crosswalk, which the hub applies automatically.
"""

from __future__ import annotations

import datetime as dt
import json
import pathlib

import yaml

from twinhub.guided.propose import LabelDraft
from twinhub.guided.source import GuidedError
from twinhub.standards import crosswalk_files
from twinhub.standards.labels import normalize
from twinhub.standards.pack import Crosswalk, CrosswalkEntry, StandardsError, StandardsPack, code_problem

UNFILLED = "?"


def draft_name(dataset_id: str, field_name: str) -> str:
    return crosswalk_files.dataset_crosswalk_name(dataset_id, field_name)


def draft_path(folder: pathlib.Path, dataset_id: str, field_name: str) -> pathlib.Path:
    return pathlib.Path(folder) / f"{draft_name(dataset_id, field_name)}.yaml"


def _q(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)  # JSON scalars are YAML scalars


def draft_text(dataset_id: str, draft: LabelDraft, pack: StandardsPack) -> str:
    """The draft file: every value the vocabulary does not map, with a code or "?"."""
    vocabulary = pack.vocabulary(draft.vocabulary)
    codes = ", ".join(c.code for c in vocabulary.concepts if not c.outdated)
    known = [e for e in draft.entries if e.how == "vocabulary"]
    lines = [
        f"# Crosswalk draft for field {draft.field} of {dataset_id} (source column {draft.column}),",
        f"# proposed by `twinhub register` on {dt.date.today().isoformat()}.",
        f"# Replace each \"?\" with a code of vocabulary {vocabulary.name}: {codes}",
        "# (match: exact, close or broader). Entries left at \"?\" are skipped: their rows stay",
        "# in quarantine as label_unmapped. Suggested codes were picked by similarity: check them.",
        f"# {len(known)} other values are codes, labels or synonyms of the vocabulary already"
        + (f" (e.g. {', '.join(_q(e.value) for e in known[:5])})." if known else "."),
        f"name: {_q(draft_name(dataset_id, draft.field))}",
        "version: 0.1.0",
        f"vocabulary: {vocabulary.name}",
        f"title: {_q(f'{dataset_id} {draft.field} values (draft)')}",
        "mappings:",
    ]
    for e in draft.entries:
        if e.how == "vocabulary":
            continue
        match = "close" if e.code else "exact"
        note = f"{e.rows} rows; {e.note}" if e.note else f"{e.rows} rows"
        lines.append(f"  - {{value: {_q(e.value)}, code: {_q(e.code or UNFILLED)}, match: {match}, note: {_q(note)}}}")
    if lines[-1] == "mappings:":
        lines[-1] = "mappings: []"
    return "\n".join(lines) + "\n"


def read_draft(path: pathlib.Path, pack: StandardsPack) -> tuple[Crosswalk, int]:
    """The draft's filled entries as a crosswalk, and how many are still "?"."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise GuidedError(f"{path}: cannot read the crosswalk draft: {exc}") from None
    vocabulary = pack.vocabularies.get(str(data.get("vocabulary")))
    if vocabulary is None:
        raise GuidedError(f"{path}: vocabulary: unknown vocabulary {data.get('vocabulary')!r}")
    entries, unfilled = [], 0
    for i, item in enumerate(data.get("mappings") or (), 1):
        if not isinstance(item, dict) or "value" not in item or "code" not in item:
            raise GuidedError(f"{path}: mappings[{i}]: each mapping needs a 'value' and a 'code'")
        code = str(item["code"] if item["code"] is not None else UNFILLED).strip()
        if code in ("", UNFILLED):
            unfilled += 1
            continue
        problem = code_problem(vocabulary, code)
        if problem:
            raise GuidedError(f"{path}: mappings[{i}] ({item['value']!r}): {problem}")
        entries.append(CrosswalkEntry(str(item["value"]), code, str(item.get("match") or "exact"),
                                      str(item.get("note") or "")))
    name = str(data.get("name") or path.stem)
    return Crosswalk(name, str(data.get("version") or "0.1.0"), vocabulary.name, str(data.get("title") or ""),
                     tuple(entries), path), unfilled


def drafts_beside(manifest_dir: pathlib.Path, dataset_id: str, vocabulary_fields: dict[str, str],
                  pack: StandardsPack) -> dict[str, tuple[Crosswalk, int]]:
    """The drafts found beside a manifest, per field."""
    found = {}
    for field_name in vocabulary_fields:
        path = draft_path(manifest_dir, dataset_id, field_name)
        if path.is_file():
            found[field_name] = read_draft(path, pack)
    return found


def install(home: pathlib.Path, draft: Crosswalk, pack: StandardsPack) -> pathlib.Path | None:
    """Write the draft's filled entries into the hub home's crosswalks (kept: entries accepted there since)."""
    existing = crosswalk_files.available(pack, home).get(draft.name)
    mine = {normalize(e.value) for e in draft.entries}
    kept = [e for e in (existing.entries if existing else ()) if normalize(e.value) not in mine]
    entries = [*kept, *draft.entries]
    if not entries:
        return None
    target = pathlib.Path(home) / crosswalk_files.HOME_FOLDER / f"{draft.name}.yaml"
    data = {"name": draft.name, "version": "1.0.0", "vocabulary": draft.vocabulary,
            "title": draft.title.replace(" (draft)", ""),
            "mappings": [{"value": e.value, "code": e.code, "match": e.match, **({"note": e.note} if e.note else {})}
                         for e in entries]}
    header = f"# Installed by `twinhub register --yes` from {draft.path}; `twinhub labels accept` adds to it.\n"
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".yaml.tmp")
    tmp.write_text(header + yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=10_000), encoding="utf-8")
    try:
        crosswalk_files.load_crosswalk(tmp, pack.vocabularies)
    except StandardsError as exc:
        tmp.unlink()
        raise GuidedError(f"{draft.path}: {exc}") from None
    tmp.replace(target)
    return target
