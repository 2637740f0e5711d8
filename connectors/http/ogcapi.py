"""OGC API - Features: a collection's ``items``, page after page through the ``next`` links.

``url`` is the collection's items URL (``https://host/collections/{id}/items``);
``limit`` asks for that many features a page (the server may send fewer),
``bbox`` (min lon, min lat, max lon, max lat, in CRS84) filters them. Features are
in CRS84 (longitude, latitude) unless the manifest's ``crs`` says otherwise.
When the first page says ``numberMatched``, the features read must add up to it.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterator

import numpy as np
from pydantic import Field, field_validator

from twinhub.connectors.errors import SourceError
from twinhub.connectors.http.config import HttpConfig
from twinhub.connectors.http.features import geojson_rows
from twinhub.connectors.http.fetch import with_params
from twinhub.connectors.http.pages import PagedConnector
from twinhub.connectors.http.policy import redact

NEXT_TYPES = ("application/geo+json", "application/json")


class OgcApiConfig(HttpConfig):
    limit: int = Field(1000, ge=1, le=100_000)
    bbox: list[float] | None = None

    @field_validator("bbox")
    @classmethod
    def _four_numbers(cls, bbox: list[float] | None) -> list[float] | None:
        if bbox is not None and (len(bbox) != 4 or bbox[0] > bbox[2] or bbox[1] > bbox[3]):
            raise ValueError("give [min lon, min lat, max lon, max lat], e.g. [-2.5, 51.3, -2.3, 51.45]")
        return bbox


def next_link(page: dict, url: str) -> str | None:
    """The absolute URL of the page's ``rel: next`` link (a GeoJSON or JSON one first), or None."""
    links = [link for link in page.get("links") or [] if isinstance(link, dict) and link.get("rel") == "next" and link.get("href")]
    links.sort(key=lambda link: link.get("type") not in NEXT_TYPES)
    return urllib.parse.urljoin(url, links[0]["href"]) if links else None


class OgcApiConnector(PagedConnector):
    name = "ogcapi"
    Config = OgcApiConfig
    config: OgcApiConfig

    def pages(self) -> Iterator[dict]:
        bbox = ",".join(f"{v:g}" for v in self.config.bbox) if self.config.bbox else None
        url: str | None = with_params(self.config.url, {"limit": self.config.limit, "bbox": bbox})
        seen: set[str] = set()
        matched, read = None, 0
        while url:
            if url in seen:
                raise SourceError(f"{self.describe()}: the next link leads back to {redact(url)}; the server's paging is broken")
            seen.add(url)
            page = self.get_json(url)
            if page.get("type") != "FeatureCollection":
                raise SourceError(f"{self.describe()}: {redact(url)} is not a GeoJSON FeatureCollection; "
                                  "source.url must be a collection's items URL (…/collections/{id}/items)")
            if len(seen) == 1:
                matched = page.get("numberMatched")
            read += len(page.get("features") or [])
            yield page
            url = next_link(page, url)
        if isinstance(matched, int) and matched != read:
            raise SourceError(
                f"{self.describe()}: the server matched {matched} features but its pages held {read}; "
                "the collection may have changed while it was read: run again"
            )

    def rows(self, page: dict) -> tuple[list[dict], np.ndarray]:
        return geojson_rows(page.get("features") or [])

    def crs(self) -> str | None:
        return "OGC:CRS84"
