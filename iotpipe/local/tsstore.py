"""Timestream's write path: rows land exactly once, durably, at ingest speed.

Writes behave like Timestream's: ``CommonAttributes`` merged into every record; a repeat
of an identical record is accepted and stored once (so retried batches do not duplicate
rows); a different value for the same time, dimensions and measure name is rejected
unless its ``Version`` is higher (then it replaces the row). Time is kept to the
microsecond; nanoseconds are truncated.

Two paths enforce that. The rows of a request that are certainly new to their table
(`tsstage.SeriesClock`) are *staged*: journaled with one fsync
(`tsstage.Journal`), acknowledged, and inserted into DuckDB by the applier thread within
``APPLY_EVERY_S`` or once ``APPLY_ROWS`` are waiting, and always before a query runs
(`flush`: read your writes) or a table is dropped. The other rows, repeats or possible
repeats, take the *exact* path: a join of the batch against the table on the natural key
(`tswrite.write_table`), committed in DuckDB before the answer.

Persistence (part "timestream", see `durable`): each catalog is a DuckDB file under
``data/timestream/`` (ephemeral: in memory). Durability policy: an acknowledged
WriteRecords is either in DuckDB's WAL (fsynced at COMMIT) or in the journal (fsynced
before the answer); at open the journal is replayed through the exact path, so a
``kill -9`` loses nothing acknowledged and duplicates nothing. Concurrent writers group
commit: the first commits everything queued, the others wait for it.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from pathlib import Path
from typing import Any

import duckdb

from iotpipe.local.counters import COUNTERS
from iotpipe.local.durable import PERSISTENCE, Part
from iotpipe.local.tscatalog import TableCatalog, TableKey, TableSchema
from iotpipe.local.tsrecords import Reject, WriteValidation, check_shape, rows_of
from iotpipe.local.tsstage import Journal
from iotpipe.local.tswrite import Job, insert_new, qi, write_table

log = logging.getLogger("iotpipe.local")
APPLY_ROWS = 20_000  # staged rows that wake the applier at once
APPLY_EVERY_S = 0.2  # otherwise it applies this often

__all__ = ["RejectedRecords", "TableSchema", "TimestreamStore", "WriteValidation", "qi", "store"]


class RejectedRecords(Exception):
    """Some records were not written; `rejected` is Timestream's RejectedRecords list."""

    def __init__(self, rejected: list[dict[str, Any]], written: int) -> None:
        super().__init__(f"{len(rejected)} record(s) rejected")
        self.rejected = rejected
        self.written = written


class TimestreamStore(TableCatalog):
    """All Timestream data of the emulator, queryable with DuckDB."""

    def __init__(self, directory: Path | None = None) -> None:
        self._lock = threading.RLock()  # the connection and the metadata
        self._apply_lock = threading.Lock()  # one apply at a time (the applier's or a caller's)
        self._pending_lock = threading.Lock()  # `_pending` and the journal's current file
        self._queue: list[Job] = []
        self._queue_lock = threading.Lock()
        self._writing = False
        self._wake = threading.Condition()
        self._open(directory)

    def _open(self, directory: Path | None) -> None:
        self._open_catalogs(directory)
        self._pending: list[Job] = []  # staged: journaled, acknowledged, not yet in DuckDB
        self._pending_rows = 0
        self._journal: Journal | None = None
        if directory is not None:
            self._journal = Journal(directory / "journal")
            self._replay(self._journal)
        self._stop = threading.Event()
        self._applier = threading.Thread(target=self._apply_loop, name="ts-apply", daemon=True)
        self._applier.start()

    def _before_drop(self) -> None:
        self._apply_staged()

    def reopen(self, directory: Path | None) -> None:
        """Switch to ``directory`` (the part's open, before anything is served)."""
        self.close()  # stops the applier first: it takes the lock
        with self._lock:
            self._open(directory)

    def close(self) -> None:
        self._stop.set()
        with self._wake:
            self._wake.notify_all()
        self._applier.join(timeout=30)
        with self._lock:
            self._apply_staged()
            if self._journal is not None:
                self._journal.close()
            if self._dir is not None:
                for cat in self._catalogs:
                    self._con.execute(f"CHECKPOINT {qi(cat)}")
            self._con.close()

    def flush(self) -> None:
        """Apply every staged row (before a query: read your writes)."""
        with self._lock:
            self._apply_staged()

    # -- writes -------------------------------------------------------------------
    def write(
        self,
        account: str,
        region: str,
        db: str,
        table: str,
        records: list[dict[str, Any]],
        common: dict[str, Any] | None = None,
        retention_hours: float | None = None,
        magnetic_writes: bool = False,
    ) -> int:
        """Store records; return how many were accepted (identical repeats included).

        Returns once the rows are committed (durably, when persistent). Raises
        RejectedRecords after writing the acceptable ones, WriteValidation when the
        request as a whole is malformed.
        """
        check_shape(records, common or {})
        now_us = int(time.time() * 1_000_000)
        rows, rejected = rows_of(records, common or {}, now_us, retention_hours, magnetic_writes)
        job = Job((account, region, db, table), rows, rejected)
        self._submit(job)
        if job.rejected:
            job.rejected.sort(key=lambda r: int(r["RecordIndex"]))
            raise RejectedRecords(job.rejected, len(records) - len(job.rejected))
        return len(records)

    def _submit(self, job: Job) -> None:
        """Group commit: the first writer commits every queued job, the others wait."""
        with self._queue_lock:
            self._queue.append(job)
            lead = not self._writing
            if lead:
                self._writing = True
        if not lead:
            job.done.wait()
        else:
            while True:
                with self._queue_lock:
                    group, self._queue = self._queue, []
                    if not group:
                        self._writing = False
                        break
                self._commit_group(group)
        if job.error is not None:
            raise job.error

    def _commit_group(self, group: list[Job]) -> None:
        """Stage the rows that are certainly new; commit the others exactly (`tsstage`)."""
        parts: list[tuple[Job, Job]] = []
        try:
            with self._lock:
                staged, exact = self._classify(group, parts)
                if staged:
                    self._stage(staged)
                if exact:
                    self._commit_exact(exact)
        finally:
            for job, part in parts:  # a request fails if either of its parts did
                job.error = job.error or part.error
            for job in group:
                job.done.set()

    def _classify(
        self, group: list[Job], parts: list[tuple[Job, Job]]
    ) -> tuple[list[Job], list[Job]]:
        """Split each job: its new rows to stage, the rest (as `parts`) to check."""
        staged: list[Job] = []
        exact: list[Job] = []
        for job in group:
            try:
                rows = self._acceptable(job)
            except BaseException as e:  # this request fails, not the group
                job.error = e
                continue
            if not rows:
                continue
            clock = self._clocks[job.table]
            pairs, new = clock.classify(row for _, row, _ in rows)
            clock.advance(p for p, n in zip(pairs, new, strict=True) if n)  # staged: seen
            fresh = [r for r, n in zip(rows, new, strict=True) if n]
            check = [r for r, n in zip(rows, new, strict=True) if not n]
            COUNTERS.add("timestream_rows_staged", len(fresh))
            COUNTERS.add("timestream_rows_checked", len(check))
            job.rows = fresh or check
            (staged if fresh else exact).append(job)
            if fresh and check:
                part = Job(job.table, check, job.rejected)  # rejections land in the request
                parts.append((job, part))
                exact.append(part)
        return staged, exact

    def _acceptable(self, job: Job) -> list[tuple[int, dict[str, Any], int]]:
        """The job's rows whose columns fit the table (creating it and new columns)."""
        self.create_table(*job.table)
        t = self._tables[job.table]
        rows = []
        for i, row, version in job.rows:
            try:
                self._columns_for(t, row)
            except Reject as e:
                job.rejected.append({"RecordIndex": i, "Reason": str(e)})
                continue
            rows.append((i, row, version))
        return rows

    def _stage(self, jobs: list[Job]) -> None:
        """Journal (one fsync) and queue for the applier; then the requests may be answered."""
        with self._pending_lock:
            try:
                if self._journal is not None:
                    self._journal.append([(job.table, job.rows) for job in jobs])
            except BaseException as e:
                for job in jobs:
                    job.error = e
                return
            for job in jobs:
                self._tables[job.table].rows += len(job.rows)
                self._pending_rows += len(job.rows)
            self._pending.extend(jobs)
            wake = self._pending_rows >= APPLY_ROWS
        if wake:
            with self._wake:
                self._wake.notify()

    def _commit_exact(self, jobs: list[Job]) -> None:
        """The join path (`tswrite.write_table`), after every staged row is in DuckDB."""
        try:
            self._apply_staged()
        except BaseException as e:
            for job in jobs:
                job.error = e
            return
        self._commit_checked(jobs)

    def _commit_checked(self, jobs: list[Job]) -> None:
        """`_commit_catalog` per catalog; a failure is every job of that catalog's error."""
        by_catalog: dict[str, list[Job]] = {}
        for job in jobs:
            by_catalog.setdefault(self._tables[job.table].catalog, []).append(job)
        for cat_jobs in by_catalog.values():
            try:
                self._commit_catalog(cat_jobs)
            except BaseException as e:  # every request of the catalog fails alike
                for job in cat_jobs:
                    job.error = e
                continue
            for job in cat_jobs:
                if (clock := self._clocks.get(job.table)) is not None:
                    clock.advance_rows(row for _, row, _ in job.rows)

    def _apply_staged(self) -> None:
        """Insert every staged row into DuckDB, after any apply in progress (caller holds
        the lock): what a query, an exact commit or a drop must see first."""
        with self._apply_lock:
            self._apply_pending(self._con)

    def _apply_pending(self, con: duckdb.DuckDBPyConnection) -> None:
        """Insert the staged rows (one transaction per catalog), then drop the journal
        files that held them. Caller holds `_apply_lock`. On failure the rows stay staged
        (and journaled) and the error propagates."""
        with self._pending_lock:
            if not self._pending:
                return
            jobs, self._pending, self._pending_rows = self._pending, [], 0
            upto = self._journal.rotate() if self._journal is not None else 0
        by_catalog: dict[str, dict[TableKey, list[tuple[dict[str, Any], int]]]] = {}
        for job in jobs:
            tables = by_catalog.setdefault(self._tables[job.table].catalog, {})
            tables.setdefault(job.table, []).extend((row, v) for _, row, v in job.rows)
        failed: BaseException | None = None
        for tables in by_catalog.values():
            try:
                con.execute("BEGIN TRANSACTION")
                for key, rows in tables.items():
                    insert_new(con, self._tables[key], rows)
                con.execute("COMMIT")
            except BaseException as e:
                with contextlib.suppress(duckdb.Error):  # a failed COMMIT has rolled back
                    con.execute("ROLLBACK")
                failed = e
                back = [job for job in jobs if job.table in tables]
                with self._pending_lock:
                    self._pending[:0] = back
                    self._pending_rows += sum(len(job.rows) for job in back)
        if failed is not None:
            raise failed
        if self._journal is not None:
            self._journal.drop_through(upto)

    def _apply_loop(self) -> None:
        """The applier: staged rows go to DuckDB every APPLY_EVERY_S or APPLY_ROWS.

        On its own connection and without the store's lock, so writers are not held up
        by an insert (it took up to ~15 ms, and every WriteRecords waited behind it).
        A concurrent ALTER TABLE (a new column) makes DuckDB refuse its COMMIT: the rows
        stay staged and go in on the next pass."""
        cursor: duckdb.DuckDBPyConnection | None = None
        try:
            while not self._stop.is_set():
                with self._wake:
                    self._wake.wait(APPLY_EVERY_S)
                if not self._pending:
                    continue
                try:
                    with self._apply_lock:
                        cursor = cursor or self._con.cursor()
                        self._apply_pending(cursor)
                except duckdb.TransactionException:
                    continue  # a schema change won the race: retried on the next pass
                except Exception as e:  # kept staged: retried, and logged
                    log.warning("staged Timestream rows not applied yet (kept, will retry): %s", e)
                    self._stop.wait(1.0)
        finally:
            if cursor is not None:
                cursor.close()

    def _replay(self, journal: Journal) -> None:
        """Rows journaled before a crash: through the exact path (identical repeats skip)."""
        jobs = [Job(table, rows, []) for table, rows in journal.replay() if table in self._tables]
        self._commit_checked(jobs)
        failed = next((job.error for job in jobs if job.error is not None), None)
        if failed is not None:  # the journal stays: the next start replays it again
            raise failed
        if journal.left:
            journal.drop_through(journal.left[-1])

    def _commit_catalog(self, jobs: list[Job]) -> None:
        """One transaction for every job of a catalog (DuckDB writes one catalog at a time)."""
        by_table: dict[TableKey, list[Job]] = {}
        for job in jobs:
            self.create_table(*job.table)
            by_table.setdefault(job.table, []).append(job)
        self._con.execute("BEGIN TRANSACTION")
        try:
            for key, table_jobs in by_table.items():
                write_table(self._con, self._tables[key], table_jobs, self._columns_for)
            self._con.execute("COMMIT")
        except BaseException:
            self._con.execute("ROLLBACK")
            for key in by_table:
                if key in self._tables:
                    self._tables[key].rows = self._count(self._tables[key])
            raise


STORE: TimestreamStore | None = None
_STORE_LOCK = threading.Lock()


def store() -> TimestreamStore:
    """The emulator's one store (created on first use)."""
    global STORE
    with _STORE_LOCK:
        if STORE is None:
            STORE = TimestreamStore()
        return STORE


def _open_part(where: Path) -> None:
    store().reopen(where)


PERSISTENCE.register(Part("timestream", open=_open_part, close=lambda: store().close()))
