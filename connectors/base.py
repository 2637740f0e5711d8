"""The one shape every connector has: a typed config, columns, chunks, a fingerprint."""

from __future__ import annotations

import hashlib
import pathlib
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

DEFAULT_CHUNK_ROWS = 50_000


class SourceError(Exception):
    """The source cannot be read; the message names the source, the part, and what to do."""


class SourceConfig(BaseModel):
    """Keys every source accepts. Connectors extend it with their own."""

    model_config = ConfigDict(extra="forbid")

    format: str
    path: str
    crs: str | None = None


@dataclass
class Chunk:
    """Rows of a source, as the department wrote them."""

    frame: pd.DataFrame  # raw attribute columns
    geometry: np.ndarray | None  # shapely geometries in the source CRS, or None
    source_rows: np.ndarray  # 1-based record numbers in the source


class Connector(ABC):
    name: ClassVar[str]
    Config: ClassVar[type[SourceConfig]] = SourceConfig

    def __init__(self, config: SourceConfig):
        self.config = config
        self.path = pathlib.Path(config.path)

    def describe(self) -> str:
        return f"{self.name} source {self.path}"

    def check(self) -> None:
        """Raise SourceError unless the source can be opened."""
        if not self.path.exists():
            raise SourceError(f"{self.describe()}: file not found; check source.path in the manifest")

    @abstractmethod
    def columns(self) -> list[str]:
        """Attribute column names as the source spells them."""

    @abstractmethod
    def chunks(self, rows: int = DEFAULT_CHUNK_ROWS) -> Iterator[Chunk]:
        """Yield the whole source in chunks of at most ``rows`` rows."""

    def crs(self) -> str | None:
        """The CRS the source declares itself (e.g. a Shapefile's .prj), if any."""
        return None

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
