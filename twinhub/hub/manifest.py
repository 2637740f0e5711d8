"""Dataset manifests: what a department registers, checked key by key.

A manifest is checked completely before anything is registered, and every
problem is reported with the key it concerns and what to do, e.g.::

    fields.name: column '机构名' is not in the source (did you mean '机构名称'?)
"""

from __future__ import annotations

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


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    department: str = Field(pattern=IDENTIFIER)
    dataset: str = Field(pattern=IDENTIFIER)
    title: str = Field(min_length=1)
    description: str = ""
    standard: str
    source: dict[str, Any]
    fields: dict[str, str]
    # per field: a crosswalk name, inline {value: code}, or a list of both (docs/standards.md)
    labels: dict[str, str | dict[str, str] | list[str | dict[str, str]]] = Field(default_factory=dict)
    # per text field the standard leaves free: a pack vocabulary it carries the codes of (with its history)
    vocabularies: dict[str, str] = Field(default_factory=dict)
    accept_accuracy_m: float | None = Field(None, gt=0)  # publish through a reprojection this inaccurate
    repair_geometry: bool = False  # repair invalid geometries with make_valid (recorded in the run's details)
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
            key = ".".join(str(p) for p in err["loc"]) or "(top level)"
            if err["type"] == "extra_forbidden":
                problems[key] = "unknown key" + _hint(str(err["loc"][-1]), list(_model_at(err["loc"]).model_fields))
            elif err["type"] == "string_pattern_mismatch":
                problems[key] = "use lower-case letters, digits and _ , starting with a letter (it becomes a SQL name)"
            elif err["type"] == "missing":
                problems[key] = "required key is missing"
            else:
                problems[key] = err["msg"].removeprefix("Value error, ")
        raise ManifestError(where, problems) from None
    if manifest.department in RESERVED_SCHEMAS:
        raise ManifestError(where, {"department": f"{manifest.department!r} is reserved; choose another name"})
    return manifest


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
        hint = crs_hint(connector.chunks(2_000), pack.city, pack.city.target_crs)
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
    for field_name, column in manifest.fields.items():
        if field_name not in names:
            problems[f"fields.{field_name}"] = f"not a field of standard {standard.name}" + _hint(field_name, names)
        elif columns is not None and column not in columns:
            problems[f"fields.{field_name}"] = f"column {column!r} is not in the source" + _hint(column, columns)
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
        fields=dict(manifest.fields),
        labels={k: v.inline for k, v in labels.items()},
        crosswalks={k: v.crosswalks for k, v in labels.items()},
        vocabularies=dict(manifest.vocabularies),
        source_crs=source_crs,
        target_crs=target_crs,
        gate=pack.city.gate(target_crs),
        accept_accuracy_m=manifest.accept_accuracy_m,
        repair_geometry=manifest.repair_geometry,
        crs_declared=crs_declared,
        crs_how=crs_how,
    )
