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
from twinhub.hub.config import ConfigError, HubConfig, parse_config

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
# landing: per department, the folders its file sources may be read from (relative to the home).
# A department not listed: its manifest's folder. e.g. landing: {water: [/srv/landing/water]}
landing:
# secrets: per department, the prefixes of the environment variables its manifests may name
# (password_env, headers_env, params_env). Not listed: the department in capitals, e.g. WATER_.
# secrets: {allow_prefixes: {water: [WATER_]}}
secrets:
# limits: caps on what one source may make the hub read (defaults shown):
# limits: {max_columns: 10000, max_download_mb: 2048, max_inflate_ratio: 100}
limits:
# query: what one query's sandbox may use (defaults shown); a query past them fails alone:
# query: {memory: 1GB, threads: 2, temp: 4GB}
query:
# governance: who decides vocabulary code proposals (docs/governance.md), by operating-system account.
# No stewards listed: the account owning the hub home. Each department's accounts may propose for it:
# governance: {stewards: [li.wei], departments: {transport: [zhang.min]}}
governance:
"""


# The embedded default instance: SQLite run storage under the hub home, no telemetry
# (city networks are often air-gapped). docs/production.md shows a PostgreSQL one.
DAGSTER_INSTANCE = """\
telemetry:
  enabled: false
"""


class HubError(UserError, RuntimeError):
    """The hub home is missing or misconfigured."""


class HubConfigError(HubError):
    """twinhub.yaml cannot be read, or has an unknown key or a bad value (each named)."""


def default_home() -> pathlib.Path:
    return pathlib.Path(os.environ.get(ENV_HOME) or pathlib.Path.home() / ".twinhub").expanduser()


@dataclass(frozen=True)
class Hub:
    home: pathlib.Path

    @classmethod
    def open(cls, home: str | os.PathLike | None = None, create: bool = True) -> Hub:
        """The hub at ``home`` (``--home``, else TWINHUB_HOME, else ~/.twinhub), its configuration checked.

        ``create``: make the home if it does not exist (``twinhub init``, ``register``, ``demo``);
        without it a missing home is a HubError and nothing is written (the Dagster code location).
        """
        hub = cls(pathlib.Path(home).expanduser().resolve() if home else default_home().resolve())
        if not (hub.home / CONFIG_FILE).exists():
            if not create:
                raise HubError(f"{hub.home} is not a twinhub home: run `twinhub init --home {hub.home}`")
            hub.init()
        hub.config  # noqa: B018 - a misspelt key is refused before anything runs with its default
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
    def config(self) -> HubConfig:
        """twinhub.yaml, typed (twinhub/hub/config.py); HubConfigError names an unknown key or bad value."""
        path = self.home / CONFIG_FILE
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise HubConfigError(f"{path}: cannot read the hub configuration: {exc}") from exc
        try:
            return parse_config(data)
        except ConfigError as exc:
            raise HubConfigError("\n".join(f"{path}: {problem}" for problem in exc.problems)) from None

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
            return Lake.from_config(self.catalog_dir, self.config.catalog.as_dict(), extent=lambda: self.city.extent_in(self.target_crs))
        except CatalogConfigError as exc:
            raise HubError(f"{self.home / CONFIG_FILE}: {exc}") from exc

    @cached_property
    def pack(self) -> StandardsPack:
        from twinhub.standards.pack import load_pack

        root = self.config.standards
        return load_pack(str((self.home / root).resolve()) if root else None, overlay=self.home / "vocabularies")

    @property
    def city(self) -> City:
        return self.pack.city

    @property
    def target_crs(self) -> str:
        from twinhub.standards.crs import resolve_crs

        return resolve_crs(self.config.target_crs or self.city.target_crs).name

    @property
    def chunk_rows(self) -> int:
        return self.config.chunk_rows

    @cached_property
    def network_policy(self) -> NetworkPolicy:
        """What HTTP sources may reach: the ``http`` mapping of twinhub.yaml."""
        try:
            return NetworkPolicy.from_config(self.config.http.model_dump())
        except ValueError as exc:
            raise HubError(f"{self.home / CONFIG_FILE}: {exc}") from None
