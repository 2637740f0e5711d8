"""The checks a row can fail: one module per check (its id, tags, audit, message and forms), one
registry (:mod:`.registry`) that compile, conform, the stage audit, ``standards check`` and the docs read.

A new check: a module here with a :class:`Check` subclass, added to the list at the end of registry.py.
"""

from twinhub.standards.checks.base import AUDITS, GEOMETRY, LABELS, SCHEMA, Check, Context, StageAudit
from twinhub.standards.checks.reason import Reason, reasons_json
from twinhub.standards.checks.registry import checks, get, register, registered, renames, unregister

__all__ = ["AUDITS", "GEOMETRY", "LABELS", "SCHEMA", "Check", "Context", "Reason", "StageAudit", "checks", "get",
           "reasons_json", "register", "registered", "renames", "unregister"]
