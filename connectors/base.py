"""The one shape every connector has: a typed config, columns, chunks, a fingerprint."""

from __future__ import annotations

import hashlib
import pathlib
from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import ClassVar

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from twinhub.connectors.errors import SourceError
from twinhub.connectors.http.policy import NetworkPolicy
from twinhub.connectors.points import PointColumn
from twinhub.connectors.policy import SourcePolicy

__all__ = ["DEFAULT_CHUNK_ROWS", "Chunk", "Connector", "FileConfig", "FileConnector", "SourceConfig", "SourceError"]

DEFAULT_CHUNK_ROWS = 50_000


class SourceConfig(BaseModel):
    """Keys every source accepts. Connectors extend it with their own."""

    model_config = ConfigDict(extra="forbid")

    format: str
    crs: str | None = None


class FileConfig(SourceConfig):
    """Keys of sources that are files on the hub's disk."""

    path: str


class Chunk:
    """Rows of a source, as the department wrote them.

    ``frame``: the raw attribute columns; ``source_rows``: 1-based record numbers in the
    source; ``geometry``: shapely geometries in the source CRS, or None. A source of x/y
    columns passes a :class:`~connectors.points.PointColumn` instead, kept as ``points``:
    its shapely points are made only when ``geometry`` is asked for.
    """

    def __init__(self, frame: pd.DataFrame, geometry: np.ndarray | PointColumn | None, source_rows: np.ndarray):
        self.frame = frame
        self.source_rows = source_rows
        self.points = geometry if isinstance(geometry, PointColumn) else None
        self._geometry = None if self.points is not None else geometry

    @property
    def geometry(self) -> np.ndarray | None:
        if self._geometry is None and self.points is not None:
            self._geometry = self.points.shapely()
        return self._geometry


class Connector(ABC):
    """A source of rows. ``rules`` (connectors/policy.py) say what it may reach and read;
    ``policy`` is their network part (the hosts HTTP and database sources may reach)."""

    name: ClassVar[str]
    Config: ClassVar[type[SourceConfig]] = SourceConfig
    path: pathlib.Path | None = None  # the file or folder, for sources that are files

    def __init__(self, config: SourceConfig, policy: SourcePolicy | NetworkPolicy | None = None):
        self.config = config
        self.rules = SourcePolicy.of(policy)
        self.policy = self.rules.network

    def describe(self) -> str:
        return f"{self.name} source"

    def check(self) -> None:  # noqa: B027 - optional: a connector that can open its source cheaply overrides it
        """Raise SourceError unless the source can be opened."""

    def preflight(self) -> None:  # noqa: B027 - optional: sources on the network check their host
        """Raise SourceError if the source could not be reached under the policy, without contacting it."""

    @abstractmethod
    def columns(self) -> list[str]:
        """Attribute column names as the source spells them."""

    @abstractmethod
    def chunks(self, rows: int = DEFAULT_CHUNK_ROWS) -> Iterator[Chunk]:
        """Yield the whole source in chunks of at most ``rows`` rows."""

    def crs(self) -> str | None:
        """The CRS the source declares itself (e.g. a Shapefile's .prj), if any."""
        return None

    @abstractmethod
    def fingerprint(self) -> str:
        """Changes whenever the source's rows change; an unchanged source keeps it."""


class FileConnector(Connector):
    """A source read from a file (or a folder of files); ``origin`` names it in messages if set."""

    Config: ClassVar[type[SourceConfig]] = FileConfig
    config: FileConfig
    origin: str | None = None  # e.g. the URL a downloaded file came from

    def __init__(self, config: FileConfig, policy: SourcePolicy | NetworkPolicy | None = None):
        super().__init__(config, policy)
        self.path = pathlib.Path(config.path)

    def describe(self) -> str:
        return self.origin or f"{self.name} source {self.path}"

    def check(self) -> None:
        """The file exists, still inside the department's folders (a symlink may have changed since
        registration), and its first bytes are those of its format (connectors/magic.py)."""
        if not self.path.exists():
            raise SourceError(f"{self.describe()}: file not found; check source.path in the manifest")
        self.rules.confine("source.path", [self.path, *self.files()])
        from twinhub.connectors.magic import check_magic

        check_magic(self.name, self.path, self.describe(), self.rules.limits)

    def files(self) -> list[pathlib.Path]:
        """The files the source is made of: the file, or every file under a folder."""
        return sorted(self.path.rglob("*")) if self.path.is_dir() else [self.path]

    def fingerprint(self) -> str:
        """Content hash of the source: an unchanged file has the same fingerprint."""
        digest = hashlib.sha256()
        for p in self.files():
            if p.is_file():
                with p.open("rb") as fh:
                    for block in iter(lambda: fh.read(1 << 20), b""):
                        digest.update(block)
        return "sha256:" + digest.hexdigest()
