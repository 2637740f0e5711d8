"""Load a standards pack: the city, its shared Table Schemas and vocabularies.

A pack is a folder::

    city.yaml                       target CRS, timezone, plausibility extent, CRS policy
    schemas/**/<name>.schema.yaml   Frictionless Table Schemas (with name and version);
                                    older versions may stay (e.g. in schemas/archive/)
    vocabularies/<name>.yaml        controlled vocabularies (SKOS-like)
    crosswalks/<name>.yaml          departments' values -> vocabulary codes, shareable

A new city copies the folder and edits files; no code changes.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import math
import pathlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache

import frictionless
import numpy as np
import yaml

from twinhub.errors import UserError
from twinhub.standards.crs import UnknownCRS, resolve_crs, transform_xy
from twinhub.standards.licences import check_licence

DEFAULT_PACK = pathlib.Path(__file__).parent
MATCH_TYPES = ("exact", "close", "broader")  # SKOS exactMatch, closeMatch, broadMatch
EXTENT_EDGE_POINTS = 21  # points per edge of the extent reprojected to another CRS
DEFAULT_SCORE_WEIGHTS = {"schema": 1.0, "labels": 1.0, "crs": 1.0, "completeness": 1.0, "freshness": 1.0}


class StandardsError(UserError, ValueError):
    """A standards pack file is missing or malformed."""


@dataclass(frozen=True)
class City:
    name: str
    target_crs: str
    timezone: str
    extent: tuple[float, float, float, float]
    buffer_m: float
    # reprojections with a stated accuracy worse than this (or none: PROJ's "ballpark"
    # transformations) are refused unless a manifest accepts them (accept_accuracy_m)
    transform_accuracy_m: float = 1.0
    crs_candidates: tuple[str, ...] = ()  # CRSs the city's departments commonly use, tried first by detection
    day_first: bool = True  # 03/04/2020: 3 April unless a column shows otherwise
    score_weights: tuple[tuple[str, float], ...] = tuple(DEFAULT_SCORE_WEIGHTS.items())
    licence: str = "CC-BY-4.0"  # SPDX id of the city's open data, unless a manifest names its own
    licence_urls: tuple[tuple[str, str], ...] = ()  # LicenseRef-<name> -> the city's own licence document

    def extent_in(self, crs: str | None = None) -> tuple[float, float, float, float]:
        """The extent (written in the city's ``target_crs``) in ``crs`` (None: the city's own).

        The bounds of the extent's outline reprojected with ``EXTENT_EDGE_POINTS`` points per edge (a
        rectangle in degrees is curved in a projected CRS: its corners alone would cut the edges), x first
        (easting, longitude) whatever the CRS's axis order, as every position in the hub is.
        """
        return _extent_in(self.extent, self.target_crs, crs or self.target_crs)

    def gate(self, target_crs: str | bool | None = None,
             geographic: bool | None = None) -> tuple[float, float, float, float]:
        """The extent in ``target_crs`` (None: the city's own CRS) widened by ``buffer_m`` (in degrees when
        the CRS is geographic, else in its axis unit). ``geographic`` (or a bool in place of the CRS): older
        callers' way of asking for the city's own CRS; it must agree with that CRS."""
        if isinstance(target_crs, bool):
            target_crs, geographic = None, target_crs
        crs = resolve_crs(target_crs or self.target_crs)
        if target_crs is None and geographic is not None and geographic != crs.is_geographic:
            raise ValueError(f"the city's extent is in {crs.name}: geographic={geographic} does not fit it")
        minx, miny, maxx, maxy = self.extent_in(crs.name)
        dx = dy = self.buffer_m / crs.crs.axis_info[0].unit_conversion_factor if crs.crs.axis_info else self.buffer_m
        if crs.is_geographic:
            dy = self.buffer_m / 110_574.0
            dx = self.buffer_m / (111_320.0 * math.cos(math.radians((miny + maxy) / 2)))
        return (minx - dx, miny - dy, maxx + dx, maxy + dy)


@lru_cache(maxsize=64)
def _extent_in(extent: tuple[float, float, float, float], source: str, target: str) -> tuple[float, float, float, float]:
    minx, miny, maxx, maxy = extent
    edge = np.linspace(0.0, 1.0, EXTENT_EDGE_POINTS)
    xs = np.concatenate([minx + (maxx - minx) * edge, np.full_like(edge, maxx),
                         maxx - (maxx - minx) * edge, np.full_like(edge, minx)])
    ys = np.concatenate([np.full_like(edge, miny), miny + (maxy - miny) * edge,
                         np.full_like(edge, maxy), maxy - (maxy - miny) * edge])
    tx, ty = transform_xy(xs, ys, source, target)
    if not (np.isfinite(tx).all() and np.isfinite(ty).all()):
        raise StandardsError(f"city.yaml extent {list(extent)} ({source}) cannot be expressed in {target}: "
                             "choose a target_crs whose area of use covers the city")
    return float(tx.min()), float(ty.min()), float(tx.max()), float(ty.max())


@dataclass(frozen=True)
class Concept:
    code: str
    labels: dict[str, str]
    synonyms: tuple[str, ...] = ()
    broader: str | None = None
    replaced_by: str | None = None  # an outdated concept: its labels map to this code
    note: str = ""  # why it was replaced, since when

    @property
    def outdated(self) -> bool:
        return self.replaced_by is not None


@dataclass(frozen=True)
class Vocabulary:
    name: str
    version: str
    title: str
    concepts: tuple[Concept, ...]
    source: str = ""  # where the concepts come from (attribution)

    @property
    def codes(self) -> list[str]:
        """The codes data may carry: outdated concepts are left out."""
        return [c.code for c in self.concepts if not c.outdated]

    def concept(self, code: str) -> Concept | None:
        return next((c for c in self.concepts if c.code == code), None)

    def current(self, code: str) -> str:
        """``code``, or what replaced it (following a chain of replacements)."""
        seen = {code}
        concept = self.concept(code)
        while concept is not None and concept.replaced_by and concept.replaced_by not in seen:
            seen.add(concept.replaced_by)
            code, concept = concept.replaced_by, self.concept(concept.replaced_by)
        return code


@dataclass(frozen=True)
class CrosswalkEntry:
    value: str  # as the department writes it
    code: str
    match: str = "exact"  # exact | close | broader (the department's value is narrower than the code)
    note: str = ""


@dataclass(frozen=True)
class Crosswalk:
    """A versioned mapping of departments' values to one vocabulary's codes."""

    name: str
    version: str
    vocabulary: str
    title: str
    entries: tuple[CrosswalkEntry, ...]
    path: pathlib.Path | None = None

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"


@dataclass(frozen=True)
class Standard:
    """A shared schema: a Frictionless Table Schema plus its name and version."""

    name: str
    version: str
    title: str
    description: str
    schema: frictionless.Schema
    path: pathlib.Path

    @property
    def fields(self) -> list[frictionless.Field]:
        return list(self.schema.fields)

    @property
    def field_names(self) -> list[str]:
        return [f.name for f in self.schema.fields]

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def digest(self) -> str:
        """Content hash of the Table Schema: equal digests, equal standards."""
        text = json.dumps(self.schema.to_descriptor(), sort_keys=True, ensure_ascii=False)
        return "sha256:" + hashlib.sha256(text.encode()).hexdigest()

    @property
    def primary_key(self) -> list[str]:
        return list(self.schema.primary_key)

    @property
    def geometry_field(self) -> frictionless.Field | None:
        return next((f for f in self.schema.fields if f.type == "geojson"), None)

    @property
    def attribute_fields(self) -> list[frictionless.Field]:
        return [f for f in self.schema.fields if f.type != "geojson"]

    @property
    def vocabulary_fields(self) -> dict[str, str]:
        """Field -> the vocabulary whose codes it carries."""
        return {f.name: f.custom["vocabulary"] for f in self.attribute_fields if f.custom.get("vocabulary")}

    @property
    def enum_fields(self) -> dict[str, tuple[str, ...]]:
        """Text field -> its ``enum`` constraint: an inline vocabulary manifest ``labels`` may map onto."""
        return {f.name: tuple(str(v) for v in f.constraints["enum"]) for f in self.attribute_fields
                if f.constraints.get("enum") and f.type == "string" and not f.custom.get("vocabulary")}

    def required(self, field: frictionless.Field) -> bool:
        return bool(field.constraints.get("required")) or field.name in self.primary_key


def enum_vocabulary(standard: Standard, field_name: str) -> Vocabulary:
    """A text field's ``enum`` as a vocabulary whose codes are the allowed values (labels: the values).

    >>> from twinhub.standards.pack import load_pack
    >>> enum_vocabulary(load_pack().standard("admin_area"), "level").codes
    ['province', 'prefecture', 'county', 'township']
    """
    values = standard.enum_fields[field_name]
    return Vocabulary(name=f"{standard.name}.{field_name} (enum)", version=standard.version,
                      title=f"the enum of {standard.ref} field {field_name}",
                      concepts=tuple(Concept(code=v, labels={}) for v in values))


def field_vocabularies(standard: Standard, pack: StandardsPack, bound: Mapping[str, str] | None = None,
                       labelled: Iterable[str] = ()) -> dict[str, Vocabulary]:
    """Field -> the vocabulary its values are mapped onto in a run.

    The standard's own vocabulary fields; the fields a manifest binds a pack vocabulary to
    (``vocabularies:``, see :func:`binding_problems`); and the text ``enum`` fields a manifest's
    ``labels`` name (an enum is an inline vocabulary; one no labels name is checked as before).
    """
    found = {name: pack.vocabulary(vocabulary) for name, vocabulary in standard.vocabulary_fields.items()}
    enums = standard.enum_fields
    found.update({name: enum_vocabulary(standard, name) for name in labelled if name in enums})
    found.update({name: pack.vocabularies[v] for name, v in (bound or {}).items()
                  if v in pack.vocabularies and name not in found})
    return found


def binding_problems(bound: Mapping[str, str], standard: Standard, pack: StandardsPack) -> dict[str, str]:
    """Problems of a manifest's ``vocabularies: {field: vocabulary}``, keyed ``vocabularies.<field>``.

    A binding gives a text field the standard leaves free a pack vocabulary (with its history:
    outdated concepts map to what replaced them, and are reported). A field with its own vocabulary
    or an ``enum`` keeps it.
    """
    problems: dict[str, str] = {}
    fields = {f.name: f for f in standard.attribute_fields}
    for name, vocabulary in bound.items():
        key = f"vocabularies.{name}"
        f = fields.get(name)
        if f is None:
            close = difflib.get_close_matches(name, list(fields), n=1)
            problems[key] = f"not a field of standard {standard.name}" + (
                f" (did you mean {close[0]!r}?)" if close else f" (its fields: {', '.join(fields)})")
        elif f.custom.get("vocabulary"):
            problems[key] = (f"field {name} of standard {standard.name} has its own vocabulary "
                             f"{f.custom['vocabulary']}; remove this binding")
        elif f.constraints.get("enum"):
            problems[key] = (f"field {name} of standard {standard.name} allows only {list(f.constraints['enum'])}; "
                             f"map values onto those with labels.{name} instead")
        elif f.type != "string":
            problems[key] = f"field {name} is of type {f.type}: only a text field can carry a vocabulary's codes"
        elif vocabulary not in pack.vocabularies:
            close = difflib.get_close_matches(vocabulary, list(pack.vocabularies), n=1)
            problems[key] = f"no vocabulary {vocabulary!r} in the standards pack at {pack.root}" + (
                f" (did you mean {close[0]!r}?)" if close else f" (it has: {', '.join(sorted(pack.vocabularies))})")
    return problems


def version_key(version: str) -> tuple:
    """Sort key of a dotted version: "1.10.0" after "1.9.2"."""
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"[.\-+]", version))


def split_ref(ref: str) -> tuple[str, str | None]:
    """``"facility@1.0"`` -> ("facility", "1.0"); ``"facility"`` -> ("facility", None)."""
    name, _, version = ref.partition("@")
    return name.strip(), (version.strip() or None)


@dataclass(frozen=True)
class StandardsPack:
    root: pathlib.Path
    city: City
    standards: dict[str, Standard] = field(default_factory=dict)  # the newest version of each
    vocabularies: dict[str, Vocabulary] = field(default_factory=dict)
    versions: dict[str, dict[str, Standard]] = field(default_factory=dict)  # every version on disk
    crosswalks: dict[str, Crosswalk] = field(default_factory=dict)

    def standard(self, ref: str) -> Standard:
        """A standard by name, or pinned: ``facility@1.0.0`` exactly, ``facility@1`` the newest 1.x."""
        name, pin = split_ref(ref)
        if name not in self.standards:
            known = ", ".join(sorted(self.standards)) or "none"
            raise StandardsError(
                f"unknown standard {name!r}: the standards pack at {self.root} has {known}"
            ) from None
        if pin is None:
            return self.standards[name]
        versions = self.versions.get(name, {name: self.standards[name]})
        matching = [v for v in versions if v == pin or v.startswith(pin + ".")]
        if not matching:
            raise StandardsError(
                f"standard {name!r} has no version {pin!r} in the standards pack at {self.root}: it has "
                f"{', '.join(sorted(versions, key=version_key))}; pin one of those, or keep the old version's "
                f"file in {self.root / 'schemas'}"
            )
        return versions[max(matching, key=version_key)]

    def vocabulary(self, name: str) -> Vocabulary:
        try:
            return self.vocabularies[name]
        except KeyError:
            raise StandardsError(f"unknown vocabulary {name!r} in the standards pack at {self.root}") from None


def _read_yaml(path: pathlib.Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise StandardsError(f"{path}: cannot read: {exc}") from exc
    if not isinstance(data, dict):
        raise StandardsError(f"{path}: expected a mapping at the top level")
    return data


def load_standard(path: pathlib.Path) -> Standard:
    """Load one Table Schema file; it must carry ``name`` and ``version``."""
    descriptor = _read_yaml(path)
    report = frictionless.Schema.validate_descriptor(descriptor)
    if not report.valid:
        problems = "; ".join(e.message for e in report.errors)
        raise StandardsError(f"{path}: not a valid Table Schema: {problems}")
    for key in ("name", "version"):
        if not descriptor.get(key):
            raise StandardsError(f"{path}: a standard needs a {key!r}")
    return Standard(
        name=descriptor["name"],
        version=str(descriptor["version"]),
        title=descriptor.get("title", descriptor["name"]),
        description=descriptor.get("description", ""),
        schema=frictionless.Schema.from_descriptor(descriptor),
        path=path,
    )


def load_vocabulary(path: pathlib.Path) -> Vocabulary:
    data = _read_yaml(path)
    for key in ("name", "version"):
        if not data.get(key):
            raise StandardsError(f"{path}: a vocabulary needs a {key!r}")
    try:
        concepts = tuple(
            Concept(
                code=str(c["code"]),
                labels={k: str(v) for k, v in (c.get("labels") or {}).items()},
                synonyms=tuple(str(s) for s in c.get("synonyms") or ()),
                broader=None if c.get("broader") is None else str(c["broader"]),
                replaced_by=None if c.get("replaced_by") is None else str(c["replaced_by"]),
                note=str(c.get("note") or ""),
            )
            for c in data.get("concepts") or ()
        )
    except (KeyError, TypeError, AttributeError) as exc:
        raise StandardsError(f"{path}: every concept is a mapping with at least a 'code' ({exc})") from None
    codes = [c.code for c in concepts]
    duplicated = sorted({c for c in codes if codes.count(c) > 1})
    if duplicated:
        raise StandardsError(f"{path}: code(s) {', '.join(duplicated)} appear more than once")
    for c in concepts:
        for key, target in (("broader", c.broader), ("replaced_by", c.replaced_by)):
            if target is not None and target not in codes:
                raise StandardsError(f"{path}: concept {c.code!r}: {key} {target!r} is not a code of this vocabulary")
    return Vocabulary(
        name=data["name"], version=str(data["version"]), title=data.get("title", ""), concepts=concepts,
        source=str(data.get("source") or ""),
    )


def load_crosswalk(path: pathlib.Path, vocabularies: dict[str, Vocabulary]) -> Crosswalk:
    """A crosswalk file; every code must be a current code of its vocabulary."""
    data = _read_yaml(path)
    for key in ("name", "version", "vocabulary"):
        if not data.get(key):
            raise StandardsError(f"{path}: a crosswalk needs a {key!r}")
    vocabulary = vocabularies.get(str(data["vocabulary"]))
    if vocabulary is None:
        raise StandardsError(f"{path}: unknown vocabulary {data['vocabulary']!r}")
    entries = []
    for i, item in enumerate(data.get("mappings") or (), 1):
        where = f"{path}: mappings[{i}]"
        if not isinstance(item, dict) or "value" not in item or "code" not in item:
            raise StandardsError(f"{where}: each mapping needs a 'value' and a 'code'")
        entry = CrosswalkEntry(str(item["value"]), str(item["code"]), str(item.get("match", "exact")),
                               str(item.get("note") or ""))
        if entry.match not in MATCH_TYPES:
            raise StandardsError(f"{where}: match {entry.match!r} is not one of {', '.join(MATCH_TYPES)}")
        problem = code_problem(vocabulary, entry.code)
        if problem:
            raise StandardsError(f"{where}: {problem}")
        entries.append(entry)
    return Crosswalk(str(data["name"]), str(data["version"]), vocabulary.name, str(data.get("title") or ""),
                     tuple(entries), path)


def code_problem(vocabulary: Vocabulary, code: str) -> str | None:
    """Why ``code`` cannot be a mapping's target in ``vocabulary``, or None."""
    concept = vocabulary.concept(code)
    if concept is None:
        return f"{code!r} is not a code of vocabulary {vocabulary.name}"
    if concept.outdated:
        return (f"{code!r} is outdated in vocabulary {vocabulary.name}: use {vocabulary.current(code)!r}"
                + (f" ({concept.note})" if concept.note else ""))
    return None


def load_city(path: pathlib.Path) -> City:
    data = _read_yaml(path)
    extent = tuple(float(v) for v in data["extent"])
    if len(extent) != 4:
        raise StandardsError(f"{path}: extent must be [minx, miny, maxx, maxy]")
    for crs in [data.get("target_crs"), *(data.get("crs_candidates") or ())]:
        try:
            resolve_crs(crs)
        except UnknownCRS as exc:
            raise StandardsError(f"{path}: {exc}") from None
    weights = {**DEFAULT_SCORE_WEIGHTS, **{str(k): float(v) for k, v in (data.get("score_weights") or {}).items()}}
    unknown = sorted(set(weights) - set(DEFAULT_SCORE_WEIGHTS))
    if unknown:
        raise StandardsError(f"{path}: score_weights: unknown part(s) {', '.join(unknown)}; "
                             f"the parts are {', '.join(DEFAULT_SCORE_WEIGHTS)}")
    licence = str(data.get("license", City.licence))
    if problem := check_licence(licence):
        raise StandardsError(f"{path}: license: {problem}")
    return City(
        licence=licence,
        licence_urls=tuple((str(k), str(v)) for k, v in (data.get("licence_urls") or {}).items()),
        name=data.get("name", "city"),
        target_crs=str(data["target_crs"]),
        timezone=str(data.get("timezone", "UTC")),
        extent=extent,  # type: ignore[arg-type]
        buffer_m=float(data.get("buffer_m", 0)),
        transform_accuracy_m=float(data.get("transform_accuracy_m", 1.0)),
        crs_candidates=tuple(str(c) for c in data.get("crs_candidates") or ()),
        day_first=bool(data.get("day_first", True)),
        score_weights=tuple(weights.items()),
    )


def load_pack(root: str | pathlib.Path | None = None, overlay: pathlib.Path | None = None) -> StandardsPack:
    """Load (and cache) the pack at ``root``, by default the one twinhub ships, with the codes a hub's
    stewards accepted (``overlay``: a hub home's ``vocabularies/`` folder) added to its vocabularies."""
    key = str(root) if root else None
    files = sorted(pathlib.Path(overlay).glob("*.yaml")) if overlay and pathlib.Path(overlay).is_dir() else []
    if not files:
        return _load_pack(key)
    stamp = tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in files)  # a new acceptance: reloaded
    return _with_overlay(key, stamp)


def _clear_cache() -> None:
    _load_pack.cache_clear()
    _with_overlay.cache_clear()


load_pack.cache_clear = _clear_cache  # type: ignore[attr-defined]  # a new process would read the files afresh


@lru_cache(maxsize=16)
def _with_overlay(root: str | None, stamp: tuple) -> StandardsPack:
    pack = _load_pack(root)
    vocabularies = dict(pack.vocabularies)
    for path, *_ in stamp:
        added = load_additions(pathlib.Path(path), vocabularies)
        vocabularies[added.name] = added
    return dataclasses.replace(pack, vocabularies=vocabularies)


def bump_minor(version: str) -> str:
    """The next minor version: ``1.0.0`` -> ``1.1.0`` (a vocabulary that gained codes).

    >>> bump_minor("1.0.0"), bump_minor("2.3"), bump_minor("1")
    ('1.1.0', '2.4.0', '1.1.0')
    """
    parts = [int(p) if p.isdigit() else 0 for p in re.split(r"[.\-+]", version)[:2]] + [0]
    return f"{parts[0]}.{parts[1] + 1}.0"


def load_additions(path: pathlib.Path, vocabularies: Mapping[str, Vocabulary]) -> Vocabulary:
    """A vocabulary with the codes accepted into it by a hub's stewards (``<home>/vocabularies/<name>.yaml``).

    The additions' version is the vocabulary's next minor version at least: a pack upgraded meanwhile keeps
    its own concepts (a code it now has itself is not added twice) and the additions still show as newer.
    """
    data = _read_yaml(path)
    base = vocabularies.get(str(data.get("vocabulary")))
    if base is None:
        raise StandardsError(f"{path}: vocabulary: no vocabulary {data.get('vocabulary')!r} in the standards pack")
    known = {c.code for c in base.concepts}
    try:
        added = tuple(Concept(code=str(c["code"]), labels={k: str(v) for k, v in (c.get("labels") or {}).items()},
                              synonyms=tuple(str(x) for x in c.get("synonyms") or ()),
                              broader=None if c.get("broader") is None else str(c["broader"]))
                      for c in data.get("concepts") or () if str(c["code"]) not in known)
    except (KeyError, TypeError, AttributeError) as exc:
        raise StandardsError(f"{path}: every concept is a mapping with at least a 'code' ({exc})") from None
    for c in added:
        if c.broader is not None and c.broader not in known | {a.code for a in added}:
            raise StandardsError(f"{path}: concept {c.code!r}: broader {c.broader!r} is not a code of {base.name}")
    if not added:
        return base
    version = max(str(data.get("version") or ""), bump_minor(base.version), key=version_key)
    return dataclasses.replace(base, version=version, concepts=base.concepts + added)


@lru_cache(maxsize=8)
def _load_pack(root: str | None = None) -> StandardsPack:
    base = pathlib.Path(root) if root else DEFAULT_PACK
    if not (base / "city.yaml").is_file():
        raise StandardsError(f"{base} is not a standards pack: it has no city.yaml")
    versions: dict[str, dict[str, Standard]] = {}
    for standard in map(load_standard, sorted((base / "schemas").rglob("*.schema.yaml"))):
        same = versions.setdefault(standard.name, {})
        if standard.version in same:
            raise StandardsError(
                f"{standard.path}: standard {standard.ref} is also defined in {same[standard.version].path}"
            )
        same[standard.version] = standard
    standards = {name: same[max(same, key=version_key)] for name, same in versions.items()}
    vocabularies = {v.name: v for v in map(load_vocabulary, sorted((base / "vocabularies").glob("*.yaml")))}
    for same in versions.values():
        for standard in same.values():
            for f in standard.fields:
                vocab = f.custom.get("vocabulary")
                if vocab and vocab not in vocabularies:
                    raise StandardsError(f"{standard.path}: field {f.name!r} names unknown vocabulary {vocab!r}")
    crosswalks = load_crosswalks(base / "crosswalks", vocabularies)
    return StandardsPack(root=base, city=load_city(base / "city.yaml"), standards=standards,
                         vocabularies=vocabularies, versions=versions, crosswalks=crosswalks)


def load_crosswalks(folder: pathlib.Path, vocabularies: dict[str, Vocabulary]) -> dict[str, Crosswalk]:
    """Every crosswalk file in ``folder`` (none if it does not exist), by name."""
    found: dict[str, Crosswalk] = {}
    for path in sorted(folder.glob("*.yaml")) if folder.is_dir() else ():
        crosswalk = load_crosswalk(path, vocabularies)
        if crosswalk.name in found:
            raise StandardsError(f"{path}: crosswalk {crosswalk.name!r} is also defined in {found[crosswalk.name].path}")
        found[crosswalk.name] = crosswalk
    return found
