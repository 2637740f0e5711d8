"""ArcGIS REST FeatureServer (or MapServer) layers: the layer's ``query``, page after page.

``url`` is the layer (``https://host/arcgis/rest/services/Parks/FeatureServer/0``).
The connector first asks for the count (``returnCountOnly``), then queries
``where`` with ``outFields=*`` from ``resultOffset=0``, moving the offset on by the
features each page held until the server stops saying ``exceededTransferLimit``;
the features read must add up to the count. ``data_format: geojson`` (the default)
asks for ``f=geojson``, which ArcGIS sends in WGS 84; ``json`` asks for Esri JSON,
for servers older than 10.4, in the layer's own spatial reference.
ArcGIS reports errors inside a 200 answer (``{"error": {...}}``): they are errors here.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

import numpy as np
from pydantic import Field

from twinhub.connectors.errors import SourceError
from twinhub.connectors.http.config import HttpConfig
from twinhub.connectors.http.features import esri_rows, geojson_rows
from twinhub.connectors.http.fetch import with_params
from twinhub.connectors.http.pages import PagedConnector

WEB_MERCATOR_WKIDS = frozenset({102100, 102113, 900913})  # Esri's own codes for EPSG:3857


class ArcGisConfig(HttpConfig):
    data_format: Literal["geojson", "json"] = "geojson"
    where: str = "1=1"
    page_size: int | None = Field(None, ge=1, le=100_000)  # resultRecordCount; None: the layer's maxRecordCount
    order_by: str | None = None  # orderByFields, for servers whose paging needs a stable order


def esri_crs(spatial_reference: dict | None) -> str | None:
    """``EPSG:n`` of an Esri spatialReference (its latestWkid when present)."""
    if not spatial_reference:
        return None
    wkid = spatial_reference.get("latestWkid") or spatial_reference.get("wkid")
    if wkid in WEB_MERCATOR_WKIDS:
        return "EPSG:3857"
    if wkid:
        return f"EPSG:{wkid}"
    return spatial_reference.get("wkt")


class ArcGisConnector(PagedConnector):
    name = "arcgis"
    Config = ArcGisConfig
    config: ArcGisConfig

    def _query(self, **params: object) -> str:
        return with_params(self.config.url.rstrip("/") + "/query", {"where": self.config.where, **params})

    def page_error(self, page: dict) -> str | None:
        error = page.get("error")
        if not isinstance(error, dict):
            return None
        code, message = error.get("code"), error.get("message") or ""
        details = "; ".join(str(d) for d in error.get("details") or [] if d)
        said = f"ArcGIS error {code}: {message}" + (f" ({details})" if details else "")
        if code in (498, 499):
            return said + "; the token is missing or expired: check the variable named in source.params_env"
        return said + "; check source.url (the layer, ending in /FeatureServer/<n>) and source.where"

    def count(self) -> int:
        page = self.get_json(self._query(returnCountOnly="true", f="json"))
        if not isinstance(page.get("count"), int):
            raise SourceError(f"{self.describe()}: the layer did not answer a count query; is source.url a layer URL?")
        return page["count"]

    def pages(self) -> Iterator[dict]:
        expected, offset = self.count(), 0
        while True:
            page = self.get_json(self._query(
                outFields="*", returnGeometry="true", f=self.config.data_format, resultOffset=offset,
                resultRecordCount=self.config.page_size, orderByFields=self.config.order_by,
            ))
            features = page.get("features")
            if not isinstance(features, list):
                raise SourceError(f"{self.describe()}: the answer at offset {offset} has no features list")
            yield page
            offset += len(features)
            if not exceeded(page):
                break
            if not features:
                raise SourceError(f"{self.describe()}: the server says there is more after offset {offset} but sent none")
        if offset != expected:
            raise SourceError(
                f"{self.describe()}: the layer counted {expected} features but its pages held {offset}; "
                "it may have changed while it was read: run again (or set source.order_by to its object id field)"
            )

    def rows(self, page: dict) -> tuple[list[dict], np.ndarray]:
        features = page.get("features") or []
        return esri_rows(features) if self.config.data_format == "json" else geojson_rows(features)

    def crs(self) -> str | None:
        if self.config.data_format == "geojson":
            return "EPSG:4326"
        return esri_crs(self._first_page().get("spatialReference"))


def exceeded(page: dict) -> bool:
    """Whether the server has more features than the page held (GeoJSON puts the flag in properties)."""
    return bool(page.get("exceededTransferLimit") or (page.get("properties") or {}).get("exceededTransferLimit"))
