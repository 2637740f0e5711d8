"""Keys of database sources. The password is never one of them: ``password_env`` names the
environment variable that holds it, read only when connecting."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, field_validator, model_validator

from twinhub.connectors.db.sql import read_only_select, table_query
from twinhub.connectors.http.config import ENV_NAME
from twinhub.connectors.tabular_geometry import TabularConfig


class DbConfig(TabularConfig):
    """``geometry`` names a spatial column (read as WKB with its SRID), or ``x``/``y`` numeric columns."""

    sql_dialect: ClassVar[str]

    host: str
    port: int | None = Field(None, ge=1, le=65535)
    database: str
    user: str
    password_env: str | None = None
    password: str | None = None  # refused: only here to say so clearly
    table: str | None = None
    query: str | None = None
    watermark: str | None = None  # a column such as updated_at: fingerprint = row count + its maximum
    connect_timeout: float = Field(10.0, gt=0, le=300)

    @field_validator("password")
    @classmethod
    def _no_password(cls, value: str | None) -> None:
        raise ValueError(
            "never write a password in a manifest: remove source.password, put the password in an "
            "environment variable of the hub (e.g. PARKS_DB_PASSWORD) and name it in source.password_env"
        )

    @field_validator("password_env")
    @classmethod
    def _variable_name(cls, value: str | None) -> str | None:
        if value is not None and not ENV_NAME.match(value):
            raise ValueError(f"{value!r} is not the name of an environment variable (e.g. PARKS_DB_PASSWORD)")
        return value

    @field_validator("query")
    @classmethod
    def _read_only(cls, query: str | None) -> str | None:
        if query is not None:
            read_only_select(query, cls.sql_dialect)
        return query

    @field_validator("table")
    @classmethod
    def _table_name(cls, table: str | None) -> str | None:
        if table is not None:
            table_query(table, cls.sql_dialect)
        return table

    @model_validator(mode="after")
    def _table_or_query(self) -> DbConfig:
        if (self.table is None) == (self.query is None):
            raise ValueError("source.table: give either source.table or source.query (a read-only SELECT), not both or neither")
        return self


class PostgresConfig(DbConfig):
    sql_dialect = "postgres"


class MySQLConfig(DbConfig):
    sql_dialect = "mysql"
