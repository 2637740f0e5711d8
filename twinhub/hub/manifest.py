"""Dataset manifests: what a department registers, checked key by key.

A manifest is checked completely before anything is registered, and every
problem is reported with the key it concerns and what to do, e.g.::

    fields.name: column '机构名' is not in the source (did you mean '机构名称'?)
"""

from __future__ import annotations

import datetime as dt
import difflib
import pathlib
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from twinhub.errors import UserError
from twinhub.hub import protection
from twinhub.standards.licences import check_licence

if TYPE_CHECKING:  # checking a manifest against its source needs these; reading the registry does not
    from twinhub.connectors import Connector, NetworkPolicy, SourcePolicy
    from twinhub.hub.home import Hub
    from twinhub.standards.conform import Conformance
    from twinhub.standards.pack import StandardsPack

IDENTIFIER = r"^[a-z][a-z0-9_]{0,62}$"
# schemas the hub itself writes: its records, the unified city layers, derived datasets
RESERVED_SCHEMAS = frozenset(
    {"catalog", "city", "derived", "main", "information_schema", "pg_catalog", "lake", "temp", "system"}
)


class Quality(BaseModel):
    """Thresholds of the audit between staging and publishing (shares are 0..1)."""

    model_config = ConfigDict(extra="forbid")

    min_label_coverage: float = Field(0.95, ge=0, le=1)  # below: a warning, rows still publish
    max_schema_failure_share: float = Field(0.5, ge=0, le=1)  # above: publication is blocked
    max_geometry_failure_share: float = Field(0.5, ge=0, le=1)  # above: blocked (a wrong CRS?)
    max_row_drop: float = Field(0.5, ge=0, le=1)  # conforming rows fell by more than this: blocked


class DerivedField(BaseModel):
    """A field not read from one column as it is (docs/registering.md, "Derived fields"): exactly one of
    ``column`` (with ``split``/``separator``/``level``), ``key``, ``constant``, ``expression``."""

    model_config = ConfigDict(extra="forbid")

    column: str | None = None
    key: list[str] | None = None  # a stable key: a short hash of these columns' values
    constant: bool | int | float | str | None = None
    expression: str | None = None  # DuckDB SQL over the source's columns (catalog/expressions.py)
    split: str | None = None  # a cell holds several values joined by this
    separator: str | None = None  # each value is a hierarchy joined by this ...
    level: int | None = None  # ... of which this level is taken (1-based; -1: the finest)

    @field_validator("constant", mode="before")
    @classmethod
    def _date_as_text(cls, value: object) -> object:
        """A YAML date or time (``constant: 2024-01-01``) is kept as its ISO text (the registry stores text)."""
        return value.isoformat() if isinstance(value, dt.date) else value

    @property
    def kind(self) -> str:
        """Which source it has (the first given of column, key, constant, expression)."""
        return next((k for k in SOURCES if k in self.model_fields_set), "column")


SOURCES = ("column", "key", "constant", "expression")  # what a derived field is made from: exactly one


class FilterRule(BaseModel):
    """Rows for which ``keep`` is not TRUE are filtered: counted under ``reason``, neither published nor quarantined."""

    model_config = ConfigDict(extra="forbid")

    keep: str
    reason: str = Field(min_length=1)


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    department: str = Field(pattern=IDENTIFIER)
    dataset: str = Field(pattern=IDENTIFIER)
    title: str = Field(min_length=1)
    description: str = ""
    standard: str
    source: dict[str, Any]
    fields: dict[str, str | DerivedField]  # a source column, or how the field is derived
    filter: list[FilterRule] | None = None  # rows to leave out, each with its reason (counted per run)
    # per field: a crosswalk name, inline {value: code}, or a list of both (docs/standards.md)
    labels: dict[str, str | dict[str, str] | list[str | dict[str, str]]] = Field(default_factory=dict)
    # per text field the standard leaves free: a pack vocabulary it carries the codes of (with its history)
    vocabularies: dict[str, str] = Field(default_factory=dict)
    accept_accuracy_m: float | None = Field(None, gt=0)  # publish through a reprojection this inaccurate
    repair_geometry: bool = False  # repair invalid geometries with make_valid (recorded in the run's details)
    outside: Literal["keep", "quarantine"] = "keep"  # a line or polygon partly outside the city (docs/standards.md)
    classification: Literal["public", "internal", "sensitive", "restricted"] = "internal"
    columns: dict[str, protection.ColumnPolicy] = Field(default_factory=dict)  # per field: tier, personal data
    public_variant: protection.PublicVariant | None = None  # a coarsened public copy (docs/governance.md)
    schedule: str | None = None
    steward: str | None = None
    quality: Quality = Field(default_factory=Quality)
    license: str | None = None  # SPDX id (standards/licences.yaml); default: the city's (city.yaml)

    @field_validator("license")
    @classmethod
    def _known_licence(cls, value: str | None) -> str | None:
        if value is not None and (problem := check_licence(value)):
            raise ValueError(problem)
        return value

    @property
    def id(self) -> str:
        return f"{self.department}.{self.dataset}"

    @property
    def tier(self) -> str:
        """The declared tier: ``classification`` raised to the highest declared column's (docs/governance.md)."""
        return protection.declared_tier(self)


class ManifestError(UserError, ValueError):
    """Problems with a manifest, keyed by the manifest key they concern."""

    def __init__(self, where: str, problems: dict[str, str]):
        self.where = where
        self.problems = problems
        lines = "\n".join(f"  - {key}: {message}" for key, message in problems.items())
        super().__init__(f"{where} is not a valid manifest; nothing was registered:\n{lines}")


def _hint(value: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(value, choices, n=1, cutoff=0.5)
    return f" (did you mean {close[0]!r}?)" if close else f" (choose from: {', '.join(choices)})"


def _model_at(loc: tuple) -> type[BaseModel]:
    """The model whose key ``loc`` names (nested: quality.*, columns.<field>.*, public_variant.*)."""
    nested = {"quality": Quality, "public_variant": protection.PublicVariant}
    if len(loc) == 3 and loc[0] == "columns":
        return protection.ColumnPolicy
    if len(loc) == 3 and loc[0] in ("fields", "filter"):
        return DerivedField if loc[0] == "fields" else FilterRule
    return nested.get(loc[0], Manifest) if len(loc) == 2 else Manifest


def parse_manifest(data: object, where: str) -> Manifest:
    """Structural check: keys, types, identifiers."""
    if not isinstance(data, dict):
        raise ManifestError(where, {"(top level)": "a manifest is a YAML mapping of keys such as department, dataset"})
    try:
        manifest = Manifest.model_validate(data)
    except ValidationError as exc:
        problems = {}
        for err in exc.errors():
            loc = _field_loc(err["loc"], data)
            if loc is None:  # the other side of a field's union (a column name, or a mapping)
                continue
            key = _key(loc)
            if err["type"] == "extra_forbidden":
                problems[key] = "unknown key" + _hint(str(loc[-1]), list(_model_at(loc).model_fields))
            elif loc[0] == "fields" and loc[-1] == "constant":
                problems[key] = "give one value: text, a number, true/false or a date"
            elif loc[0] == "fields" and len(loc) == 2:
                problems[key] = ("map the field to a source column (its name), or to one of {key: [columns]}, "
                                 "{constant: value}, {expression: SQL}, {column: name, split: ..., level: ...}")
            elif err["type"] == "string_pattern_mismatch":
                problems[key] = "use lower-case letters, digits and _ , starting with a letter (it becomes a SQL name)"
            elif err["type"] == "missing":
                problems[key] = "required key is missing"
            else:
                problems[key] = err["msg"].removeprefix("Value error, ")
        raise ManifestError(where, problems) from None
    if manifest.department in RESERVED_SCHEMAS:
        raise ManifestError(where, {"department": f"{manifest.department!r} is reserved; choose another name"})
    if problems := derived_problems(manifest):
        raise ManifestError(where, problems)
    return manifest


def _field_loc(loc: tuple, data: dict) -> tuple | None:
    """A validation error's location without pydantic's union tags (``fields.<name>.str``,
    ``fields.<name>.DerivedField.<key>``); None for the branch that does not apply to the value."""
    if len(loc) < 3 or loc[0] != "fields":
        return loc
    fields = data.get("fields")
    value = fields.get(loc[1]) if isinstance(fields, dict) else None
    if loc[2] == "str":
        return None if isinstance(value, dict) else loc[:2]
    if loc[2] == "DerivedField":  # a constant's own union tags (constant.bool, constant.int, ...) go too
        return (*loc[:2], *(loc[3:4] if loc[3:4] == ("constant",) else loc[3:])) if isinstance(value, dict) else None
    return loc


def _key(loc: tuple) -> str:
    """A location as the manifest key it names: ``fields.category.level``, ``filter[0].keep``."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
    return text or "(top level)"


def derived_problems(manifest: Manifest) -> dict[str, str]:
    """What is wrong with the derived fields and filters as written (what needs no source)."""
    problems: dict[str, str] = {}
    for name, spec in manifest.fields.items():
        if isinstance(spec, DerivedField):
            problems.update(_spec_problems(f"fields.{name}", spec))
    for i, rule in enumerate(manifest.filter or ()):
        if not rule.keep.strip():
            problems[f"filter[{i}].keep"] = "write the condition a row must meet to be kept, e.g. 类型 NOT LIKE '%宠物%'"
        if not rule.reason.strip():
            problems[f"filter[{i}].reason"] = "say why these rows are left out (they are counted under it)"
    return problems


def _spec_problems(where: str, spec: DerivedField) -> dict[str, str]:
    given = [k for k in SOURCES if k in spec.model_fields_set]
    if len(given) != 1:
        return {where: f"give exactly one of {', '.join(SOURCES)} (got {', '.join(given) or 'none'}), e.g. "
                       "{key: [名称, 地址]}, {constant: county}, {expression: \"upper(类型)\"}"}
    kind, problems = given[0], {}
    if kind == "column" and not spec.column:
        problems[f"{where}.column"] = "name a source column"
    if kind == "key" and not (spec.key and all(spec.key)):
        problems[f"{where}.key"] = "list the source columns the key is made from, e.g. [名称, 地址]"
    elif kind == "key" and len(set(spec.key)) != len(spec.key):
        problems[f"{where}.key"] = "a column is listed twice; list each column once"
    if kind == "constant" and spec.constant is None:
        problems[f"{where}.constant"] = "give the value (text, a number, true/false or a date)"
    if kind == "expression" and not (spec.expression or "").strip():
        problems[f"{where}.expression"] = "write the SQL expression, e.g. TRY_CAST(面积 AS DOUBLE) * 1e6"
    labelled = [k for k in ("split", "separator", "level") if getattr(spec, k) is not None]
    if labelled and kind not in ("column", "expression"):
        problems[f"{where}.{labelled[0]}"] = "split, separator and level apply to a column's (or an expression's) text"
    for part in ("split", "separator"):
        if getattr(spec, part) == "":
            problems[f"{where}.{part}"] = f"give the text the values are joined by, e.g. {part}: \";\""
    if spec.level is not None and spec.separator is None:
        problems[f"{where}.level"] = "a level needs the hierarchy's separator, e.g. separator: \";\""
    elif spec.separator is not None and spec.level is None:
        problems[f"{where}.separator"] = "say which level to take, e.g. level: 2 (1 = the broadest, -1 = the finest)"
    elif spec.level == 0:
        problems[f"{where}.level"] = "levels count from 1 (the broadest); -1 is the finest"
    if spec.split and spec.split == spec.separator:
        problems[f"{where}.split"] = "split and separator must differ (one joins values, the other levels)"
    return problems


def load_manifest(path: pathlib.Path) -> Manifest:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ManifestError(str(path), {"(file)": f"cannot read it: {exc.strerror}"}) from None
    except yaml.YAMLError as exc:
        raise ManifestError(str(path), {"(file)": f"not valid YAML: {exc}"}) from None
    return parse_manifest(data, str(path))


def source_policy(hub: Hub, department: str, manifest_dir: pathlib.Path | None) -> SourcePolicy:
    """What ``department``'s sources may reach (connectors/policy.py), from twinhub.yaml.

    Files: inside the department's ``landing`` folders, or, when none are declared, inside the
    folder of its manifest (``manifest_dir``; none given, as for a guided proposal from a path the
    operator typed: unconfined until it is registered). Secrets: variables
    starting with the department's ``secrets.allow_prefixes`` (default ``<DEPARTMENT>_``), never the
    hub's own. Network: ``http`` (HTTP and database hosts). Caps: ``limits``.
    """
    from twinhub.connectors import Limits, SourcePolicy

    config = hub.config
    roots = config.landing_roots(department, hub.home)
    declared = bool(roots)
    if not declared:
        roots = (manifest_dir.resolve(),) if manifest_dir is not None else None
    caps = config.limits
    return SourcePolicy(
        network=hub.network_policy, roots=roots, secret_prefixes=config.secrets.prefixes(department),
        limits=Limits(max_columns=caps.max_columns, max_download_bytes=caps.max_download_mb << 20,
                      max_inflate_ratio=caps.max_inflate_ratio),
        department=department, roots_declared=declared,
    )


def _evidence_hint(manifest: Manifest, connector: Connector, home: pathlib.Path) -> str:
    from twinhub.hub.crs_evidence import evidence_hint
    from twinhub.hub.home import Hub

    names = {f: manifest.fields.get(f) for f in ("name", "district")}
    return evidence_hint(Hub.open(home, create=False), connector.chunks(2_000), names["name"], names["district"],
                         exclude=manifest.id)


def check_manifest(
    manifest: Manifest, pack: StandardsPack, base_dir: pathlib.Path, where: str,
    policy: SourcePolicy | NetworkPolicy | None = None, home: pathlib.Path | None = None, contact: bool = True,
) -> Connector:
    """Check the manifest against the standards pack and the real source; return its connector.

    ``policy``: what the source may reach (``source_policy``: the department's files, secrets, hosts
    and limits). ``home`` (the hub home) adds its crosswalks to the pack's. ``contact=False`` checks
    everything that needs no connection to the source (its keys, files' confinement, secrets' names,
    hosts against the network policy) and leaves the source itself to the first run: a registration
    awaiting review is never contacted with credentials (twinhub/hub/registration.py).
    """
    from twinhub.connectors import ConfigProblem, SourceError, SourceRefused, open_source
    from twinhub.hub import derive
    from twinhub.standards import crosswalk_files
    from twinhub.standards.cadence import CronError, parse_cron
    from twinhub.standards.crs import UnknownCRS, resolve_crs
    from twinhub.standards.crs_detect import crs_hint, lonlat_extent
    from twinhub.standards.crs_policy import CRSRefused, reprojection_record
    from twinhub.standards.pack import StandardsError, binding_problems, field_vocabularies, split_ref

    problems: dict[str, str] = {}
    try:
        standard = pack.standard(manifest.standard)
    except StandardsError as exc:
        name = split_ref(manifest.standard)[0]
        message = str(exc) if name in pack.standards else f"unknown standard {name!r}" + _hint(name, sorted(pack.standards))
        raise ManifestError(where, {"standard": message}) from None
    try:
        connector = open_source(manifest.source, base_dir, policy=policy)
        connector.preflight()
        columns: list[str] | None = None  # not contacted: the columns are checked by the first run
        if contact:
            connector.check()
            columns = connector.columns()
            connector.rules.limits.check_columns(len(columns), connector.describe())
    except ConfigProblem as exc:
        raise ManifestError(where, exc.problems) from None
    except SourceRefused as exc:
        raise ManifestError(where, {exc.key: exc.reason}) from None
    except SourceError as exc:
        raise ManifestError(where, {"source": str(exc)}) from None

    crs = manifest.source.get("crs") or (connector.crs() if contact else None)
    if not crs and contact:
        hint = crs_hint(connector.chunks(2_000), pack.city, pack.city.target_crs) if home is None else \
            _evidence_hint(manifest, connector, home)  # with what the hub publishes (twinhub/hub/crs_evidence.py)
        problems["source.crs"] = f"the source does not declare its CRS; add source.crs (e.g. EPSG:4549, GCJ-02, BD-09). {hint}"
    elif crs:
        try:
            target = resolve_crs(pack.city.target_crs)
            reprojection_record(
                resolve_crs(crs), target, declared=crs, how="manifest", area=lonlat_extent(pack.city, target.name),
                tolerance_m=pack.city.transform_accuracy_m, accept_accuracy_m=manifest.accept_accuracy_m,
            )
        except (UnknownCRS, CRSRefused) as exc:
            problems["source.crs"] = str(exc)
    for axis in ("x", "y"):
        column = manifest.source.get(axis)
        if column and columns is not None and column not in columns:
            problems[f"source.{axis}"] = f"column {column!r} is not in the source" + _hint(column, columns)

    names = standard.field_names
    for field_name, spec in manifest.fields.items():
        if field_name not in names:
            problems[f"fields.{field_name}"] = f"not a field of standard {standard.name}" + _hint(field_name, names)
        elif columns is not None and (column := derive.plain_column(spec)) is not None and column not in columns:
            key = f"fields.{field_name}" + ("" if isinstance(spec, str) else ".column")
            problems[key] = f"column {column!r} is not in the source" + _hint(column, columns)
    if derive.needed(manifest):  # keys, constants, expressions, label levels, filters: against the source
        problems.update(derive.source_problems(manifest, columns, connector if contact else None))
    for f in standard.attribute_fields:
        if standard.required(f) and f.name not in manifest.fields:
            problems[f"fields.{f.name}"] = f"required by standard {standard.name}; map it to a source column"

    problems.update(protection.manifest_problems(manifest, standard, pack, home))  # with the city's floor
    problems.update(binding_problems(manifest.vocabularies, standard, pack))
    vocabularies = field_vocabularies(standard, pack, manifest.vocabularies, manifest.labels)
    try:
        problems.update(crosswalk_files.resolve(manifest.labels, vocabularies, pack, home)[1])
    except StandardsError as exc:  # a crosswalk file in the hub home is broken
        problems["labels"] = str(exc)
    if manifest.schedule:
        try:
            parse_cron(manifest.schedule)  # the reader the score, the report and Dagster's freshness use
        except CronError as exc:
            problems["schedule"] = f"not a cron expression: {exc} (e.g. '0 2 * * *' for 02:00 daily)"
    if problems:
        raise ManifestError(where, problems)
    return connector


def conformance(
    manifest: Manifest, pack: StandardsPack, source_crs: str, target_crs: str,
    home: pathlib.Path | None = None, crs_declared: str | None = None, crs_how: str = "manifest",
) -> Conformance:
    from twinhub.hub.derive import field_columns
    from twinhub.standards import crosswalk_files
    from twinhub.standards.conform import Conformance
    from twinhub.standards.pack import StandardsError, binding_problems, field_vocabularies

    standard = pack.standard(manifest.standard)
    vocabularies = field_vocabularies(standard, pack, manifest.vocabularies, manifest.labels)
    labels, problems = crosswalk_files.resolve(manifest.labels, vocabularies, pack, home, dataset_id=manifest.id)
    problems.update(binding_problems(manifest.vocabularies, standard, pack))  # e.g. a vocabulary removed
    if problems:  # e.g. a crosswalk file removed since registration: never run without it
        raise StandardsError(f"{manifest.id}: " + "; ".join(f"{k}: {v}" for k, v in problems.items()))
    return Conformance(
        standard=standard,
        pack=pack,
        fields=field_columns(manifest),  # a derived field reads its column made by twinhub/hub/derive.py
        labels={k: v.inline for k, v in labels.items()},
        crosswalks={k: v.crosswalks for k, v in labels.items()},
        vocabularies=dict(manifest.vocabularies),
        source_crs=source_crs,
        target_crs=target_crs,
        gate=pack.city.gate(target_crs),
        accept_accuracy_m=manifest.accept_accuracy_m,
        repair_geometry=manifest.repair_geometry,
        outside=manifest.outside,
        crs_declared=crs_declared,
        crs_how=crs_how,
    )
