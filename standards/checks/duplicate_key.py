"""``duplicate_key``: a primary-key value more than one conforming row carries. Found over the whole
stage in DuckDB (twinhub.catalog.stage), not chunk by chunk; every row with the value is held back."""

from __future__ import annotations

from twinhub.standards.checks.base import SCHEMA, Check


class DuplicateKey(Check):
    name = "duplicate_key"
    tags = frozenset({"schema", "key"})
    audit = SCHEMA.name
    message = "{key} {value!r} appears in {rows} rows (also source rows {others})"
    forms = frozenset()
    found_by = "stage"
    pandera_name = "field_uniqueness"  # pandera's unique=True, when a schema is compiled with cross_row


DUPLICATE_KEY = DuplicateKey()
