"""Connectors read departments' sources in chunks; one registry names them all.

Adding a format means one module with a ``Connector`` subclass and one line
in ``CONNECTORS``.
"""

from __future__ import annotations

import pathlib

from pydantic import ValidationError

from connectors.base import Chunk, Connector, SourceConfig, SourceError
from connectors.csv import CsvConnector
from connectors.db.connector import MySQLConnector, PostgresConnector
from connectors.excel import ExcelConnector
from connectors.http.arcgis import ArcGisConnector
from connectors.http.file import HttpFileConnector
from connectors.http.ogcapi import OgcApiConnector
from connectors.http.policy import NetworkPolicy
from connectors.geoparquet import GeoParquetConnector
from connectors.vector import FlatGeobufConnector, GeoJSONConnector, GeoPackageConnector, ShapefileConnector

CONNECTORS: dict[str, type[Connector]] = {
    c.name: c
    for c in (
        CsvConnector,
        ExcelConnector,
        ShapefileConnector,
        GeoJSONConnector,
        GeoPackageConnector,
        FlatGeobufConnector,
        GeoParquetConnector,
        PostgresConnector,
        MySQLConnector,
        HttpFileConnector,
        OgcApiConnector,
        ArcGisConnector,
    )
}

__all__ = [
    "CONNECTORS", "Chunk", "Connector", "ConfigProblem", "NetworkPolicy", "SourceConfig", "SourceError", "open_source",
]


class ConfigProblem(ValueError):
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


def open_source(spec: dict, base_dir: pathlib.Path | None = None, policy: NetworkPolicy | None = None) -> Connector:
    """A connector for a manifest's ``source`` mapping; relative paths are taken from ``base_dir``.

    ``policy`` says which network hosts HTTP sources may reach (the hub's ``http`` configuration);
    without it, only public addresses.
    """
    fmt = spec.get("format")
    if fmt not in CONNECTORS:
        raise ConfigProblem({"source.format": f"unknown format {fmt!r}; use one of {', '.join(sorted(CONNECTORS))}"})
    cls = CONNECTORS[fmt]
    try:
        config = cls.Config.model_validate(spec)
    except ValidationError as exc:
        raise ConfigProblem(dict(_problem(fmt, cls, err) for err in exc.errors())) from None
    path = getattr(config, "path", None)
    if path is not None:
        resolved = pathlib.Path(path).expanduser()
        if base_dir is not None and not resolved.is_absolute():
            resolved = (base_dir / resolved).resolve()
        config = config.model_copy(update={"path": str(resolved)})
    return cls(config, policy=policy)
