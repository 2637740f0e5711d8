"""Run one query's sandbox in a worker process that is killed at the deadline.

DuckDB cannot interrupt every function (a ``levenshtein`` over long strings
runs to its end whatever ``interrupt()`` says), so the deadline is enforced
on a process: the sandbox (catalog/sandbox.py) is built and queried in a
forked child; the parent waits for the rows and kills the child when the time
is up. A child whose parent dies is killed by the kernel too (Linux
``PR_SET_PDEATHSIG``), so a killed CLI leaves no query running.

Fork, not spawn: the child starts in milliseconds with everything imported.
The child never touches a DuckDB connection it inherits (the caller's audit
connection): it opens its own and leaves through ``os._exit`` (as every
multiprocessing child does), which runs no destructor of the parent's objects.
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime as dt
import multiprocessing
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import duckdb

from twinhub.catalog import sandbox
from twinhub.catalog.lake import Lake
from twinhub.errors import TerminalError, UserError

SETUP_S = 60.0  # building the sandbox (copying the tables the query reads) may take this long at least
USER_SQL_ERRORS = (duckdb.BinderException, duckdb.CatalogException, duckdb.ConversionException,
                   duckdb.InvalidInputException, duckdb.OutOfRangeException, duckdb.PermissionException,
                   duckdb.OutOfMemoryException, duckdb.ParserException)


class QueryTimeout(UserError, RuntimeError):
    """The query ran past its deadline and its worker was killed."""


class QueryKilled(TerminalError, RuntimeError):
    """The query's worker ended without an answer (killed by a signal, e.g. out of memory)."""


class QueryFailed(UserError, ValueError):
    """DuckDB could not run the (guarded) query as written: a column or type that does not fit."""


@dataclass(frozen=True)
class Plan:
    """Everything the worker needs: where the catalog is, what to copy, what to run."""

    lake: Lake
    as_of: int | dt.datetime | None
    tables: list[sandbox.SandboxTable]
    sql: str  # guarded DuckDB SQL over the sandbox's tables
    max_rows: int
    limits: sandbox.Limits = field(default_factory=sandbox.Limits)
    pseudonymize: bool = False  # register the pseudonym function on the builder (never on the sandbox)
    extensions: tuple[str, ...] = sandbox.SPATIAL  # loaded into the sandbox before it is locked


@dataclass
class Answer:
    columns: list[str]
    rows: list[tuple]


def execute(plan: Plan, timeout_s: float, on_ready: Callable[[], None] = lambda: None) -> Answer:
    """Run ``plan`` in a worker; raise QueryTimeout at ``timeout_s`` after the sandbox is ready,
    QueryFailed for SQL DuckDB refuses, QueryKilled if the worker died.

    ``on_ready`` is called when the sandbox is built, before the query runs (the audit's start).
    """
    temp = tempfile.mkdtemp(prefix="twinhub-query-")
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=True)
    worker = context.Process(target=_child, args=(plan, send, temp), daemon=True, name="twinhub-query")
    try:
        worker.start()
        send.close()
        ready = _message(receive, worker, max(SETUP_S, timeout_s), plan, "setup")
        if ready[0] != "ready":
            return _answer(ready)
        on_ready()
        receive.send("go")
        return _answer(_message(receive, worker, timeout_s, plan, "query"))
    finally:
        if worker.is_alive():
            worker.kill()
        worker.join(5)
        receive.close()
        shutil.rmtree(temp, ignore_errors=True)


def _message(receive, worker, seconds: float, plan: Plan, stage: str) -> tuple:
    deadline = time.monotonic() + seconds
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            worker.kill()
            what = "the query" if stage == "query" else "preparing the query's tables"
            raise QueryTimeout(f"{what} ran longer than {seconds:g} s and was cancelled")
        if receive.poll(min(left, 0.2)):
            try:
                return receive.recv()
            except EOFError:
                break
        if not worker.is_alive() and not receive.poll(0):
            break
    worker.join(5)
    raise QueryKilled(f"the query's worker ended without an answer (exit code {worker.exitcode})")


def _answer(message: tuple) -> Answer:
    kind, payload = message
    if kind == "ok":
        return payload
    if kind == "failed":
        raise QueryFailed(payload)
    raise QueryKilled(f"the query's worker failed: {payload}")


def _child(plan: Plan, send, temp: str) -> None:
    _die_with_parent()
    try:
        con = _build(plan, temp)
        _scrub_environment()
    except BaseException as exc:  # noqa: BLE001 - the hub's part failed, not the user's SQL
        send.send(("error", f"building the query's sandbox failed: {type(exc).__name__}: {str(exc)[:500]}"))
        send.close()
        return
    try:
        send.send(("ready", None))
        send.recv()  # the parent has written the audit record: go
        cursor = con.execute(sandbox.display_select(con, sandbox.without_catalog_prefix(plan.sql), plan.max_rows + 1))
        answer = Answer([d[0] for d in cursor.description], cursor.fetchall())
        send.send(("ok", answer))
    except USER_SQL_ERRORS as exc:
        send.send(("failed", first_lines(str(exc))))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which audits it
        send.send(("error", f"{type(exc).__name__}: {str(exc)[:500]}"))
    finally:
        send.close()


def _build(plan: Plan, temp: str) -> duckdb.DuckDBPyConnection:
    """The sandbox, filled and locked. Its extensions load (their signatures checked: ~0.3 s for spatial)
    on a thread while the builder attaches the catalog."""
    opened: dict[str, object] = {}

    def open_sandbox() -> None:
        try:
            opened["con"] = sandbox.open_sandbox(plan.limits, temp, plan.extensions)
        except BaseException as exc:  # noqa: BLE001 - raised again below
            opened["error"] = exc

    loader = threading.Thread(target=open_sandbox, name="twinhub-sandbox-open")
    loader.start()
    builder = plan.lake.connect(read_only=True, snapshot=plan.as_of) if plan.tables else None
    try:
        loader.join()
        if "error" in opened:
            raise opened["error"]
        con = opened["con"]
        if builder is not None:
            if plan.pseudonymize:
                from twinhub.catalog.masking import register_functions

                register_functions(builder)
            sandbox.fill(con, builder, plan.tables)
    finally:
        if builder is not None:
            builder.close()
    sandbox.lock(con)
    return con


KEPT_ENVIRONMENT = ("PATH", "HOME", "LANG", "LANGUAGE", "TZ", "TMPDIR")


def _scrub_environment() -> None:
    """Once the builder is closed, the worker keeps no secret of the hub's environment (the pseudonym key,
    PGPASSWORD, cloud credentials): nothing the query could make DuckDB read can hold one."""
    for name in list(os.environ):
        if name not in KEPT_ENVIRONMENT and not name.startswith("LC_"):
            del os.environ[name]


def _die_with_parent() -> None:
    """Linux: the kernel kills this worker when the process that started it dies."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def first_lines(message: str) -> str:
    """DuckDB's message up to its ``LINE 1: <sql>`` echo (which shows the hub's wrapping, not the user's SQL)."""
    kept = []
    for line in message.splitlines():
        if line.startswith("LINE "):
            break
        kept.append(line.strip())
    return "the query failed: " + " ".join(k for k in kept if k)
