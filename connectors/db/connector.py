"""Database sources: PostgreSQL/PostGIS and MySQL/MariaDB tables or read-only queries.

The host must be allowed by the hub's network policy (``http.allow_hosts``; the connection
goes to the address that was checked), and the account must not be privileged
(connectors/db/drivers.py). The password comes from the environment variable named by
``source.password_env`` (an allowed one: connectors/policy.py), is read only when connecting, and never appears in a message: connection and query
errors are re-raised as SourceErrors naming host, port, database and user, with the
password masked should the driver ever echo it, and without the driver's exception
chained to them.

Fingerprint: with ``watermark`` (a column such as ``updated_at``), the row count and
the column's maximum; otherwise a hash of every row, independent of row order, so an
unordered table that did not change keeps its fingerprint.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import shapely
from sqlglot import exp

from twinhub.connectors.base import DEFAULT_CHUNK_ROWS, Chunk, Connector
from twinhub.connectors.db import sql
from twinhub.connectors.db.config import DbConfig, MySQLConfig, PostgresConfig
from twinhub.connectors.db.drivers import Driver, MySQL, Postgres
from twinhub.connectors.errors import SourceError
from twinhub.connectors.points import points_from_columns

PLAIN = (str, int, float, bool, type(None))  # anything else (Decimal, dates, UUIDs...) becomes text


def plain(value: Any) -> Any:
    """A cell the catalog can hold: numbers, text and booleans as they are, other values as text."""
    if isinstance(value, PLAIN):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    return str(value)


class DatabaseConnector(Connector):
    driver: ClassVar[type[Driver]]
    config: DbConfig

    def __init__(self, config: DbConfig, policy=None):
        super().__init__(config, policy)
        self._columns: list[str] | None = None
        self._srid: int | None | bool = False  # False: not asked yet

    @property
    def port(self) -> int:
        return self.config.port or self.driver.default_port

    def describe(self) -> str:
        c = self.config
        what = f"table {c.table}" if c.table else "query"
        return f"{self.name} source {c.user}@{c.host}:{self.port}/{c.database} ({what})"

    # ---------------------------------------------------------------- connecting, without leaking the password

    def _password(self) -> str | None:
        name = self.config.password_env
        if name is None:
            return None
        value = os.environ.get(name)
        if value is None:
            raise SourceError(
                f"{self.describe()}: environment variable {name} (source.password_env) is not set; "
                "set it in the environment the hub runs in (the Dagster webserver and daemon)"
            )
        return value

    def _scrub(self, exc: Exception, password: str | None) -> str:
        text = " ".join(str(exc).split())
        return text.replace(password, "***") if password and len(password) >= 3 else text

    @contextlib.contextmanager
    def _session(self) -> Iterator[Any]:
        """A read-only connection; driver errors become SourceErrors without the password."""
        c = self.config
        address = self.policy.check_host(c.host, self.port, self.describe())  # before the password is read
        password = self._password()
        try:
            conn = self.driver.connect(c.host, address, self.port, c.database, c.user, password, c.connect_timeout)
            power = self.driver.privileged(conn)
        except self.driver.errors as exc:
            raise SourceError(
                f"{self.describe()}: cannot connect to {self.name} at {c.host}:{self.port}, database {c.database!r}, "
                f"user {c.user!r}: {self._scrub(exc, password)}; check that the server is running and reachable from "
                f"the hub, source.host/port/database/user, and the password in ${c.password_env or '(no source.password_env)'}"
            ) from None
        if power:
            with contextlib.suppress(Exception):
                conn.close()
            raise SourceError(
                f"{self.describe()}: refused, user {c.user!r} {power}: such an account can read the server's own "
                "files and catalogues; give the hub a user that can only read the source's tables (source.user)"
            )
        try:
            yield conn
        except self.driver.errors as exc:
            raise SourceError(
                f"{self.describe()}: the query failed: {self._scrub(exc, password)}; "
                "check source.table / source.query and source.geometry / x / y"
            ) from None
        finally:
            with contextlib.suppress(Exception):
                conn.close()

    def preflight(self) -> None:
        self.policy.check_host(self.config.host, self.port, self.describe())

    # ---------------------------------------------------------------- what is read

    def _query(self) -> exp.Query:
        if self.config.query is not None:
            return sql.read_only_select(self.config.query, self.driver.dialect)
        return sql.table_query(self.config.table, self.driver.dialect)

    def _result_columns(self) -> list[str]:
        if self._columns is None:
            with self._session() as conn:
                self._columns = self.driver.names(conn, sql.probe(self._query(), self.driver.dialect))
        return self._columns

    def _column(self, key: str) -> str | None:
        """The result column ``source.<key>`` names (case-insensitively if not exactly)."""
        wanted = getattr(self.config, key)
        if wanted is None:
            return None
        names = self._result_columns()
        found = wanted if wanted in names else next((n for n in names if n.lower() == wanted.lower()), None)
        if found is None:
            raise SourceError(f"{self.describe()}: source.{key} names column {wanted!r}, which the result does not have "
                              f"({', '.join(names)}); correct source.{key}")
        return found

    def check(self) -> None:
        for key in ("geometry", "x", "y", "watermark"):
            self._column(key)
        declared, found = (self.config.crs or "").upper(), self.crs()
        if declared.startswith("EPSG:") and found and declared != found:
            raise SourceError(
                f"{self.describe()}: source.crs says {self.config.crs} but the geometries carry SRID "
                f"{found.split(':')[1]}; remove source.crs or correct it"
            )

    def columns(self) -> list[str]:
        geometry = self._column("geometry")
        return [n for n in self._result_columns() if n != geometry]

    def crs(self) -> str | None:
        """``EPSG:<srid>`` of the first geometry, when it has an SRID."""
        geometry = self._column("geometry")
        if geometry is None:
            return None
        if self._srid is False:
            with self._session() as conn:
                row = self.driver.one(conn, sql.first_srid(self._query(), geometry, self.driver.dialect))
            self._srid = int(row[0]) if row and row[0] else None
        return f"EPSG:{self._srid}" if self._srid else None

    def _select(self, conn: Any) -> str:
        geometry = self._column("geometry")
        wkb = self.driver.wkb(conn, exp.column(geometry, quoted=True)) if geometry else None
        return sql.wrapped(self._query(), self.columns(), geometry, self.driver.dialect, wkb)

    def fingerprint(self) -> str:
        watermark = self._column("watermark")
        if watermark is not None:
            with self._session() as conn:
                count, latest = self.driver.one(conn, sql.watermark(self._query(), watermark, self.driver.dialect))
            return f"watermark:{count}:{latest}"
        total, count = 0, 0  # a sum of row hashes: the same whatever order the rows come in
        with self._session() as conn:
            for _names, batch in self.driver.stream(conn, self._select(conn), DEFAULT_CHUNK_ROWS):
                for row in batch:
                    total += int.from_bytes(hashlib.sha256(repr(tuple(map(plain, row))).encode()).digest()[:16], "big")
                count += len(batch)
        return f"rows:{count}:{total % (1 << 128):032x}"

    def chunks(self, rows: int = DEFAULT_CHUNK_ROWS) -> Iterator[Chunk]:
        self.check()
        expected = self.crs()
        first = 1
        with self._session() as conn:
            for names, batch in self.driver.stream(conn, self._select(conn), rows):
                frame = pd.DataFrame.from_records([tuple(map(plain, r)) for r in batch], columns=names)
                yield Chunk(frame=frame, geometry=self._geometry(frame, expected, first), source_rows=np.arange(first, first + len(frame)))
                first += len(frame)
        if first == 1:
            raise SourceError(f"{self.describe()}: the result has no rows; check source.table / source.query")

    def _geometry(self, frame: pd.DataFrame, expected: str | None, first: int) -> np.ndarray | None:
        """Geometries from WKB (popping the added columns) or from x/y; SRIDs must agree."""
        if self.config.x:
            return points_from_columns(frame, self._column("x"), self._column("y"))
        if sql.GEOMETRY_WKB not in frame:
            return None
        wkb = frame.pop(sql.GEOMETRY_WKB).map(lambda v: bytes.fromhex(v) if isinstance(v, str) else v).to_numpy()
        srids = pd.to_numeric(frame.pop(sql.GEOMETRY_SRID), errors="coerce").fillna(0).astype(int).to_numpy()
        odd = np.flatnonzero((srids != 0) & (srids != int((expected or "EPSG:0").split(":")[1])))
        if len(odd):
            raise SourceError(
                f"{self.describe()}: row {first + odd[0]} has SRID {srids[odd[0]]} but the first geometry has "
                f"{expected or 'none'}; one source has one CRS: ST_Transform the column in source.query"
            )
        return shapely.from_wkb(wkb, on_invalid="ignore")


class PostgresConnector(DatabaseConnector):
    name = "postgres"
    Config = PostgresConfig
    driver = Postgres


class MySQLConnector(DatabaseConnector):
    name = "mysql"
    Config = MySQLConfig
    driver = MySQL
