"""Connectors read departments' sources in chunks; one registry names them all.

Adding a format means one module with a ``Connector`` subclass and one line
in ``CONNECTORS``.
"""

from __future__ import annotations

import pathlib

from pydantic import ValidationError

from connectors.base import Chunk, Connector, SourceConfig, SourceError
from connectors.csv import CsvConnector
from connectors.excel import ExcelConnector
from connectors.vector import GeoJSONConnector, GeoPackageConnector, ShapefileConnector

CONNECTORS: dict[str, type[Connector]] = {
    c.name: c for c in (CsvConnector, ExcelConnector, ShapefileConnector, GeoJSONConnector, GeoPackageConnector)
}

__all__ = ["CONNECTORS", "Chunk", "Connector", "ConfigProblem", "SourceConfig", "SourceError", "open_source"]


class ConfigProblem(ValueError):
    """A source configuration key is wrong; ``problems`` maps ``source.<key>`` to a message."""

    def __init__(self, problems: dict[str, str]):
        self.problems = problems
        super().__init__("; ".join(f"{k}: {v}" for k, v in problems.items()))


def open_source(spec: dict, base_dir: pathlib.Path | None = None) -> Connector:
    """A connector for a manifest's ``source`` mapping; relative paths are taken from ``base_dir``."""
    fmt = spec.get("format")
    if fmt not in CONNECTORS:
        raise ConfigProblem({"source.format": f"unknown format {fmt!r}; use one of {', '.join(sorted(CONNECTORS))}"})
    cls = CONNECTORS[fmt]
    try:
        config = cls.Config.model_validate(spec)
    except ValidationError as exc:
        raise ConfigProblem(
            {
                "source." + ".".join(str(p) for p in err["loc"]): (
                    f"not a key of {fmt} sources (allowed: {', '.join(cls.Config.model_fields)})"
                    if err["type"] == "extra_forbidden"
                    else str(err["ctx"]["error"])
                    if err["type"] == "value_error"
                    else err["msg"]
                )
                for err in exc.errors()
            }
        ) from None
    path = pathlib.Path(config.path).expanduser()
    if base_dir is not None and not path.is_absolute():
        path = (base_dir / path).resolve()
    return cls(config.model_copy(update={"path": str(path)}))
