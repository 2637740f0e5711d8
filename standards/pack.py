"""Load a standards pack: the city, its shared Table Schemas and vocabularies.

A pack is a folder::

    city.yaml                       target CRS, timezone, plausibility extent
    schemas/<name>.schema.yaml      Frictionless Table Schemas (with name and version)
    vocabularies/<name>.yaml        controlled vocabularies

A new city copies the folder and edits files; no code changes.
"""

from __future__ import annotations

import math
import pathlib
from dataclasses import dataclass, field
from functools import lru_cache

import frictionless
import yaml

DEFAULT_PACK = pathlib.Path(__file__).parent


class StandardsError(ValueError):
    """A standards pack file is missing or malformed."""


@dataclass(frozen=True)
class City:
    name: str
    target_crs: str
    timezone: str
    extent: tuple[float, float, float, float]
    buffer_m: float

    def gate(self, geographic: bool) -> tuple[float, float, float, float]:
        """The extent widened by ``buffer_m`` (converted to degrees when geographic)."""
        minx, miny, maxx, maxy = self.extent
        dx = dy = self.buffer_m
        if geographic:
            dy = self.buffer_m / 110_574.0
            dx = self.buffer_m / (111_320.0 * math.cos(math.radians((miny + maxy) / 2)))
        return (minx - dx, miny - dy, maxx + dx, maxy + dy)


@dataclass(frozen=True)
class Concept:
    code: str
    labels: dict[str, str]
    synonyms: tuple[str, ...] = ()
    broader: str | None = None


@dataclass(frozen=True)
class Vocabulary:
    name: str
    version: str
    title: str
    concepts: tuple[Concept, ...]

    @property
    def codes(self) -> list[str]:
        return [c.code for c in self.concepts]


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
    def primary_key(self) -> list[str]:
        return list(self.schema.primary_key)

    @property
    def geometry_field(self) -> frictionless.Field | None:
        return next((f for f in self.schema.fields if f.type == "geojson"), None)

    @property
    def attribute_fields(self) -> list[frictionless.Field]:
        return [f for f in self.schema.fields if f.type != "geojson"]

    def required(self, field: frictionless.Field) -> bool:
        return bool(field.constraints.get("required")) or field.name in self.primary_key


@dataclass(frozen=True)
class StandardsPack:
    root: pathlib.Path
    city: City
    standards: dict[str, Standard] = field(default_factory=dict)
    vocabularies: dict[str, Vocabulary] = field(default_factory=dict)

    def standard(self, name: str) -> Standard:
        try:
            return self.standards[name]
        except KeyError:
            known = ", ".join(sorted(self.standards)) or "none"
            raise StandardsError(
                f"unknown standard {name!r}: the standards pack at {self.root} has {known}"
            ) from None

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
    concepts = tuple(
        Concept(
            code=str(c["code"]),
            labels={k: str(v) for k, v in (c.get("labels") or {}).items()},
            synonyms=tuple(str(s) for s in c.get("synonyms") or ()),
            broader=c.get("broader"),
        )
        for c in data.get("concepts") or ()
    )
    return Vocabulary(
        name=data["name"], version=str(data.get("version", "")), title=data.get("title", ""), concepts=concepts
    )


def load_city(path: pathlib.Path) -> City:
    data = _read_yaml(path)
    extent = tuple(float(v) for v in data["extent"])
    if len(extent) != 4:
        raise StandardsError(f"{path}: extent must be [minx, miny, maxx, maxy]")
    return City(
        name=data.get("name", "city"),
        target_crs=str(data["target_crs"]),
        timezone=str(data.get("timezone", "UTC")),
        extent=extent,  # type: ignore[arg-type]
        buffer_m=float(data.get("buffer_m", 0)),
    )


@lru_cache(maxsize=8)
def load_pack(root: str | pathlib.Path | None = None) -> StandardsPack:
    """Load (and cache) the pack at ``root``, by default the one twinhub ships."""
    base = pathlib.Path(root) if root else DEFAULT_PACK
    if not (base / "city.yaml").is_file():
        raise StandardsError(f"{base} is not a standards pack: it has no city.yaml")
    standards = {s.name: s for s in map(load_standard, sorted((base / "schemas").glob("*.schema.yaml")))}
    vocabularies = {v.name: v for v in map(load_vocabulary, sorted((base / "vocabularies").glob("*.yaml")))}
    pack = StandardsPack(root=base, city=load_city(base / "city.yaml"), standards=standards, vocabularies=vocabularies)
    for standard in standards.values():
        for f in standard.fields:
            vocab = f.custom.get("vocabulary")
            if vocab and vocab not in vocabularies:
                raise StandardsError(f"{standard.path}: field {f.name!r} names unknown vocabulary {vocab!r}")
    return pack
