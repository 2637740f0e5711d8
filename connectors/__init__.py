"""Connectors read departments' sources in chunks; one registry names them all.

Adding a format means one module with a ``Connector`` subclass and one line
in ``CONNECTORS`` (format -> ``module:Class``). A connector's module (pandas,
GDAL, database drivers...) is imported only when a source of its format is
opened, so that listing the registry or loading the Dagster definitions of
a thousand datasets needs none of them.
"""

from __future__ import annotations

import importlib
import pathlib
from typing import TYPE_CHECKING

from twinhub.connectors.errors import SourceError
from twinhub.connectors.http.policy import NetworkPolicy
from twinhub.connectors.policy import Limits, SourcePolicy, SourceRefused
from twinhub.errors import UserError

if TYPE_CHECKING:
    from twinhub.connectors.base import Chunk, Connector, SourceConfig

CONNECTORS: dict[str, str] = {
    "csv": "twinhub.connectors.csv:CsvConnector",
    "xlsx": "twinhub.connectors.excel:ExcelConnector",
    "shapefile": "twinhub.connectors.vector:ShapefileConnector",
    "geojson": "twinhub.connectors.vector:GeoJSONConnector",
    "gpkg": "twinhub.connectors.vector:GeoPackageConnector",
    "fgb": "twinhub.connectors.vector:FlatGeobufConnector",
    "geoparquet": "twinhub.connectors.geoparquet:GeoParquetConnector",
    "postgres": "twinhub.connectors.db.connector:PostgresConnector",
    "mysql": "twinhub.connectors.db.connector:MySQLConnector",
    "http": "twinhub.connectors.http.file:HttpFileConnector",
    "ogcapi": "twinhub.connectors.http.ogcapi:OgcApiConnector",
    "arcgis": "twinhub.connectors.http.arcgis:ArcGisConnector",
}
_BASE = ("Chunk", "Connector", "SourceConfig")  # from connectors.base, imported on first use

__all__ = [
    "CONNECTORS", "Chunk", "ConfigProblem", "Connector", "Limits", "NetworkPolicy", "SourceConfig", "SourceError",
    "SourcePolicy", "SourceRefused", "connector_class", "named_secrets", "open_source",
]


def __getattr__(name: str):
    if name in _BASE:
        return getattr(importlib.import_module("twinhub.connectors.base"), name)
    raise AttributeError(f"module 'connectors' has no attribute {name!r}")


def connector_class(fmt: str) -> type[Connector]:
    """The ``Connector`` subclass reading sources of format ``fmt`` (its module imported now)."""
    module, _, name = CONNECTORS[fmt].partition(":")
    return getattr(importlib.import_module(module), name)


class ConfigProblem(UserError, ValueError):
    """A source configuration key is wrong; ``problems`` maps ``source.<key>`` to a message."""

    def __init__(self, problems: dict[str, str]):
        self.problems = problems
        super().__init__("; ".join(f"{k}: {v}" for k, v in problems.items()))


def _problem(fmt: str, cls: type[Connector], err: dict) -> tuple[str, str]:
    """``source.<key>`` and the message of one pydantic error (never the value given: it may be a secret)."""
    if err["type"] == "extra_forbidden":
        return "source." + ".".join(map(str, err["loc"])), f"not a key of {fmt} sources (allowed: {', '.join(_keys(cls))})"
    message = str(err["ctx"]["error"]) if err["type"] == "value_error" else err["msg"]
    if not err["loc"]:  # a check across keys names its key first: "source.table: ..."
        key, _, rest = message.partition(": ")
        return (key, rest) if key.startswith("source.") else ("source", message)
    return "source." + ".".join(map(str, err["loc"])), message


def _keys(cls: type[Connector]) -> list[str]:
    return [k for k in cls.Config.model_fields if k != "password"]


def named_secrets(config: SourceConfig) -> list[tuple[str, str]]:
    """``(manifest key, environment variable)`` for every variable the source's config names."""
    named = [("source.password_env", getattr(config, "password_env", None))]
    for kind in ("headers_env", "params_env"):
        named += [(f"source.{kind}.{name}", variable) for name, variable in (getattr(config, kind, None) or {}).items()]
    return [(key, variable) for key, variable in named if variable]


def open_source(spec: dict, base_dir: pathlib.Path | None = None,
                policy: SourcePolicy | NetworkPolicy | None = None) -> Connector:
    """A connector for a manifest's ``source`` mapping; relative paths are taken from ``base_dir``.

    ``policy`` (connectors/policy.py) says which files, environment variables and network hosts
    the source may reach, and its limits; the hub passes its department's
    (``twinhub.hub.manifest.source_policy``). A bare ``NetworkPolicy``, or None (public hosts
    only), leaves files unconfined and any variable but the hub's own allowed: for trusted
    callers such as tests. ConfigProblem names the manifest key refused.
    """
    from pydantic import ValidationError

    rules = SourcePolicy.of(policy)
    fmt = spec.get("format")
    if fmt not in CONNECTORS:
        raise ConfigProblem({"source.format": f"unknown format {fmt!r}; use one of {', '.join(sorted(CONNECTORS))}"})
    cls = connector_class(fmt)
    try:
        config = cls.Config.model_validate(spec)
    except ValidationError as exc:
        raise ConfigProblem(dict(_problem(fmt, cls, err) for err in exc.errors())) from None
    try:
        rules.check_secrets(named_secrets(config))
    except SourceRefused as exc:
        raise ConfigProblem({exc.key: exc.reason}) from None
    path = getattr(config, "path", None)
    if path is not None:
        resolved = pathlib.Path(path).expanduser()
        if base_dir is not None and not resolved.is_absolute():
            resolved = (base_dir / resolved).resolve()
        config = config.model_copy(update={"path": str(resolved)})
    connector = cls(config, policy=rules)
    if connector.path is not None:
        try:
            rules.confine("source.path", [connector.path, *connector.files()])
        except SourceRefused as exc:
            raise ConfigProblem({exc.key: exc.reason}) from None
    return connector
