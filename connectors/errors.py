"""The error every connector raises for a source it cannot read."""

from __future__ import annotations

from twinhub.errors import UserError


class SourceError(UserError):
    """The source cannot be read; the message names the source, the part, and what to do."""
