"""What differs between the databases: the driver, the dialect, read-only sessions, streaming cursors.

Each is a small class of class constants and four methods (sqlglot's way with dialects).
Rows are streamed from the server: PostgreSQL through a named (server-side) cursor,
MySQL/MariaDB through an unbuffered cursor, ``fetchmany`` at a time either way.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, ClassVar

import psycopg
import pymysql
import pymysql.cursors
from sqlglot import exp


class Driver:
    dialect: ClassVar[str]
    default_port: ClassVar[int]
    errors: ClassVar[tuple[type[Exception], ...]]

    @classmethod
    def connect(cls, host: str, port: int, database: str, user: str, password: str | None, timeout: float) -> Any:
        raise NotImplementedError

    @classmethod
    def wkb(cls, conn: Any, column: exp.Expression) -> exp.Expression:
        """The expression that reads ``column`` as WKB with x = easting/longitude."""
        return exp.Anonymous(this="ST_AsBinary", expressions=[column])

    @classmethod
    @contextlib.contextmanager
    def cursor(cls, conn: Any) -> Iterator[Any]:
        raise NotImplementedError

    @classmethod
    def stream(cls, conn: Any, sql: str, rows: int) -> Iterator[tuple[list[str], list[tuple]]]:
        """The result's column names and its rows, ``rows`` at a time."""
        with cls.cursor(conn) as cur:
            cur.execute(sql)
            names = [d[0] for d in cur.description]
            while batch := cur.fetchmany(rows):
                yield names, list(batch)

    @classmethod
    def one(cls, conn: Any, sql: str) -> tuple | None:
        with conn.cursor() as cur:
            cur.execute(sql)
            return cur.fetchone()

    @classmethod
    def names(cls, conn: Any, sql: str) -> list[str]:
        with conn.cursor() as cur:
            cur.execute(sql)
            names = [d[0] for d in cur.description]
            cur.fetchall()
            return names


class Postgres(Driver):
    dialect = "postgres"
    default_port = 5432
    errors = (psycopg.Error,)

    @classmethod
    def connect(cls, host, port, database, user, password, timeout):
        conn = psycopg.connect(
            host=host, port=port, dbname=database, user=user, password=password,
            connect_timeout=max(1, round(timeout)), application_name="twinhub",
        )
        conn.read_only = True  # every transaction of this session is READ ONLY on the server
        return conn

    @classmethod
    @contextlib.contextmanager
    def cursor(cls, conn):
        with conn.cursor(name="twinhub_read") as cur:  # server-side: the server holds the result
            yield cur


class MySQL(Driver):
    """MySQL and MariaDB."""

    dialect = "mysql"
    default_port = 3306
    errors = (pymysql.Error,)

    @classmethod
    def connect(cls, host, port, database, user, password, timeout):
        conn = pymysql.connect(
            host=host, port=port, database=database, user=user, password=password or "",
            connect_timeout=timeout, charset="utf8mb4", autocommit=False,
        )
        with conn.cursor() as cur:
            cur.execute("START TRANSACTION READ ONLY")
        return conn

    @classmethod
    def wkb(cls, conn, column):
        # MySQL 8 writes geographic SRSs (e.g. 4326) latitude first unless told otherwise; MariaDB does not
        server = conn.get_server_info()
        if "mariadb" in server.lower() or int(server.split(".", 1)[0]) < 8:
            return super().wkb(conn, column)
        return exp.Anonymous(this="ST_AsBinary", expressions=[column, exp.Literal.string("axis-order=long-lat")])

    @classmethod
    @contextlib.contextmanager
    def cursor(cls, conn):
        with conn.cursor(pymysql.cursors.SSCursor) as cur:  # unbuffered: rows arrive as they are fetched
            yield cur
