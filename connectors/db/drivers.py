"""What differs between the databases: the driver, the dialect, read-only sessions, streaming cursors.

Each is a small class of class constants and a few methods (sqlglot's way with dialects).
Rows are streamed from the server: PostgreSQL through a named (server-side) cursor,
MySQL/MariaDB through an unbuffered cursor, ``fetchmany`` at a time either way.

Connections use only what the manifest says, never the hub's own environment: libpq would
otherwise fill every parameter left out from ``PGPASSWORD``, ``PGPASSFILE`` (``~/.pgpass``),
``PGSERVICE``, ``PGSSLCERT`` (``~/.postgresql/postgresql.crt``), Kerberos tickets..., and send
the hub's credentials to a department's server. ``CLEAN_LIBPQ`` sets each of them explicitly
(an empty password is never sent; an explicit parameter wins over a service file's). PyMySQL
reads no environment or option file unless asked.

``privileged`` says why a session may not be used: a superuser, or an account that may read or
write the server's files or run programs (PostgreSQL's ``pg_read_server_files`` and kin; MariaDB's
``FILE``, ``SUPER`` or ``ALL PRIVILEGES`` on ``*.*``). Give the hub a read-only account.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import Any, ClassVar

import psycopg
import pymysql
import pymysql.cursors
from sqlglot import exp

NO_CLIENT_CERT = "/nonexistent/twinhub-sends-no-client-certificate"
NO_PASSFILE = "/nonexistent/twinhub-reads-no-password-file"
CLEAN_LIBPQ = {  # libpq parameters that would otherwise come from the hub's environment or home
    "passfile": NO_PASSFILE, "sslcert": NO_CLIENT_CERT, "sslkey": NO_CLIENT_CERT, "sslmode": "prefer",
    "gssencmode": "disable", "require_auth": "!gss,!sspi", "options": "", "application_name": "twinhub",
}


class Driver:
    dialect: ClassVar[str]
    default_port: ClassVar[int]
    errors: ClassVar[tuple[type[Exception], ...]]

    @classmethod
    def connect(cls, host: str, address: str, port: int, database: str, user: str, password: str | None,
                timeout: float) -> Any:
        """A read-only session with ``host`` at ``address`` (the one the network policy checked)."""
        raise NotImplementedError

    @classmethod
    def privileged(cls, conn: Any) -> str | None:
        """Why the session's account is too powerful for a source, or None."""
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
    def connect(cls, host, address, port, database, user, password, timeout):
        conn = psycopg.connect(
            host=host, hostaddr=address, port=port, dbname=database, user=user, password=password or "",
            connect_timeout=max(1, round(timeout)), **CLEAN_LIBPQ,
        )
        conn.read_only = True  # every transaction of this session is READ ONLY on the server
        return conn

    @classmethod
    def privileged(cls, conn):
        with conn.cursor() as cur:
            cur.execute(
                "SELECT rolsuper, pg_has_role(current_user, 'pg_read_server_files', 'MEMBER'), "
                "pg_has_role(current_user, 'pg_write_server_files', 'MEMBER'), "
                "pg_has_role(current_user, 'pg_execute_server_program', 'MEMBER'), "
                "(SELECT string_agg(s.rolname, ', ') FROM pg_roles s WHERE s.rolsuper AND s.rolname <> current_user "
                "AND pg_has_role(current_user, s.oid, 'MEMBER')) "
                "FROM pg_roles WHERE rolname = current_user"
            )
            superuser, read_files, write_files, programs, super_roles = cur.fetchone()
        conn.rollback()
        if superuser:
            return "is a superuser"
        if super_roles:  # SET ROLE would make it one
            return f"is a member of the superuser role {super_roles}"
        roles = [name for name, held in (("pg_read_server_files", read_files), ("pg_write_server_files", write_files),
                                         ("pg_execute_server_program", programs)) if held]
        return f"is a member of {', '.join(roles)}" if roles else None

    @classmethod
    @contextlib.contextmanager
    def cursor(cls, conn):
        with conn.cursor(name="twinhub_read") as cur:  # server-side: the server holds the result
            yield cur


GLOBAL_GRANT = re.compile(r"^GRANT (.+?) ON \*\.\* TO ", re.IGNORECASE)
POWERFUL_MYSQL = frozenset({"ALL PRIVILEGES", "FILE", "SUPER"})


class MySQL(Driver):
    """MySQL and MariaDB."""

    dialect = "mysql"
    default_port = 3306
    errors = (pymysql.Error,)

    @classmethod
    def connect(cls, host, address, port, database, user, password, timeout):
        conn = pymysql.connect(
            host=address, port=port, database=database, user=user, password=password or "",
            connect_timeout=timeout, charset="utf8mb4", autocommit=False, local_infile=False,
        )
        with conn.cursor() as cur:
            cur.execute("START TRANSACTION READ ONLY")
        return conn

    @classmethod
    def privileged(cls, conn):
        with conn.cursor() as cur:
            cur.execute("SHOW GRANTS")
            grants = [row[0] for row in cur.fetchall()]
        for grant in grants:
            match = GLOBAL_GRANT.match(grant)
            if not match:
                continue
            held = {p.strip().upper() for p in match.group(1).split(",")}
            found = sorted(held & POWERFUL_MYSQL)
            if found:
                return f"holds {', '.join(found)} on *.*"
        return None

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
