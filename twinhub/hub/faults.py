"""Named fault points: where tests stop or break a run on purpose, in one place.

Reliability tests need to kill a run at an exact moment (mid-read, inside the
catalog transaction...). Each such moment calls :func:`point` with a name from
``POINTS``. Outside tests nothing is set and ``point`` does nothing.

- ``TWINHUB_PAUSE_AT=<point>``: on reaching the point, the process writes the
  file ``TWINHUB_PAUSE_MARKER`` (its pid) and sleeps, so a test can look at
  the catalog from another process and then SIGKILL it. With
  ``TWINHUB_PAUSE_SECONDS`` it goes on after that many seconds instead (e.g.
  while a test terminates the run's database connection).
- ``TWINHUB_FAIL_AT=<point>``: the point raises :class:`InjectedFault`, at most
  ``TWINHUB_FAIL_TIMES`` times in this process (default once), e.g. to show
  that a Dagster retry after a failed publish step publishes nothing twice.
"""

from __future__ import annotations

import os
import pathlib
import time

POINTS = {
    "stage.mid_read": "a chunk is staged and the source is still being read",
    "stage.after_finalize": "the stage is finalized (stage.json written), nothing published yet",
    "publish.before_commit": "inside the DuckLake transaction: data files written, COMMIT not yet run",
    "publish.after_commit": "the new version is committed; the stage is not yet removed",
}
PAUSE_AT, PAUSE_MARKER, PAUSE_SECONDS = "TWINHUB_PAUSE_AT", "TWINHUB_PAUSE_MARKER", "TWINHUB_PAUSE_SECONDS"
FAIL_AT, FAIL_TIMES = "TWINHUB_FAIL_AT", "TWINHUB_FAIL_TIMES"
_failed: dict[str, int] = {}


class InjectedFault(RuntimeError):
    """Raised at a fault point named by ``TWINHUB_FAIL_AT`` (tests only)."""


def point(name: str) -> None:
    """Pause or fail here if the environment asks for it; otherwise nothing."""
    if name not in POINTS:
        raise KeyError(f"unknown fault point {name!r}; add it to twinhub.hub.faults.POINTS")
    if os.environ.get(PAUSE_AT) == name:
        _pause(name)
    if os.environ.get(FAIL_AT) == name and _failed.get(name, 0) < int(os.environ.get(FAIL_TIMES) or 1):
        _failed[name] = _failed.get(name, 0) + 1
        raise InjectedFault(f"fault injected at {name} ({POINTS[name]})")


def _pause(name: str) -> None:
    marker = os.environ.get(PAUSE_MARKER)
    if marker:
        tmp = pathlib.Path(marker + ".tmp")
        tmp.write_text(f"{os.getpid()} {name}\n", encoding="utf-8")
        tmp.replace(marker)  # appears whole: the test never reads a half-written marker
    seconds = os.environ.get(PAUSE_SECONDS)
    if seconds:
        time.sleep(float(seconds))
        return
    while True:  # until the test kills the process
        time.sleep(3600)
