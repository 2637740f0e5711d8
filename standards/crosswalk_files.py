"""Crosswalk files: which ones a dataset uses, and writing an accepted mapping into one.

A manifest's ``labels`` give, per field, any mix of crosswalk names and inline
values (later ones win)::

    labels:
      category: civil_affairs_facility_types            # one shared crosswalk
      district: [shanghai_districts, {老闸北: "310106"}]  # a crosswalk, then inline values
      status: {open: open, closed: closed}              # inline values only

Crosswalks are found in the hub home's ``crosswalks/`` folder first, then in the
standards pack's. Mappings accepted from the review queue for a field that names
no crosswalk go to the dataset's own crosswalk ``<department>.<dataset>.<field>``
in the hub home, which the hub applies to that field automatically.
"""

from __future__ import annotations

import datetime as dt
import difflib
import pathlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import yaml

from twinhub.standards.labels import normalize
from twinhub.standards.pack import (
    DEFAULT_PACK,
    MATCH_TYPES,
    Crosswalk,
    StandardsError,
    StandardsPack,
    Vocabulary,
    code_problem,
    load_crosswalk,
    load_crosswalks,
)

HOME_FOLDER = "crosswalks"  # under the hub home
LabelSpec = str | Mapping[str, str] | list  # what a manifest may write for one field


@dataclass(frozen=True)
class FieldLabels:
    """Where one field's labels come from, in order of precedence (last wins)."""

    crosswalks: tuple[Crosswalk, ...] = ()
    inline: dict[str, str] = field(default_factory=dict)

    @property
    def refs(self) -> list[str]:
        return [c.ref for c in self.crosswalks]


def split_spec(spec: LabelSpec) -> tuple[list[str], dict[str, str]]:
    """Crosswalk names and inline values of one field's ``labels`` entry."""
    items = spec if isinstance(spec, list) else [spec]
    names: list[str] = []
    inline: dict[str, str] = {}
    for item in items:
        if isinstance(item, str):
            names.append(item)
        elif isinstance(item, Mapping):
            inline.update({str(k): str(v) for k, v in item.items()})
        else:
            raise StandardsError(f"{item!r}: give a crosswalk name or a mapping of values to codes")
    return names, inline


def dataset_crosswalk_name(dataset_id: str, field_name: str) -> str:
    return f"{dataset_id}.{field_name}"


def available(pack: StandardsPack, home: pathlib.Path | None) -> dict[str, Crosswalk]:
    """The pack's crosswalks, overlaid by the hub home's (a home copy of a pack crosswalk wins)."""
    found = dict(pack.crosswalks)
    if home is not None:
        found.update(load_crosswalks(pathlib.Path(home) / HOME_FOLDER, pack.vocabularies))
    return found


def resolve(
    labels: Mapping[str, LabelSpec],
    vocabularies: Mapping[str, str | Vocabulary],
    pack: StandardsPack,
    home: pathlib.Path | None = None,
    dataset_id: str | None = None,
) -> tuple[dict[str, FieldLabels], dict[str, str]]:
    """Each vocabulary field's label sources, and problems keyed by manifest key.

    ``vocabularies`` maps field -> vocabulary (or its name in the pack): the standard's,
    a manifest's bindings and text ``enum`` fields as inline vocabularies
    (:func:`twinhub.standards.pack.field_vocabularies`). A problem never stops the
    resolution of the other fields, so a manifest check can report them all.
    """
    known = available(pack, home)
    resolved: dict[str, FieldLabels] = {}
    problems: dict[str, str] = {}
    for field_name, spec in labels.items():
        key = f"labels.{field_name}"
        if field_name not in vocabularies:
            hint = difflib.get_close_matches(field_name, list(vocabularies), n=1)
            problems[key] = "not a field with a vocabulary or a text enum" + (
                f" (did you mean {hint[0]!r}?)" if hint else f" (fields with one: {', '.join(sorted(vocabularies)) or 'none'})"
            )
            continue
        try:
            names, inline = split_spec(spec)
        except StandardsError as exc:
            problems[key] = str(exc)
            continue
        vocabulary = _vocabulary(vocabularies[field_name], pack)
        chosen = []
        for name in names:
            crosswalk = known.get(name)
            if crosswalk is None:
                hint = difflib.get_close_matches(name, list(known), n=1)
                problems[key] = f"no crosswalk {name!r}" + (
                    f" (did you mean {hint[0]!r}?)" if hint else
                    f"; put {name}.yaml in the standards pack's crosswalks/ or the hub home's crosswalks/"
                )
            elif crosswalk.vocabulary != vocabulary.name:  # an enum takes inline values only
                problems[key] = (f"crosswalk {name!r} maps to vocabulary {crosswalk.vocabulary}, "
                                 f"but field {field_name} uses {vocabulary.name}")
            else:
                chosen.append(crosswalk)
        for value, code in inline.items():
            problem = code_problem(vocabulary, code)
            if problem:
                problems[f"{key}.{value}"] = problem
        resolved[field_name] = FieldLabels(tuple(chosen), inline)
    if dataset_id is not None:
        for field_name, vocabulary in vocabularies.items():
            own = known.get(dataset_crosswalk_name(dataset_id, field_name))
            if own is not None and own.vocabulary == _vocabulary(vocabulary, pack).name:
                current = resolved.get(field_name, FieldLabels())
                resolved[field_name] = FieldLabels((*current.crosswalks, own), current.inline)
    return resolved, problems


def _vocabulary(vocabulary: str | Vocabulary, pack: StandardsPack) -> Vocabulary:
    return vocabulary if isinstance(vocabulary, Vocabulary) else pack.vocabulary(vocabulary)


# --------------------------------------------------------------------------- accepting a mapping


def _bump(version: str) -> str:
    parts = version.split(".")
    if parts and parts[-1].isdigit():
        return ".".join([*parts[:-1], str(int(parts[-1]) + 1)])
    return version + ".1"


def _entry_line(value: str, code: str, match: str, note: str) -> str:
    entry = {"value": value, "code": code, "match": match, **({"note": note} if note else {})}
    return yaml.safe_dump(entry, default_flow_style=True, allow_unicode=True, width=10_000, sort_keys=False).strip()


def _append(text: str, line: str) -> str | None:
    """``text`` with ``line`` appended to its ``mappings`` list, comments kept; None if it cannot."""
    lines = text.rstrip("\n").split("\n")
    top = [i for i, ln in enumerate(lines) if re.match(r"^[A-Za-z_][\w-]*\s*:", ln)]
    if not top or not lines[top[-1]].startswith("mappings"):
        return None
    head = lines[top[-1]]
    if re.match(r"^mappings\s*:\s*(\[\s*\])?\s*(#.*)?$", head) is None:
        return None
    lines[top[-1]] = "mappings:"
    items = [ln for ln in lines[top[-1] + 1:] if ln.lstrip().startswith("- ")]
    indent = items[0][: len(items[0]) - len(items[0].lstrip())] if items else "  "
    return "\n".join(lines) + f"\n{indent}- {line}\n"


def _set_version(text: str, version: str) -> str:
    return re.sub(r"(?m)^version\s*:.*$", f"version: {yaml.safe_dump(version).strip().splitlines()[0]}", text, count=1)


def add_mapping(
    pack: StandardsPack,
    home: pathlib.Path,
    crosswalk_name: str,
    vocabulary_name: str,
    value: str,
    code: str,
    match: str = "exact",
    note: str = "",
) -> tuple[pathlib.Path, Crosswalk]:
    """Add ``value -> code`` to crosswalk ``crosswalk_name``, bumping its patch version.

    The crosswalk's own file is edited in place (its comments kept), unless it
    ships inside twinhub, in which case a copy in ``<home>/crosswalks`` is
    written and wins from then on. A crosswalk that does not exist yet is
    created in the hub home. Raises StandardsError (nothing written) if the
    value is already mapped to another code, or the code is not a current code.
    """
    vocabulary = pack.vocabulary(vocabulary_name)
    if match not in MATCH_TYPES:
        raise StandardsError(f"match {match!r} is not one of {', '.join(MATCH_TYPES)}")
    problem = code_problem(vocabulary, code)
    if problem:
        raise StandardsError(problem)
    existing = available(pack, home).get(crosswalk_name)
    for entry in existing.entries if existing else ():
        if normalize(entry.value) == normalize(value):
            if entry.code == code:
                return existing.path, existing  # already there: nothing to do
            raise StandardsError(
                f"crosswalk {crosswalk_name} ({existing.path}) already maps {entry.value!r} to {entry.code!r}; "
                "edit that file to change it"
            )
    today = dt.date.today().isoformat()
    note = note or f"accepted {today} from the label review queue"
    line = _entry_line(value, code, match, note)
    home_path = pathlib.Path(home) / HOME_FOLDER / f"{crosswalk_name}.yaml"
    if existing is not None and existing.path is not None and not _shipped(existing.path):
        target, old = existing.path, existing.path.read_text(encoding="utf-8")
    elif existing is not None and existing.path is not None:
        target, old = home_path, existing.path.read_text(encoding="utf-8")
    else:
        target, old = home_path, None
    if old is None:
        new = _new_crosswalk(crosswalk_name, vocabulary_name, line)
    else:
        appended = _append(old, line)
        if appended is None:  # mappings is not the last key: rewrite it (comments are lost)
            data = yaml.safe_load(old)
            data["mappings"] = [*(data.get("mappings") or []), yaml.safe_load(line)]
            appended = yaml.safe_dump(data, allow_unicode=True, sort_keys=False)
        new = _set_version(appended, _bump(existing.version))
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".yaml.tmp")
    tmp.write_text(new, encoding="utf-8")
    try:
        written = load_crosswalk(tmp, pack.vocabularies)
    except StandardsError:
        tmp.unlink()
        raise
    tmp.replace(target)
    return target, Crosswalk(written.name, written.version, written.vocabulary, written.title, written.entries, target)


def _shipped(path: pathlib.Path) -> bool:
    return pathlib.Path(path).resolve().is_relative_to(DEFAULT_PACK.resolve())


def _new_crosswalk(name: str, vocabulary: str, line: str) -> str:
    return (
        f"# Crosswalk written by `twinhub labels accept`; edit freely (keep mappings last).\n"
        f"name: {yaml.safe_dump(name).strip().splitlines()[0]}\n"
        f"version: 1.0.0\n"
        f"vocabulary: {vocabulary}\n"
        f"title: Mappings accepted for {name}\n"
        f"mappings:\n"
        f"  - {line}\n"
    )
