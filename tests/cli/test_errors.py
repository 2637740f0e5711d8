"""What an error is comes from its type (twinhub/errors.py): the CLI's exit code and Dagster's retries read it."""

from __future__ import annotations

import dagster as dg
import pytest

from twinhub.catalog.export import ExportError
from twinhub.catalog.grants import AccessError
from twinhub.catalog.guard import QueryRefused
from twinhub.catalog.info import UnknownDataset
from twinhub.catalog.lake import CatalogBusy, UnknownVersion
from twinhub.catalog.near import NearRefused
from twinhub.catalog.opendata import CatalogExportError
from twinhub.catalog.query import QueryFailed, QueryTimeout
from twinhub.catalog.stage import StageMissing
from twinhub.connectors import ConfigProblem, SourceError
from twinhub.errors import TwinhubError, is_retryable, is_user_error
from twinhub.hub.diskspace import DiskFull
from twinhub.hub.home import HubError
from twinhub.hub.locks import PublishInProgress
from twinhub.hub.manifest import ManifestError
from twinhub.pipelines.datasets import _permanent_errors, permanent
from twinhub.standards.crs import UnknownCRS
from twinhub.standards.pack import StandardsError

# error, the user's to fix (CLI exit 2), retried by Dagster
CASES = [
    (ManifestError("m.yaml", {"source.path": "no such file"}), True, False),
    (SourceError("the source cannot be read"), True, False),
    (ConfigProblem({"source.sheet": "no such sheet"}), True, False),
    (QueryRefused("DROP is not a query"), True, False),
    (AccessError("no grant"), True, False),
    (QueryTimeout("ran longer than 5 s"), True, False),
    (QueryFailed("no such column"), True, False),
    (HubError("no hub home"), True, False),
    (UnknownDataset("'x.y' is not in the catalog"), True, False),
    (StandardsError("no standard 'x'"), True, False),
    (UnknownCRS("EPSG:0"), True, False),
    (UnknownVersion("no version 9"), True, False),
    (ExportError("exists: use --force"), True, False),
    (CatalogExportError("unknown catalog format"), True, False),
    (NearRefused("--radius must be between 0 and 100000 metres"), True, False),
    (PublishInProgress("publish in progress"), True, False),
    (CatalogBusy("another process kept the catalog busy"), True, True),
    (DiskFull(28, "no space left on device"), False, False),
    (StageMissing("no finalized stage"), False, False),
    (FileNotFoundError(2, "No such file", "x.yaml"), True, True),  # a builtin: a path typed wrong, handled explicitly
    (ValueError("a bug"), False, True),  # anything else: not the user's (exit 1); Dagster retries it as before
    (KeyError("a bug"), False, True),
]


@pytest.mark.parametrize("error, user, retried", CASES, ids=[type(c[0]).__name__ for c in CASES])
def test_each_error_type_says_what_it_is(error, user, retried):
    assert (is_user_error(error), is_retryable(error), permanent(error)) == (user, retried, not retried)
    if isinstance(error, TwinhubError):
        assert (type(error).user_error, type(error).retryable) == (user, retried)


def test_errors_keep_their_python_base():
    """Callers catching ValueError, LookupError or OSError still catch them."""
    assert isinstance(ManifestError("m", {}), ValueError) and isinstance(UnknownDataset("x"), LookupError)
    assert isinstance(DiskFull(28, "full"), OSError) and isinstance(StageMissing("s"), FileNotFoundError)


def _attempts(error: Exception) -> tuple[bool, list[int]]:
    """Run one op under a retry policy whose first attempt fails with ``error`` (as the datasets' ops do)."""
    attempts: list[int] = []

    @dg.op(retry_policy=dg.RetryPolicy(max_retries=2, delay=0))
    def step(context) -> str:  # no annotation: dagster reads it, and annotations are strings here
        attempts.append(context.retry_number)

        def action() -> str:
            if context.retry_number == 0:
                raise error
            return "published"

        return _permanent_errors(action)

    @dg.job
    def job() -> None:
        step()

    return job.execute_in_process(raise_on_error=False).success, attempts


@pytest.mark.parametrize("error, retried", [
    (CatalogBusy("another process kept the catalog busy"), True),
    (StandardsError("no standard 'x'"), False),
    (ManifestError("m.yaml", {"fields.name": "no such column"}), False),
    (DiskFull(28, "no space left on device"), False),
])
def test_dagster_retries_what_the_type_says_is_retryable(error, retried):
    success, attempts = _attempts(error)
    assert (success, attempts) == ((True, [0, 1]) if retried else (False, [0]))
