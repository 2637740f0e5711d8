"""One publisher per dataset: a lock held from staging through publishing.

The lock is ``flock`` on ``<home>/locks/<dataset>.lock``; the kernel releases it
when the holding process ends, however it ends (even SIGKILL), so a crashed
run never blocks the next one. While held, the file names the run, its pid and
since when, so a second run can say who is publishing. A clean release empties
the file; a file still naming a run when the lock is free means that run died
before finishing: the next holder records it and removes its stage.

When the catalog's metadata is in PostgreSQL, runs may start on several
machines, each with its own hub home: the run then also takes a PostgreSQL
advisory lock keyed by metadata schema and dataset, on a connection it keeps
open (the server releases it when that connection ends, e.g. the run is
killed). Its ``application_name`` names the run, so a second run on another
machine can say who is publishing too.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import pathlib
import shutil
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass

from twinhub.errors import UserError

GRACE_S = 2.0  # a run that does not wait still tries this long (``twinhub catalog vacuum`` tests locks briefly)


class PublishInProgress(UserError, RuntimeError):
    """Another run holds the dataset's lock."""


@dataclass(frozen=True)
class Holder:
    run_id: str
    pid: int
    since: str
    host: str = ""

    def describe(self) -> str:
        where = f" on {self.host}" if self.host and self.host != socket.gethostname() else ""
        return f"run {self.run_id}, pid {self.pid}{where}, since {self.since}"


class DatasetLock:
    """A held lock; ``previous`` is the run that died holding it, if any."""

    def __init__(self, path: pathlib.Path, fd: int, previous: Holder | None):
        self.path, self._fd, self.previous = path, fd, previous
        self.shared = None  # the PostgreSQL connection holding the advisory lock, if any

    def release(self) -> None:
        if self.shared is not None:
            self.shared.close()  # ends the session: the server drops its advisory lock
            self.shared = None
        if self._fd is None:
            return
        os.ftruncate(self._fd, 0)  # a clean end: nothing for the next holder to recover
        os.close(self._fd)  # closing drops the flock
        self._fd = None

    def __enter__(self) -> DatasetLock:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def lock_path(home: pathlib.Path, dataset: str) -> pathlib.Path:
    return pathlib.Path(home) / "locks" / f"{dataset}.lock"


def acquire(home: pathlib.Path, dataset: str, run_id: str, wait: bool = False) -> DatasetLock:
    """Take ``dataset``'s lock for ``run_id``; waits for it with ``wait``, else raises PublishInProgress."""
    path = lock_path(home, dataset)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + GRACE_S
    while not _try_lock(fd):
        if not wait and time.monotonic() > deadline:
            holder = _read(fd)
            os.close(fd)
            who = holder.describe() if holder else "another run"
            raise PublishInProgress(f"{dataset}: publish in progress ({who}); try again when it ends, "
                                    "or run with --wait to wait for it")
        time.sleep(0.1)
    previous = _read(fd)
    os.ftruncate(fd, 0)
    now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    os.pwrite(fd, json.dumps({"run_id": run_id, "pid": os.getpid(), "since": now,
                              "host": socket.gethostname()}).encode(), 0)
    return DatasetLock(path, fd, previous)


def holder(home: pathlib.Path, dataset: str) -> Holder | None:
    """Who holds ``dataset``'s lock now (None: nobody). Tests the lock without waiting."""
    path = lock_path(home, dataset)
    if not path.is_file():
        return None
    fd = os.open(path, os.O_RDONLY)
    try:
        if _try_lock(fd, shared=True):
            return None
        return _read(fd) or Holder("?", 0, "?")
    finally:
        os.close(fd)  # also drops the shared lock if it was taken


def _try_lock(fd: int, shared: bool = False) -> bool:
    try:
        fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _read(fd: int) -> Holder | None:
    raw = os.pread(fd, 4096, 0)
    if not raw.strip():
        return None
    try:
        data = json.loads(raw)
        return Holder(str(data["run_id"]), int(data["pid"]), str(data["since"]), str(data.get("host", "")))
    except (ValueError, KeyError, TypeError):
        return None


def hold_dataset(hub, manifest, run_id: str, wait: bool = False) -> DatasetLock:
    """Take the dataset's lock for the run, then clear what a dead run of it left behind.

    Holding the lock proves no other run of the dataset is alive, so its stage
    folders from other runs are dead and removed; a run that died holding the
    lock without recording anything is recorded as failed in ``catalog.runs``.
    """
    lock = acquire(hub.home, manifest.id, run_id, wait=wait)
    try:
        if hub.lake.postgres:
            lock.shared = acquire_shared(hub.lake.postgres, hub.lake.schema or "public", manifest.id, run_id, wait)
        remove_dead_stages(hub.staging_dir, manifest.department, manifest.dataset, keep=run_id)
        if lock.previous is not None and lock.previous.run_id != run_id:
            _record_dead_run(hub, manifest.id, lock.previous)
    except BaseException:
        lock.release()
        raise
    return lock


def remove_dead_stages(staging: pathlib.Path, department: str, dataset: str, keep: str | None = None) -> list[pathlib.Path]:
    """Remove the dataset's stage folders of runs other than ``keep`` (call with its lock held)."""
    removed = []
    for root in sorted(pathlib.Path(staging).glob(f"*/{department}/{dataset}")):
        run_dir = root.parent.parent
        if run_dir.name == keep:
            continue
        shutil.rmtree(root, ignore_errors=True)
        removed.append(root)
        for empty in (root.parent, run_dir):
            try:
                empty.rmdir()
            except OSError:
                break  # other datasets of that run are still there
    return removed


def _record_dead_run(hub, dataset: str, dead: Holder) -> None:
    from twinhub.catalog.publish import RunInfo, record_unpublished
    from twinhub.hub.ledger import run_recorded

    if not hub.lake.exists() or run_recorded(hub.lake, dataset, dead.run_id):
        return  # it recorded its outcome (e.g. killed after committing): nothing to add
    started = dt.datetime.fromisoformat(dead.since) if dead.since[:1].isdigit() else dt.datetime.now(dt.timezone.utc)
    record_unpublished(hub.lake, dataset, RunInfo(dead.run_id, started, "", ""),
                       f"the run's process (pid {dead.pid}) ended before finishing: killed or crashed; "
                       "nothing of it was published")


def dead_stages(home: pathlib.Path, staging: pathlib.Path) -> list[pathlib.Path]:
    """Stage folders (``<staging>/<run>/<department>/<dataset>``) whose dataset no live run holds."""
    return [root for root in sorted(pathlib.Path(staging).glob("*/*/*"))
            if root.is_dir() and holder(home, f"{root.parent.name}.{root.name}") is None]


def acquire_shared(dsn: str, schema: str, dataset: str, run_id: str, wait: bool = False):
    """A PostgreSQL session holding the advisory lock of ``dataset`` in the metadata ``schema``."""
    import psycopg

    name = f"twinhub run {run_id} pid {os.getpid()}"[:63]
    conn = psycopg.connect(dsn, autocommit=True, application_name=name, connect_timeout=10)
    key = f"twinhub:{schema}:{dataset}"
    deadline = time.monotonic() + GRACE_S
    try:
        while not conn.execute("SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", [key]).fetchone()[0]:
            if not wait and time.monotonic() > deadline:
                raise PublishInProgress(f"{dataset}: publish in progress ({_shared_holder(conn, key)}); try again "
                                        "when it ends, or run with --wait to wait for it")
            time.sleep(0.2)
    except BaseException:
        conn.close()
        raise
    return conn


def _shared_holder(conn, key: str) -> str:
    row = conn.execute(
        "SELECT a.application_name, a.client_addr, a.backend_start FROM pg_locks l JOIN pg_stat_activity a "
        "ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted "
        "AND ((l.classid::bigint << 32) | l.objid::bigint) = hashtextextended(%s, 0)", [key]).fetchone()
    if row is None:
        return "another run"
    name, address, since = row
    who = name.removeprefix("twinhub ").replace("run ", "run ", 1).replace(" pid ", ", pid ")
    where = f" from {address}" if address else ""
    return f"{who}{where}, since {since.isoformat(timespec='seconds')}"


@contextlib.contextmanager
def file_lock(path: pathlib.Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created if missing), waiting for it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
