"""What an error is, carried by its type: the bottom layer (imports nothing from twinhub).

Two questions decide what happens to an error, and the type answers both, in the manner of dlt's
``DestinationTerminalException`` / ``DestinationTransientException``:

* ``user_error``: the user's to fix (a bad manifest, an unknown dataset, a refused query). The CLI
  prints its message as one line and exits 2. Anything else is a bug or an outage: exit 1 with the
  hint to set ``TWINHUB_DEBUG=1`` (docs/cli.md, exit codes).
* ``retryable``: running the same step again a few seconds later may succeed (the catalog was busy).
  Dagster's retry policy (twinhub/pipelines/datasets.py) retries these and fails the rest at once.

Each error class keeps its Python base too (``class ManifestError(UserError, ValueError)``), so code
catching ``ValueError`` or ``LookupError`` behaves as before.

    >>> class Busy(TransientError, RuntimeError):
    ...     user_error = True  # the user may simply run it again; Dagster retries it
    >>> is_user_error(Busy("locked")), is_retryable(Busy("locked")), is_retryable(KeyError("x"))
    (True, True, True)
    >>> is_retryable(UserError("bad key")), is_user_error(ValueError("a bug"))
    (False, False)
"""

from __future__ import annotations

from typing import ClassVar

DEBUG_ENV = "TWINHUB_DEBUG"  # set to show the traceback of an unexpected error

EXIT_OK = 0
EXIT_FAILED = 1  # an unexpected error (a bug or an outage), a failed run, a check that found problems
EXIT_USER = 2  # the user's to fix: the message says what and how (also click's usage errors)


class TwinhubError(Exception):
    """Base of twinhub's own errors; the class attributes say what the error is."""

    user_error: ClassVar[bool] = False
    retryable: ClassVar[bool] = False


class UserError(TwinhubError):
    """The user's to fix (input, manifest, configuration, permissions): one line, exit 2, never retried."""

    user_error = True


class TransientError(TwinhubError):
    """Retrying may succeed (contention, a passing outage): Dagster retries it."""

    retryable = True


class TerminalError(TwinhubError):
    """Neither the user's to fix nor cured by retrying (the disk is full): fail at once, exit 1."""


def is_user_error(exc: BaseException) -> bool:
    """The user's to fix: exit 2 with the message. ``FileNotFoundError`` (a path typed) counts too."""
    if isinstance(exc, TwinhubError):
        return type(exc).user_error
    return isinstance(exc, FileNotFoundError)


def is_retryable(exc: BaseException) -> bool:
    """Whether Dagster should run the step again: twinhub's errors say so by type; other errors (a
    dropped connection, an OS error) are retried, as a retry is cheap and may succeed."""
    if isinstance(exc, TwinhubError):
        return type(exc).retryable
    return True
