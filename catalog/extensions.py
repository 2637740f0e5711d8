"""DuckDB connections that load extensions from installed PyPI packages only.

City networks are often air-gapped, so the hub never lets DuckDB install or
autoload an extension from the internet. Each extension ships as the PyPI
package ``duckdb-extension-<name>`` pinned to DuckDB's exact version; we
``LOAD`` the file from that package's folder.
"""

from __future__ import annotations

import importlib
import pathlib
from functools import lru_cache

import duckdb

# extension name -> the Python package that carries its binary
PACKAGES = {
    "spatial": "duckdb_extension_spatial",
    "sqlite_scanner": "duckdb_extension_sqlite_scanner",
    "ducklake": "duckdb_extension_ducklake",
    "postgres_scanner": "duckdb_extension_postgres_scanner",
}

# ducklake needs sqlite_scanner (for SQLite metadata) loaded before it attaches
DEFAULT_EXTENSIONS = ("spatial", "sqlite_scanner", "ducklake")

# Extension files whose signature DuckDB has verified in this process. Checking a
# signature hashes the whole file (~150 MB for these three, ~1 s); later connections
# in the same process load the same verified files without hashing them again.
_verified: set[pathlib.Path] = set()


class ExtensionMissing(RuntimeError):
    """An extension's package is not installed in this environment."""


@lru_cache(maxsize=None)
def extension_path(name: str) -> pathlib.Path:
    """Path of the ``<name>.duckdb_extension`` file for the running DuckDB.

    >>> extension_path("spatial").name
    'spatial.duckdb_extension'
    """
    package = PACKAGES.get(name)
    if package is None:
        raise ExtensionMissing(f"twinhub does not know the DuckDB extension {name!r}")
    try:
        module = importlib.import_module(package)
    except ImportError as exc:
        pip_name = package.replace("_", "-")
        raise ExtensionMissing(
            f"DuckDB extension {name!r} is not installed: pip install {pip_name}=={duckdb.__version__}"
        ) from exc
    root = pathlib.Path(module.__file__).parent
    wanted = root / "extensions" / f"v{duckdb.__version__}" / f"{name}.duckdb_extension"
    if wanted.is_file():
        return wanted
    found = sorted(root.rglob(f"{name}.duckdb_extension"))
    if not found:
        raise ExtensionMissing(f"{package} has no {name}.duckdb_extension file under {root}")
    return found[0]


def connect(
    database: str = ":memory:",
    extensions: tuple[str, ...] = DEFAULT_EXTENSIONS,
    read_only: bool = False,
) -> duckdb.DuckDBPyConnection:
    """Open DuckDB with autoinstall/autoload off and the given extensions loaded.

    The first connection in a process has DuckDB verify each extension's
    signature; later ones reuse that verification (see ``_verified``).
    """
    paths = [extension_path(name) for name in extensions]
    config = {
        "autoinstall_known_extensions": False,
        "autoload_known_extensions": False,
        "allow_unsigned_extensions": all(p in _verified for p in paths),
    }
    con = duckdb.connect(database, read_only=read_only, config=config)
    for path in paths:
        con.execute(f"LOAD '{path}'")
        if not config["allow_unsigned_extensions"]:
            _verified.add(path)
    return con
