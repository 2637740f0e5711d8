"""Sources read as a sequence of JSON pages (OGC API - Features, ArcGIS FeatureServer).

A run downloads every page into a temporary folder of the connector first (a
page at a time, so memory stays flat), hashing the features as it goes: the
fingerprint covers exactly the rows ``chunks()`` then yields, and a server
changing mid-run cannot mix two versions into one publication. The hash is over
the features only, not the page envelopes, whose timestamps change on every request.
"""

from __future__ import annotations

import hashlib
import io
import json
import pathlib
import tempfile
from abc import abstractmethod
from collections.abc import Iterator
from typing import BinaryIO

import numpy as np
import pandas as pd

from twinhub.connectors.base import DEFAULT_CHUNK_ROWS, Chunk, Connector
from twinhub.connectors.errors import SourceError
from twinhub.connectors.http.config import HttpConfig
from twinhub.connectors.http.fetch import Fetcher, Retryable
from twinhub.connectors.http.policy import redact

ACCEPT_JSON = "application/geo+json, application/json;q=0.9"


def parse_json(body: BinaryIO) -> dict:
    """A JSON object from ``body``; a body that is not complete JSON (cut off?) is ``Retryable``."""
    try:
        page = json.load(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Retryable(f"the response is not complete JSON ({exc})") from None
    if not isinstance(page, dict):
        raise Retryable("the response is JSON but not an object")
    return page


class PagedConnector(Connector):
    """Subclasses say how to walk the pages and how a page becomes rows."""

    config: HttpConfig

    def __init__(self, config: HttpConfig, policy=None):
        super().__init__(config, policy)
        self.fetcher = Fetcher(config, self.policy, self.describe(), self.rules.limits)
        self._folder: tempfile.TemporaryDirectory | None = None
        self._spooled: list[pathlib.Path] | None = None
        self._digest = ""

    def describe(self) -> str:
        return f"{self.name} source {redact(self.config.url)}"

    def get_json(self, url: str) -> dict:
        """One page, retried when cut off; the answer is checked by ``page_error``."""
        body = io.BytesIO()
        self.fetcher.get(url, body, accept=ACCEPT_JSON, validate=parse_json)
        body.seek(0)
        page = json.load(body)
        problem = self.page_error(page)
        if problem:
            raise SourceError(f"{self.describe()}: {redact(url)}: {problem}")
        return page

    def page_error(self, page: dict) -> str | None:
        """What is wrong with a page the server sent with status 200 (ArcGIS reports errors so)."""
        return None

    @abstractmethod
    def pages(self) -> Iterator[dict]:
        """Every page of the source, fetched live, in order."""

    @abstractmethod
    def rows(self, page: dict) -> tuple[list[dict], np.ndarray]:
        """A page's attribute records and shapely geometries."""

    def features(self, page: dict) -> list:
        """The part of a page the fingerprint covers."""
        return page.get("features") or []

    # ---------------------------------------------------------------- the run's copy of the pages

    def _spool(self) -> list[pathlib.Path]:
        if self._spooled is None:
            self._folder = tempfile.TemporaryDirectory(prefix=f"twinhub-{self.name}-")
            digest, paths = hashlib.sha256(), []
            for number, page in enumerate(self.pages(), start=1):
                path = pathlib.Path(self._folder.name) / f"page-{number:06d}.json"
                path.write_text(json.dumps(page), encoding="utf-8")
                digest.update(json.dumps(self.features(page), sort_keys=True).encode())
                paths.append(path)
            self._spooled, self._digest = paths, "sha256:" + digest.hexdigest()
        return self._spooled

    def _first_page(self) -> dict:
        if self._spooled:
            return json.loads(self._spooled[0].read_text(encoding="utf-8"))
        return next(iter(self.pages()))

    def preflight(self) -> None:
        self.policy.check(self.config.url)

    def check(self) -> None:
        self._first_page()

    def columns(self) -> list[str]:
        records, _ = self.rows(self._first_page())
        return list(dict.fromkeys(k for r in records for k in r))

    def fingerprint(self) -> str:
        self._spool()
        return self._digest

    def chunks(self, rows: int = DEFAULT_CHUNK_ROWS) -> Iterator[Chunk]:
        columns: dict[str, None] = {}  # every column seen so far, in order: later pages keep them
        first = 1
        for path in self._spool():
            records, geometries = self.rows(json.loads(path.read_text(encoding="utf-8")))
            for start in range(0, len(records), rows):
                part = records[start : start + rows]
                columns.update(dict.fromkeys(k for r in part for k in r))
                frame = pd.DataFrame.from_records(part, columns=list(columns))
                yield Chunk(frame=frame, geometry=geometries[start : start + rows],
                            source_rows=np.arange(first, first + len(part)))
                first += len(part)
        if first == 1:
            raise SourceError(f"{self.describe()}: the source has no features; check source.url and its filters")
