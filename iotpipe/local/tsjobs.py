"""Running Timestream queries: each in its own thread, time-limited, cancellable, bounded.

Timestream's Query is synchronous but long queries answer with no rows and a NextToken
while they run (clients page until the token is gone). The emulator does the same: a
Query call waits at most ``wait_s`` for its query, then hands back a token to poll with.
That keeps every HTTP request short and makes an abandoned query visible: nobody polls.

A query stops when it passes ``timeout_s`` (Timestream: 60 s), when CancelQuery names
it, or when nobody has polled it for ``abandon_s`` (the client went away); stopping
interrupts DuckDB, so the cores are free at once. Finished results wait in a cache
bounded by count and by cells (rows x columns) and are dropped after their last page,
after ``result_ttl_s`` untouched, or oldest-first when the cache is full. A ClientToken
(boto3 sends one and keeps it across retries) joins a retry to the query already
running instead of starting a second copy.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import duckdb

from iotpipe.local.tssql import QueryValidation


@dataclass(frozen=True)
class Limits:
    timeout_s: float = 60.0  # Timestream's own query timeout
    wait_s: float = 10.0  # one Query call waits this long, then answers with a NextToken
    abandon_s: float = 30.0  # a running query nobody polls for this long is cancelled
    result_ttl_s: float = 300.0  # a finished result nobody pages for this long is dropped
    max_rows: int = 1_000_000  # rows one query may return
    cache_cells: int = 5_000_000  # rows x columns of all cached results together
    cache_results: int = 32
    max_running: int = 4  # more at once is throttled, as Timestream throttles
    idempotency_s: float = 300.0  # a ClientToken is remembered for 5 minutes, as on AWS

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Limits:
        """Defaults, or ``IOTPIPE_LOCAL_QUERY_TIMEOUT_S`` / ``_WAIT_S`` / ``_ABANDON_S``."""
        env = os.environ if env is None else env
        values = {}
        for name in ("timeout_s", "wait_s", "abandon_s"):
            key = f"IOTPIPE_LOCAL_QUERY_{name.upper()}"
            if env.get(key):
                try:
                    values[name] = float(env[key])
                except ValueError:
                    values[name] = -1.0
                if not 0 < values[name] < 86_400:
                    raise ValueError(f"{key}={env[key]!r} is not a number of seconds (0-86400)")
        return cls(**values)  # type: ignore[arg-type]


class QueryFailed(Exception):
    """A query that ran and did not finish; ``code`` is Timestream's error code."""

    code = "QueryExecutionException"


class QueryCancelled(QueryFailed):
    code = "ConflictException"


class Throttled(QueryFailed):
    code = "ThrottlingException"


Work = Callable[["Job"], tuple[list[dict[str, Any]], list[tuple[Any, ...]]]]


@dataclass
class Job:
    query_string: str
    started: float
    deadline: float
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    touched: float = 0.0
    state: str = "running"  # running, finished, failed, cancelled, timed_out, abandoned
    cols: list[dict[str, Any]] = field(default_factory=list)
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    error: Exception | None = None
    cursor: Any = None
    done: threading.Event = field(default_factory=threading.Event)

    @property
    def cells(self) -> int:
        return len(self.rows) * max(1, len(self.cols))

    def check(self) -> None:
        """Raise if the query was stopped (work functions call this between chunks)."""
        if self.state != "running":
            raise duckdb.InterruptException("stopped")


class Jobs:
    """The queries of one emulator: running ones, finished results, their tokens."""

    def __init__(
        self,
        limits: Limits | None = None,
        clock: Callable[[], float] = time.monotonic,
        reaper: bool = True,
    ) -> None:
        self.limits = limits or Limits()
        self._clock = clock
        self._lock = threading.Lock()
        self._jobs: OrderedDict[str, Job] = OrderedDict()  # least recently touched first
        self._pages: dict[str, tuple[str, int]] = {}  # NextToken -> (job id, row position)
        self._clients: dict[str, tuple[str, str, float]] = {}  # ClientToken -> (sql, id, t)
        self._reaper = reaper
        self._reaper_thread: threading.Thread | None = None

    # -- starting and finding --------------------------------------------------------
    def start(self, query_string: str, work: Work, client_token: str | None = None) -> Job:
        now = self._clock()
        job = Job(query_string, now, now + self.limits.timeout_s, touched=now)
        with self._lock:
            running = sum(j.state == "running" for j in self._jobs.values())
            if running >= self.limits.max_running:
                raise Throttled(
                    f"{running} queries are already running on the embedded AWS; "
                    "wait for them or cancel one (CancelQuery), then retry."
                )
            self._jobs[job.id] = job
            if client_token:
                self._clients[client_token] = (query_string, job.id, now)
        threading.Thread(
            target=self._run, args=(job, work), name=f"ts-{job.id[:8]}", daemon=True
        ).start()
        self._ensure_reaper()
        return job

    def for_client_token(self, token: str, query_string: str) -> Job | None:
        """The query a retry with this ClientToken belongs to (None: run it anew)."""
        with self._lock:
            entry = self._clients.get(token)
            if entry is None or self._clock() - entry[2] > self.limits.idempotency_s:
                return None
            if entry[0] != query_string:
                raise QueryValidation(
                    "The ClientToken was already used with a different QueryString."
                )
            return self._jobs.get(entry[1])

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def token(self, job: Job, pos: int) -> str:
        token = uuid.uuid4().hex
        with self._lock:
            self._pages[token] = (job.id, pos)
        return token

    def resume(self, token: str, query_string: str) -> tuple[Job, int]:
        with self._lock:
            entry = self._pages.get(token)
            job = self._jobs.get(entry[0]) if entry else None
        if entry is None or job is None or job.query_string != query_string:
            raise QueryValidation("Invalid pagination token")
        return job, entry[1]

    # -- waiting, stopping --------------------------------------------------------------
    def wait(self, job: Job) -> None:
        """Wait for the job at most ``wait_s`` (and never past its deadline)."""
        remaining = job.deadline - self._clock()
        job.done.wait(max(0.0, min(self.limits.wait_s, remaining)))
        self.touch(job)
        if not job.done.is_set() and self._clock() >= job.deadline:
            self._stop(job, "timed_out")
            job.done.wait(5.0)  # DuckDB stops within milliseconds of an interrupt

    def touch(self, job: Job) -> None:
        with self._lock:
            job.touched = self._clock()
            if job.id in self._jobs:
                self._jobs.move_to_end(job.id)

    def cancel(self, job_id: str) -> str | None:
        """CancelQuery: stop a running job; a repeat says it was already cancelled."""
        job = self.get(job_id)
        if job is None:
            raise QueryValidation(f"Query {job_id} does not exist or has expired.")
        if job.state in ("cancelled", "abandoned"):
            return f"Query {job_id} has already been cancelled."
        if job.state != "running":
            self.drop(job)  # finished: nothing to stop, free its cached result
            return f"Query {job_id} had already finished; its results were released."
        self._stop(job, "cancelled")
        return None

    def _stop(self, job: Job, state: str) -> None:
        with self._lock:
            if job.state != "running":
                return
            job.state = state
            cursor = job.cursor
        if cursor is not None:
            cursor.interrupt()

    def drop(self, job: Job) -> None:
        with self._lock:
            self._jobs.pop(job.id, None)
            for token in [t for t, (jid, _) in self._pages.items() if jid == job.id]:
                del self._pages[token]
        job.rows = []

    # -- the worker thread -------------------------------------------------------------
    def _run(self, job: Job, work: Work) -> None:
        try:
            cols, rows = work(job)
            with self._lock:
                if job.state == "running":
                    job.cols, job.rows, job.state = cols, rows, "finished"
        except duckdb.InterruptException:
            pass  # state says why (cancelled, timed_out, abandoned)
        except Exception as e:  # reported to the client that polls
            with self._lock:
                if job.state == "running":
                    job.error, job.state = e, "failed"
        finally:
            job.cursor = None
            if job.state != "finished":
                job.rows = []
            job.done.set()
            self.reap()

    # -- bounds ------------------------------------------------------------------------
    def reap(self) -> None:
        """Stop overdue and abandoned queries; drop stale results; keep the cache bounded."""
        now, lim = self._clock(), self.limits
        with self._lock:
            jobs = list(self._jobs.values())
            self._clients = {
                k: v for k, v in self._clients.items() if now - v[2] <= lim.idempotency_s
            }
        for job in jobs:
            if job.state == "running" and now >= job.deadline:
                self._stop(job, "timed_out")
            elif job.state == "running" and now - job.touched > max(lim.abandon_s, 2 * lim.wait_s):
                self._stop(job, "abandoned")
            elif job.done.is_set() and now - job.touched > lim.result_ttl_s:
                self.drop(job)
            elif job.state != "running" and not job.done.is_set() and job.cursor is not None:
                job.cursor.interrupt()  # stopped just before DuckDB started: stop it again
        with self._lock:
            done = [j for j in self._jobs.values() if j.done.is_set()]  # oldest first
        cells = sum(j.cells for j in done)
        while done and (cells > lim.cache_cells or len(done) > lim.cache_results):
            oldest = done.pop(0)
            cells -= oldest.cells
            self.drop(oldest)

    def stats(self) -> dict[str, int]:
        with self._lock:
            jobs = list(self._jobs.values())
        return {
            "running": sum(j.state == "running" for j in jobs),
            "cached_results": sum(j.done.is_set() for j in jobs),
            "cached_cells": sum(j.cells for j in jobs),
        }

    def _ensure_reaper(self) -> None:
        if not self._reaper or self._reaper_thread is not None:
            return

        def loop() -> None:
            while True:
                time.sleep(0.5)
                self.reap()

        self._reaper_thread = threading.Thread(target=loop, name="ts-reaper", daemon=True)
        self._reaper_thread.start()
