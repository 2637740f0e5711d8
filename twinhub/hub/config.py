"""The hub configuration, ``<home>/twinhub.yaml``, as a typed model.

Every key is declared here; a key the model does not know is refused with its
dotted name and the closest known key, so a misspelt setting never silently
falls back to its default::

    >>> parse_config({"standard": "/srv/pack"})
    Traceback (most recent call last):
    ...
    twinhub.hub.config.ConfigError: unknown key 'standard' (did you mean 'standards'?)

An empty value (``catalog:`` with nothing after it) means the default. The
values of ``catalog`` and ``http`` are checked further where they are used
(catalog/lake.py: no password in the metadata DSN; connectors' NetworkPolicy).
"""

from __future__ import annotations

import difflib
import pathlib
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError, field_validator


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @field_validator("*", mode="before")
    @classmethod
    def _blank_is_default(cls, value: Any, info) -> Any:
        """``key:`` with no value (YAML null) means the key's default, as it always has."""
        if value is None:
            field = cls.model_fields[info.field_name]
            return field.get_default(call_default_factory=True)
        return value


class CatalogConfig(_Model):
    """``catalog:`` where the catalog lives (docs/catalog.md). Empty: SQLite and Parquet under catalog/."""

    metadata: str | None = None  # "postgres:<libpq DSN without password>"
    schema_: str | None = Field(None, alias="schema")  # the PostgreSQL schema of DuckLake's tables
    data: str | None = None  # Parquet files; relative to the hub home
    previews: str | None = None  # map previews; relative to the hub home

    def as_dict(self) -> dict[str, str]:
        """The keys that are set, as written in twinhub.yaml (what ``Lake.from_config`` reads)."""
        return self.model_dump(by_alias=True, exclude_none=True)


class HttpConfig(_Model):
    """``http:`` which hosts HTTP sources may reach besides the public internet (docs/connectors.md)."""

    allow_hosts: list[str] = Field(default_factory=list)  # names, IP addresses or CIDR ranges
    allow_private: StrictBool = False  # private (RFC 1918, ULA) addresses; never loopback or link-local


class SecretsConfig(_Model):
    """``secrets:`` which environment variables a department's manifests may name (password_env,
    headers_env, params_env): those starting with one of its prefixes."""

    allow_prefixes: dict[str, list[str]] = Field(default_factory=dict)  # department -> prefixes

    def prefixes(self, department: str) -> tuple[str, ...]:
        """The department's prefixes; by default its name in capitals and ``_`` (``water`` -> ``WATER_``)."""
        return tuple(self.allow_prefixes.get(department) or (f"{department.upper()}_",))


class LimitsConfig(_Model):
    """``limits:`` caps on what one source may make the hub read; each refusal names its key (docs/connectors.md)."""

    max_columns: int = Field(10_000, gt=0)  # columns of a source
    max_download_mb: int = Field(2048, gt=0)  # bytes an HTTP source may send, after decompression
    max_inflate_ratio: int = Field(100, gt=1)  # decompressed / compressed size of a gzip body or zip member


class QueryConfig(_Model):
    """``query:`` what one query's sandbox may use (catalog/sandbox.py): DuckDB's memory_limit, threads and
    max_temp_directory_size. A query past them fails alone; the machine keeps serving."""

    memory: str = Field("1GB", pattern=r"^\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)$")
    threads: int = Field(2, ge=1, le=64)
    temp: str = Field("4GB", pattern=r"^\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)$")


class GovernanceConfig(_Model):
    """``governance:`` who decides (docs/governance.md, "Vocabulary codes"): the operating-system accounts of the
    stewards (empty: the account owning the hub home), and of each department's people."""

    stewards: list[str] = Field(default_factory=list)
    departments: dict[str, list[str]] = Field(default_factory=dict)  # department -> accounts speaking for it


class HubConfig(_Model):
    """twinhub.yaml. Paths are relative to the hub home."""

    model_config = ConfigDict(coerce_numbers_to_str=True)  # target_crs: 4490

    standards: str | None = None  # the city's standards pack; empty: the pack shipped with twinhub
    target_crs: str | None = None  # overrides the pack's target CRS, e.g. EPSG:4490
    chunk_rows: int = Field(50_000, gt=0)  # rows read, conformed and staged at a time
    catalog: CatalogConfig = Field(default_factory=CatalogConfig)
    http: HttpConfig = Field(default_factory=HttpConfig)
    # department -> folders its file sources may be read from; a department not listed: its manifest's folder
    landing: dict[str, list[str]] = Field(default_factory=dict)
    secrets: SecretsConfig = Field(default_factory=SecretsConfig)
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    query: QueryConfig = Field(default_factory=QueryConfig)
    governance: GovernanceConfig = Field(default_factory=GovernanceConfig)

    def landing_roots(self, department: str, home: pathlib.Path) -> tuple[pathlib.Path, ...]:
        """The department's landing folders, resolved against ``home``; empty if none are declared."""
        return tuple((home / p).expanduser().resolve() for p in self.landing.get(department, []))


class ConfigError(ValueError):
    """twinhub.yaml has a key the model does not know, or a value of the wrong kind."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("; ".join(problems))


# Nested sections by key, to name the keys valid where an unknown one was found.
SECTIONS: dict[str, type[_Model]] = {"catalog": CatalogConfig, "http": HttpConfig, "secrets": SecretsConfig,
                                     "limits": LimitsConfig, "query": QueryConfig, "governance": GovernanceConfig}


def _keys(model: type[BaseModel]) -> list[str]:
    return [f.alias or name for name, f in model.model_fields.items()]


def _unknown(loc: tuple) -> str:
    """``unknown key 'http.allow_host' (did you mean 'http.allow_hosts'?)``"""
    *parent, key = (str(p) for p in loc)
    model = SECTIONS.get(parent[0], HubConfig) if len(parent) == 1 else HubConfig
    prefix = "".join(f"{p}." for p in parent)
    valid = _keys(model)
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
    hint = f"did you mean '{prefix}{close[0]}'?" if close else f"valid keys: {', '.join(prefix + k for k in valid)}"
    return f"unknown key '{prefix}{key}' ({hint})"


def _problem(error: dict) -> str:
    if error["type"] == "extra_forbidden":
        return _unknown(error["loc"])
    key = ".".join(str(p) for p in error["loc"]) or "(top level)"
    if error["type"] == "model_type" and key in SECTIONS:
        return f"{key}: expected a mapping with keys {', '.join(_keys(SECTIONS[key]))}"
    return f"{key}: {error['msg'].removeprefix('Value error, ')}"


def parse_config(data: object) -> HubConfig:
    """The typed configuration from twinhub.yaml's parsed YAML; ConfigError names every bad key."""
    if data is None:
        return HubConfig()
    if not isinstance(data, dict):
        raise ConfigError([f"expected a mapping of keys such as {', '.join(_keys(HubConfig)[:3])}"])
    try:
        return HubConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError([_problem(e) for e in exc.errors()]) from None
