"""Athena query executions: queued in a thread pool, time-limited, cancellable, kept.

Athena is asynchronous: StartQueryExecution answers with an id at once and the query
goes QUEUED -> RUNNING -> SUCCEEDED | FAILED | CANCELLED; clients poll GetQueryExecution.
The emulator does the same with a small pool of threads (more queries wait QUEUED, as
on AWS). A running query is stopped when it passes ``timeout_s`` (FAILED, "Query
timeout") or when StopQueryExecution names it (CANCELLED); stopping interrupts DuckDB,
so the core is free at once. A query whose partitions add up to more than the
workgroup's BytesScannedCutoffPerQuery is CANCELLED with Athena's reason, before it reads.

Finished executions keep their status for as long as the emulator runs; their rows are
kept for GetQueryResults for the last ``results_kept`` executions (the CSV in S3 stays).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import duckdb

from iotpipe.local.athenasql import AthenaQueryError

log = logging.getLogger("iotpipe.local")
TERMINAL = ("SUCCEEDED", "FAILED", "CANCELLED")


@dataclass(frozen=True)
class Limits:
    timeout_s: float = 30.0  # the emulator's limit (Athena's own default is 30 minutes)
    workers: int = 2  # queries running at once; the rest wait QUEUED
    max_rows: int = 1_000_000  # rows one result may hold in memory
    results_kept: int = 200  # executions whose rows stay for GetQueryResults

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Limits:
        """Defaults, or ``IOTPIPE_LOCAL_ATHENA_TIMEOUT_S`` (seconds, 0-86400)."""
        env = os.environ if env is None else env
        raw = env.get("IOTPIPE_LOCAL_ATHENA_TIMEOUT_S")
        if not raw:
            return cls()
        try:
            value = float(raw)
        except ValueError:
            value = -1.0
        if not 0 < value < 86_400:
            raise ValueError(
                f"IOTPIPE_LOCAL_ATHENA_TIMEOUT_S={raw!r} is not a number of seconds (0-86400)"
            )
        return cls(timeout_s=value)


class ScanLimitExceeded(Exception):
    """The query would read more than the workgroup's BytesScannedCutoffPerQuery."""


@dataclass
class Execution:
    id: str
    account: str
    region: str
    query: str
    database: str
    workgroup: str
    output: str  # s3://bucket/prefix/<id>.csv
    cutoff: int | None = None  # BytesScannedCutoffPerQuery
    context: dict[str, Any] = field(default_factory=dict)  # QueryExecutionContext
    result_configuration: dict[str, Any] = field(default_factory=dict)  # the effective one
    parameters: list[str] = field(default_factory=list)  # ExecutionParameters
    state: str = "QUEUED"
    reason: str | None = None
    error: dict[str, Any] | None = None  # AthenaError
    submitted: float = field(default_factory=time.time)
    started: float | None = None
    completed: float | None = None
    scanned: int = 0
    columns: list[dict[str, Any]] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    rows: list[list[str | None]] | None = None
    cursor: Any = None
    stop: str | None = None  # "cancel" or "timeout": why the cursor was interrupted
    done: threading.Event = field(default_factory=threading.Event)

    def check(self) -> None:
        """Raise if the execution was stopped (work calls this between steps)."""
        if self.stop is not None:
            raise duckdb.InterruptException(self.stop)

    def statistics(self) -> dict[str, Any]:
        end = self.completed or time.time()
        engine = int(1000 * (end - self.started)) if self.started else 0
        queued = int(1000 * ((self.started or end) - self.submitted))
        return {
            "EngineExecutionTimeInMillis": engine,
            "DataScannedInBytes": self.scanned,
            "TotalExecutionTimeInMillis": int(1000 * (end - self.submitted)),
            "QueryQueueTimeInMillis": queued,
            "ServicePreProcessingTimeInMillis": 0,
            "QueryPlanningTimeInMillis": 0,
            "ServiceProcessingTimeInMillis": 0,
            "ResultReuseInformation": {"ReusedPreviousResult": False},
        }


Work = Callable[[Execution], None]


class Jobs:
    """The executions of one emulator and the threads that run them."""

    def __init__(
        self, limits: Limits | None = None, on_state: Callable[[Execution], None] | None = None
    ) -> None:
        self.limits = limits or Limits()
        self._on_state = on_state or (lambda _: None)
        self._lock = threading.Lock()
        self._executions: OrderedDict[str, Execution] = OrderedDict()
        self._with_rows: OrderedDict[str, None] = OrderedDict()
        self._pool = ThreadPoolExecutor(self.limits.workers, thread_name_prefix="athena")

    def submit(self, execution: Execution, work: Work) -> None:
        with self._lock:
            self._executions[execution.id] = execution
        self._pool.submit(self._run, execution, work)

    def get(self, execution_id: str) -> Execution | None:
        with self._lock:
            return self._executions.get(execution_id)

    def cancel(self, execution_id: str) -> bool:
        """StopQueryExecution: False if unknown; a finished execution is left as it is."""
        ex = self.get(execution_id)
        if ex is None:
            return False
        self._interrupt(ex, "cancel")
        return True

    def _interrupt(self, ex: Execution, why: str) -> None:
        with self._lock:
            if ex.state in TERMINAL or ex.stop is not None:
                return
            ex.stop = why
            queued, cursor = ex.state == "QUEUED", ex.cursor
        if queued:
            self._finish(ex, "CANCELLED", "Query was cancelled by user")
            return
        if cursor is not None:
            cursor.interrupt()
        threading.Thread(target=self._keep_interrupting, args=(ex,), daemon=True).start()

    @staticmethod
    def _keep_interrupting(ex: Execution) -> None:
        """An interrupt that lands just before DuckDB starts a statement is lost: repeat it."""
        while not ex.done.wait(0.2):
            cursor = ex.cursor
            if cursor is not None:
                cursor.interrupt()

    # -- the worker thread -------------------------------------------------------------
    def _run(self, ex: Execution, work: Work) -> None:
        with self._lock:
            if ex.state != "QUEUED":
                return
            ex.state, ex.started = "RUNNING", time.time()
        self._on_state(ex)
        timer = threading.Timer(self.limits.timeout_s, self._interrupt, (ex, "timeout"))
        timer.daemon = True
        timer.start()
        try:
            work(ex)
            ex.check()
            self._finish(ex, "SUCCEEDED", None)
        except duckdb.InterruptException:
            self._stopped(ex)
        except ScanLimitExceeded as e:
            self._finish(ex, "CANCELLED", str(e), _error(2, 1008, str(e)))
        except AthenaQueryError as e:
            self._finish(ex, "FAILED", str(e), _error(2, e.error_type, str(e)))
        except Exception as e:  # never a silent thread death: the client sees FAILED
            if ex.stop is not None:
                self._stopped(ex)
            else:
                log.exception("Athena query %s failed", ex.id)
                msg = f"GENERIC_INTERNAL_ERROR: {type(e).__name__}: {str(e)[:300]}"
                self._finish(ex, "FAILED", msg, _error(1, 200, msg, retryable=True))
        finally:
            timer.cancel()
            ex.cursor = None

    def _stopped(self, ex: Execution) -> None:
        if ex.stop == "timeout":
            msg = (
                f"Query timeout: the query ran longer than {self.limits.timeout_s:g} seconds, "
                "the embedded AWS's limit (IOTPIPE_LOCAL_ATHENA_TIMEOUT_S); narrow it with a "
                "partition filter (dt, hour) or aggregate more"
            )
            self._finish(ex, "FAILED", msg, _error(1, 210, msg))
        else:
            self._finish(ex, "CANCELLED", "Query was cancelled by user", None)

    def _finish(
        self, ex: Execution, state: str, reason: str | None, error: dict[str, Any] | None = None
    ) -> None:
        with self._lock:
            if ex.state in TERMINAL:
                return
            ex.state, ex.reason, ex.error, ex.completed = state, reason, error, time.time()
            if state != "SUCCEEDED":
                ex.rows = None
            if state == "FAILED":
                ex.scanned = 0  # failed queries are not billed (and report no bytes)
            else:
                self._with_rows[ex.id] = None
                while len(self._with_rows) > self.limits.results_kept:
                    old, _ = self._with_rows.popitem(last=False)
                    if old in self._executions:
                        self._executions[old].rows = None
        ex.done.set()
        self._on_state(ex)

    def shutdown(self) -> None:
        with self._lock:
            running = [e for e in self._executions.values() if e.state not in TERMINAL]
        for ex in running:
            self._interrupt(ex, "cancel")
        self._pool.shutdown(wait=False, cancel_futures=True)


def _error(category: int, error_type: int, message: str, retryable: bool = False) -> dict[str, Any]:
    return {
        "ErrorCategory": category,
        "ErrorType": error_type,
        "Retryable": retryable,
        "ErrorMessage": message,
    }
