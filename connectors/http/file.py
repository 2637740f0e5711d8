"""A GeoJSON or CSV file over HTTP(S), downloaded once per run and read like a local file.

The download goes to a temporary folder of the connector (removed with it); the
fingerprint is the hash of the downloaded bytes and ``chunks()`` reads those same
bytes, so what is published is exactly what was fingerprinted.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import replace
from typing import Literal

from pydantic import model_validator

from twinhub.connectors.base import DEFAULT_CHUNK_ROWS, Chunk, Connector, FileConnector
from twinhub.connectors.csv import CsvConfig, CsvConnector
from twinhub.connectors.http.config import HttpConfig
from twinhub.connectors.http.fetch import Fetcher
from twinhub.connectors.http.policy import redact
from twinhub.connectors.tabular_geometry import TabularConfig
from twinhub.connectors.vector import GeoJSONConnector, VectorConfig

CSV_ONLY = ("x", "y", "geometry", "encoding", "delimiter")
ACCEPT = {"csv": "text/csv, text/plain;q=0.9, */*;q=0.5", "geojson": "application/geo+json, application/json;q=0.9, */*;q=0.5"}


class HttpFileConfig(HttpConfig, TabularConfig):
    data_format: Literal["geojson", "csv"]
    encoding: str | None = None
    delimiter: str | None = None

    @model_validator(mode="after")
    def _csv_keys_for_csv(self) -> HttpFileConfig:
        given = [key for key in CSV_ONLY if getattr(self, key) is not None]
        if given and self.data_format != "csv":
            raise ValueError(f"source.{given[0]}: a key of CSV data; it needs data_format: csv")
        return self


class HttpFileConnector(Connector):
    name = "http"
    Config = HttpFileConfig
    config: HttpFileConfig

    def __init__(self, config: HttpFileConfig, policy=None):
        super().__init__(config, policy)
        self._folder: tempfile.TemporaryDirectory | None = None
        self._file: FileConnector | None = None

    def describe(self) -> str:
        return f"http source {redact(self.config.url)}"

    def _downloaded(self) -> FileConnector:
        """The local file connector over the downloaded body (downloaded on first use)."""
        if self._file is None:
            self._folder = tempfile.TemporaryDirectory(prefix="twinhub-http-")
            path = f"{self._folder.name}/download.{self.config.data_format}"
            fetcher = Fetcher(self.config, self.policy, self.describe(), self.rules.limits)
            with open(path, "wb") as out:
                fetcher.get(self.config.url, out, accept=ACCEPT[self.config.data_format])
            keys = self.config.model_dump(include={"crs", *CSV_ONLY})
            rules = replace(self.rules, roots=None)  # the download is the hub's own file, not a department's path
            if self.config.data_format == "csv":
                inner: FileConnector = CsvConnector(CsvConfig(format="csv", path=path, **keys), rules)
            else:
                inner = GeoJSONConnector(VectorConfig(format="geojson", path=path, crs=self.config.crs), rules)
            inner.origin = self.describe()
            self._file = inner
        return self._file

    def preflight(self) -> None:
        self.policy.check(self.config.url)

    def check(self) -> None:
        self._downloaded().check()

    def columns(self) -> list[str]:
        return self._downloaded().columns()

    def crs(self) -> str | None:
        return self._downloaded().crs()

    def fingerprint(self) -> str:
        return self._downloaded().fingerprint()

    def chunks(self, rows: int = DEFAULT_CHUNK_ROWS) -> Iterator[Chunk]:
        yield from self._downloaded().chunks(rows)
