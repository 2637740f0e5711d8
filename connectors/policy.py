"""What a department's source may reach: its files, its credentials, the network, and how much.

The hub builds one ``SourcePolicy`` per department from twinhub.yaml
(``twinhub.hub.manifest.source_policy``) and passes it to ``open_source``; every
connector then holds it as ``connector.rules``:

- ``roots``: the landing folders the department's files must resolve inside (symlinks,
  ``..`` and absolute paths resolved first; every file of a folder or a Shapefile's
  sidecars too). ``None`` leaves files unconfined: only for trusted callers (tests, tools).
- ``secret_prefixes``: the environment variables ``password_env``, ``headers_env`` and
  ``params_env`` may name. The hub's own variables (``HUB_VARIABLES``) are refused
  whatever the prefixes say.
- ``network``: the hosts HTTP and database sources may reach (``http:`` in twinhub.yaml).
- ``limits``: columns, download size and decompression ratio, each refused with the
  twinhub.yaml key that raises it.

>>> SourcePolicy(secret_prefixes=("WATER_",)).secret_refusal("PGPASSWORD")
"PGPASSWORD is one of the hub's own variables (PG*); name a variable of your department (WATER_*)"
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Iterable
from dataclasses import dataclass, field

from twinhub.connectors.errors import SourceError
from twinhub.connectors.http.policy import NetworkPolicy

# environment variables of the hub, its libraries and its host: a manifest may never name them
HUB_VARIABLES = (
    "TWINHUB_", "DAGSTER_", "PG", "MYSQL_", "MARIADB_", "DUCKDB_", "AWS_", "AZURE_", "GOOGLE_", "GCS_", "GCLOUD_",
    "OSS_", "SWIFT_", "GDAL_", "CPL_", "PROJ_", "SSL_", "REQUESTS_", "CURL_", "HTTP_", "HTTPS_", "NO_PROXY", "ALL_PROXY",
    "KRB5", "SSH_", "VAULT_", "GITHUB_", "GIT_", "LD_", "PYTHON", "PATH", "HOME", "USER", "LOGNAME", "SHELL",
)


class SourceRefused(SourceError):
    """The hub's source policy refuses this source; ``key`` is the manifest key concerned."""

    def __init__(self, key: str, message: str):
        super().__init__(f"{key}: {message}")
        self.key = key
        self.reason = message


@dataclass(frozen=True)
class Limits:
    """Caps on what one source may make the hub read (``limits:`` in twinhub.yaml)."""

    max_columns: int = 10_000
    max_download_bytes: int = 2 << 30  # limits.max_download_mb
    max_inflate_ratio: int = 100  # decompressed / compressed, above INFLATE_MIN_BYTES
    inflate_min_bytes: int = 1 << 20  # smaller outputs cannot do harm whatever their ratio

    def check_columns(self, count: int, where: str, at_least: bool = False) -> None:
        """Raise SourceRefused if ``count`` (or, ``at_least``, more) columns are over the cap."""
        if count > self.max_columns:
            raise SourceRefused("source", (
                f"{where} has {'at least ' if at_least else ''}{count:,} columns; the hub reads at most "
                f"{self.max_columns:,} (limits.max_columns in twinhub.yaml)"))

    def inflated(self, packed: int, unpacked: int) -> bool:
        """Whether ``unpacked`` bytes from ``packed`` ones is a decompression bomb."""
        return unpacked > self.inflate_min_bytes and unpacked > self.max_inflate_ratio * max(packed, 1)


@dataclass(frozen=True)
class SourcePolicy:
    """Everything a department's source may reach (see the module docstring)."""

    network: NetworkPolicy = field(default_factory=NetworkPolicy)
    roots: tuple[pathlib.Path, ...] | None = None
    secret_prefixes: tuple[str, ...] | None = None
    limits: Limits = field(default_factory=Limits)
    department: str | None = None
    roots_declared: bool = True  # False: the roots are the manifest's folder (no landing declared)

    @classmethod
    def of(cls, policy: SourcePolicy | NetworkPolicy | None) -> SourcePolicy:
        """A bare ``NetworkPolicy`` (or None) as a policy of its own: files unconfined, public hosts only."""
        if isinstance(policy, SourcePolicy):
            return policy
        return cls(network=policy or NetworkPolicy())

    # ---------------------------------------------------------------- secrets

    def secret_refusal(self, variable: str) -> str | None:
        """Why a manifest may not name ``variable``; None if it may."""
        upper = variable.upper()
        hub = next((p for p in HUB_VARIABLES if upper.startswith(p)), None)
        wanted = f" ({', '.join(p + '*' for p in self.secret_prefixes)})" if self.secret_prefixes else ""
        if hub is not None:
            return f"{variable} is one of the hub's own variables ({hub}{'*' if hub.endswith('_') or hub == 'PG' else ''}); " \
                   f"name a variable of your department{wanted}"
        if self.secret_prefixes is not None and not any(variable.startswith(p) for p in self.secret_prefixes):
            allowed = ", ".join(p + "*" for p in self.secret_prefixes) or "none"
            return (f"{variable} is not a variable your department may name (allowed: {allowed}); the steward lists "
                    f"the prefixes under secrets.allow_prefixes.{self.department or '<department>'} in twinhub.yaml")
        return None

    def check_secrets(self, named: Iterable[tuple[str, str]]) -> None:
        """Raise SourceRefused for the first ``(manifest key, variable)`` the policy refuses."""
        for key, variable in named:
            why = self.secret_refusal(variable)
            if why:
                raise SourceRefused(key, why)

    # ---------------------------------------------------------------- files

    def confine(self, key: str, paths: Iterable[pathlib.Path]) -> None:
        """Raise SourceRefused unless every path resolves (symlinks too) inside one of the roots."""
        if self.roots is None:
            return
        roots = [pathlib.Path(os.path.realpath(r)) for r in self.roots]
        for path in paths:
            text = str(path)
            if text.startswith("/vsi") or "://" in text:
                raise SourceRefused(key, f"{text!r} is not a file path (GDAL virtual file systems and URLs are "
                                         "refused; an HTTP source is format: http)")
            real = pathlib.Path(os.path.realpath(path))
            if not any(real == root or real.is_relative_to(root) for root in roots):
                via = f" (it resolves to {real})" if real != pathlib.Path(os.path.abspath(path)) else ""
                which = "" if self.roots_declared else " (no landing folders are declared: the manifest's own folder)"
                raise SourceRefused(key, (
                    f"{path}{via} is outside the folders your department may register files from{which}: "
                    f"{', '.join(map(str, roots)) or '(none)'}; put the file there, or ask the steward to list its "
                    f"folder under landing.{self.department or '<department>'} in twinhub.yaml"))
