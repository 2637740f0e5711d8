"""Would a changed standard break the datasets published with an earlier one?

Each run records which standard it was conformed to; a copy of that standard
(its Table Schema and the codes of the vocabularies it uses) is kept by digest
in the hub home (``standards_used/``, see :func:`remember`). ``twinhub standards
check`` compares those copies with the standards pack on disk, field by field:

breaking (the next run quarantines rows that were published, or fails):
    a field removed (or renamed), a field made required, a narrower type,
    a narrower range, length or enumeration, a new or changed pattern, a new
    uniqueness rule, another geometry type, another vocabulary, a changed
    primary key, a vocabulary code removed;
compatible:
    a field added (not required), a wider type or range, a constraint dropped,
    a code added, a code replaced by another (its values move on the next run).

A breaking change should come with a new major version; the check says when it
does not. Where a registered check can say so in SQL (its ``sql`` form, for the
change kinds in its ``changes``), the check counts the published rows a breaking
change would quarantine (:func:`affected_rows`).
"""

from __future__ import annotations

import hashlib
import json
import pathlib
from dataclasses import dataclass

from sqlglot import exp

from twinhub.standards.checks import Context, registry
from twinhub.standards.pack import Standard, StandardsPack

FOLDER = "standards_used"  # under the hub home
# a value of the old type always reads as the new type
WIDER = {
    "integer": {"number", "string"},
    "number": {"string"},
    "boolean": {"string"},
    "date": {"datetime", "string"},
    "datetime": {"string"},
    "year": {"integer", "number", "string"},
}


@dataclass(frozen=True)
class Change:
    field: str | None
    kind: str
    breaking: bool
    message: str

    def as_dict(self) -> dict:
        return {"field": self.field, "kind": self.kind, "breaking": self.breaking, "message": self.message}


def snapshot(standard: Standard, pack: StandardsPack) -> dict:
    """The standard as a dataset was conformed to it: descriptor and vocabulary codes."""
    vocabularies = {}
    for f in standard.fields:
        name = f.custom.get("vocabulary")
        if name:
            v = pack.vocabulary(name)
            vocabularies[name] = {
                "version": v.version,
                "codes": [c.code for c in v.concepts],
                "replaced": {c.code: v.current(c.code) for c in v.concepts if c.outdated},
            }
    return {"name": standard.name, "version": standard.version, "digest": standard.digest,
            "descriptor": standard.schema.to_descriptor(), "vocabularies": vocabularies}


def remember(folder: pathlib.Path, standard: Standard, pack: StandardsPack) -> str:
    """Keep the snapshot in ``folder`` (once per content); returns its key for the run's details."""
    data = snapshot(standard, pack)
    text = json.dumps(data, sort_keys=True, ensure_ascii=False)
    key = f"{standard.name}@{standard.version}-{hashlib.sha256(text.encode()).hexdigest()[:16]}"
    path = pathlib.Path(folder) / f"{key}.json"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1, ensure_ascii=False), encoding="utf-8")
        tmp.replace(path)
    return key


def recall(folder: pathlib.Path, key: str) -> dict | None:
    path = pathlib.Path(folder) / f"{key}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _fields(descriptor: dict) -> dict[str, dict]:
    return {f["name"]: f for f in descriptor.get("fields", [])}


def _required(descriptor: dict, f: dict) -> bool:
    return bool((f.get("constraints") or {}).get("required")) or f["name"] in (descriptor.get("primaryKey") or [])


def _constraint_changes(name: str, old: dict, new: dict) -> list[Change]:
    a, b = old.get("constraints") or {}, new.get("constraints") or {}
    changes = []

    def add(kind: str, breaking: bool, message: str) -> None:
        changes.append(Change(name, kind, breaking, f"{name}: {message}"))

    for key, narrower in (("minimum", lambda o, n: n > o), ("minLength", lambda o, n: n > o),
                          ("maximum", lambda o, n: n < o), ("maxLength", lambda o, n: n < o)):
        if key in b and key not in a:
            add("range_narrowed", True, f"new {key} {b[key]!r}")
        elif key in a and key in b and a[key] != b[key]:
            try:
                breaking = narrower(a[key], b[key])
            except TypeError:
                breaking = True
            add("range_narrowed" if breaking else "range_widened", breaking, f"{key} {a[key]!r} -> {b[key]!r}")
        elif key in a and key not in b:
            add("range_widened", False, f"{key} {a[key]!r} dropped")
    if b.get("pattern") != a.get("pattern"):
        if b.get("pattern"):
            add("pattern_changed", True, f"pattern {a.get('pattern')!r} -> {b['pattern']!r}")
        else:
            add("pattern_dropped", False, f"pattern {a['pattern']!r} dropped")
    if "enum" in a or "enum" in b:
        removed = sorted(set(a.get("enum") or []) - set(b.get("enum") or [])) if "enum" in b else []
        if "enum" in b and "enum" not in a:
            add("enum_added", True, f"values must now be one of {b['enum']}")
        elif removed:
            add("enum_narrowed", True, f"enumeration lost {removed}")
        elif a.get("enum") != b.get("enum"):
            add("enum_widened", False, f"enumeration {a.get('enum')} -> {b.get('enum')}")
    if b.get("unique") and not a.get("unique"):
        add("unique_added", True, "values must now be unique")
    return changes


def _vocabulary_changes(name: str, vocabulary: str, old: dict | None, pack: StandardsPack) -> list[Change]:
    if old is None or vocabulary not in pack.vocabularies:
        return []
    current = pack.vocabulary(vocabulary)
    changes = []
    for code in old.get("codes", []):
        concept = current.concept(code)
        was_replaced = code in (old.get("replaced") or {})
        if concept is None and not was_replaced:
            changes.append(Change(name, "code_removed", True,
                                  f"{name}: code {code!r} was removed from vocabulary {vocabulary}"))
        elif concept is not None and concept.outdated and not was_replaced:
            changes.append(Change(name, "code_replaced", False,
                                  f"{name}: code {code!r} is now outdated; its values move to "
                                  f"{current.current(code)!r} on the next run"))
    added = sorted(set(current.codes) - set(old.get("codes", [])))
    if added:
        changes.append(Change(name, "code_added", False, f"{name}: vocabulary {vocabulary} gained {added}"))
    return changes


def compare(old: dict, new: Standard, pack: StandardsPack) -> list[Change]:
    """Changes from the snapshot ``old`` (see :func:`snapshot`) to ``new``, breaking ones first."""
    a, b = old["descriptor"], new.schema.to_descriptor()
    fa, fb = _fields(a), _fields(b)
    changes: list[Change] = []
    added = [n for n in fb if n not in fa]
    for name, f in fa.items():
        if name not in fb:
            similar = [n for n in added if fb[n].get("type") == f.get("type")]
            hint = f" (renamed to {similar[0]!r}?)" if len(similar) == 1 else ""
            changes.append(Change(name, "field_removed", True,
                                  f"{name}: field removed{hint}; manifests mapping it fail and its column disappears"))
            continue
        g = fb[name]
        if f.get("type") != g.get("type"):
            wider = g.get("type") in WIDER.get(f.get("type"), set())
            changes.append(Change(name, "type_widened" if wider else "type_narrowed", not wider,
                                  f"{name}: type {f.get('type')} -> {g.get('type')}"))
        if _required(b, g) and not _required(a, f):
            changes.append(Change(name, "required_added", True, f"{name}: now required"))
        elif _required(a, f) and not _required(b, g):
            changes.append(Change(name, "required_dropped", False, f"{name}: no longer required"))
        changes += _constraint_changes(name, f, g)
        if f.get("geometryType") != g.get("geometryType"):
            changes.append(Change(name, "geometry_type_changed", True,
                                  f"{name}: geometry type {f.get('geometryType')} -> {g.get('geometryType')}"))
        va, vb = f.get("vocabulary"), g.get("vocabulary")
        if va != vb:
            changes.append(Change(name, "vocabulary_changed", vb is not None,
                                  f"{name}: vocabulary {va} -> {vb}"))
        elif va:
            changes += _vocabulary_changes(name, va, (old.get("vocabularies") or {}).get(va), pack)
    for name in added:
        required = _required(b, fb[name])
        changes.append(Change(name, "field_added", required,
                              f"{name}: new {'required ' if required else ''}field"
                              + ("; every manifest must map it" if required else "")))
    if (a.get("primaryKey") or []) != (b.get("primaryKey") or []):
        changes.append(Change(None, "key_changed", True,
                              f"primary key {a.get('primaryKey')} -> {b.get('primaryKey')}"))
    return sorted(changes, key=lambda c: not c.breaking)


def versioning_problem(old: dict, new: Standard, changes: list[Change]) -> str | None:
    """Whether the version number tells the truth about ``changes``."""
    if not changes:
        return None
    if new.version == old["version"]:
        return f"{new.name} changed but kept version {new.version}: give it a new version"
    major = str(old["version"]).split(".")[0]
    if any(c.breaking for c in changes) and new.version.split(".")[0] == major:
        suggestion = f" (e.g. {int(major) + 1}.0.0)" if major.isdigit() else ""
        return f"{new.name} {old['version']} -> {new.version} is a breaking change: give it a new major version{suggestion}"
    return None


def violation(new: Standard, change: Change, pack: StandardsPack) -> exp.Expression | None:
    """Condition on a published table for the rows ``change`` would quarantine on the next run: the SQL
    forms of the registered checks that change would fail (None where none can say it)."""
    if change.field is None or change.field not in new.field_names:
        return None
    field = new.schema.get_field(change.field)
    column = exp.column(field.name, quoted=True)
    context = Context(pack=pack, standard=new)
    found = [check.sql(column, field, context) for check in registry.checks()
             if change.kind in check.changes and "sql" in check.forms]
    found = [c for c in found if c is not None]
    return exp.or_(*found) if found else None


def affected_rows(con, schema: str, table: str, new: Standard, changes: list[Change],
                  pack: StandardsPack) -> dict[str, int]:
    """Published rows of ``schema.table`` (a DuckDB connection ``con`` reads) each breaking change would
    quarantine on the next run, by the change's message, where a check can count them."""
    counts = {}
    for change in changes:
        condition = violation(new, change, pack) if change.breaking else None
        if condition is None:
            continue
        query = exp.select(exp.Count(this=exp.Star())).from_(exp.table_(table, db=schema, quoted=True))
        try:
            counts[change.message] = con.execute(query.where(condition).sql("duckdb")).fetchone()[0]
        except Exception:  # noqa: BLE001 - a column the old standard did not have, or an odd type
            continue
    return counts
