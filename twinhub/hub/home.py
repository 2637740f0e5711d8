"""The hub home: one folder holding a hub's configuration, registry, catalog and run history.

    <home>/twinhub.yaml     hub configuration (standards pack, target CRS override)
    <home>/registry/        registered manifests, <department>/<dataset>.yaml
    <home>/catalog/         the DuckLake catalog (metadata.sqlite, data/)
    <home>/staging/         per-run staging, removed after each run
    <home>/dagster/         DAGSTER_HOME: run history shown in the Dagster UI

The home comes from ``--home``, else ``TWINHUB_HOME``, else ``~/.twinhub``.
"""

from __future__ import annotations

import os
import pathlib
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import yaml

from twinhub.connectors import NetworkPolicy
from twinhub.errors import UserError

if TYPE_CHECKING:  # imported where used: listing the registry needs none of them
    from twinhub.catalog.lake import Lake
    from twinhub.standards.pack import City, StandardsPack

ENV_HOME = "TWINHUB_HOME"
CONFIG_FILE = "twinhub.yaml"

DEFAULT_CONFIG = """\
# twinhub hub configuration.
# standards: path to this city's standards pack (a folder with city.yaml, schemas/,
#            vocabularies/). Leave empty to use the pack shipped with twinhub.
standards:
# target_crs: overrides the standards pack's target CRS, e.g. EPSG:4490
target_crs:
# chunk_rows: rows read, conformed and staged at a time
chunk_rows: 50000
# catalog: where the catalog lives. Empty: SQLite metadata and Parquet data under catalog/.
# A hub serving several machines keeps metadata in PostgreSQL (password from PGPASSWORD):
# catalog: {metadata: "postgres:dbname=twinhub host=db.example user=twinhub", schema: twinhub,
#           data: /mnt/shared/twinhub/data, previews: /mnt/shared/twinhub/previews}
catalog:
# http: which hosts HTTP sources may reach besides the public internet (docs/connectors.md).
# Loopback, link-local and private addresses are refused unless listed (names, IPs or CIDRs):
# http: {allow_hosts: [gis.city.internal, 10.20.0.0/16], allow_private: false}
http:
"""


# The embedded default instance: SQLite run storage under the hub home, no telemetry
# (city networks are often air-gapped). docs/production.md shows a PostgreSQL one.
DAGSTER_INSTANCE = """\
telemetry:
  enabled: false
"""


class HubError(UserError, RuntimeError):
    """The hub home is missing or misconfigured."""


def default_home() -> pathlib.Path:
    return pathlib.Path(os.environ.get(ENV_HOME) or pathlib.Path.home() / ".twinhub").expanduser()


@dataclass(frozen=True)
class Hub:
    home: pathlib.Path

    @classmethod
    def open(cls, home: str | os.PathLike | None = None, create: bool = True) -> Hub:
        hub = cls(pathlib.Path(home).expanduser().resolve() if home else default_home().resolve())
        if not (hub.home / CONFIG_FILE).exists():
            if not create:
                raise HubError(f"{hub.home} is not a twinhub home: run `twinhub init --home {hub.home}`")
            hub.init()
        return hub

    def init(self) -> None:
        for path in (self.home, self.registry_dir, self.catalog_dir, self.staging_dir, self.dagster_home):
            path.mkdir(parents=True, exist_ok=True)
        config = self.home / CONFIG_FILE
        if not config.exists():
            config.write_text(DEFAULT_CONFIG, encoding="utf-8")
        instance = self.dagster_home / "dagster.yaml"
        if not instance.exists():
            instance.write_text(DAGSTER_INSTANCE, encoding="utf-8")
        self.lake.ensure()

    @cached_property
    def config(self) -> dict:
        path = self.home / CONFIG_FILE
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise HubError(f"{path}: cannot read the hub configuration: {exc}") from exc
        if not isinstance(data, dict):
            raise HubError(f"{path}: expected a mapping")
        return data

    @property
    def registry_dir(self) -> pathlib.Path:
        return self.home / "registry"

    @property
    def catalog_dir(self) -> pathlib.Path:
        return self.home / "catalog"

    @property
    def staging_dir(self) -> pathlib.Path:
        return self.home / "staging"

    @property
    def dagster_home(self) -> pathlib.Path:
        return self.home / "dagster"

    @cached_property
    def lake(self) -> Lake:
        from twinhub.catalog.lake import CatalogConfigError, Lake

        try:
            return Lake.from_config(self.catalog_dir, self.config.get("catalog"), extent=lambda: self.city.extent)
        except CatalogConfigError as exc:
            raise HubError(f"{self.home / CONFIG_FILE}: {exc}") from exc

    @cached_property
    def pack(self) -> StandardsPack:
        from twinhub.standards.pack import load_pack

        root = self.config.get("standards")
        return load_pack(str((self.home / root).resolve()) if root else None)

    @property
    def city(self) -> City:
        return self.pack.city

    @property
    def target_crs(self) -> str:
        from twinhub.standards.crs import resolve_crs

        return resolve_crs(self.config.get("target_crs") or self.city.target_crs).name

    @property
    def chunk_rows(self) -> int:
        return int(self.config.get("chunk_rows") or 50_000)

    @cached_property
    def network_policy(self) -> NetworkPolicy:
        """What HTTP sources may reach: the ``http`` mapping of twinhub.yaml."""
        try:
            return NetworkPolicy.from_config(self.config.get("http"))
        except ValueError as exc:
            raise HubError(f"{self.home / CONFIG_FILE}: {exc}") from None
