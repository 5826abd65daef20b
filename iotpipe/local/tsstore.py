"""Timestream tables in DuckDB, fed by moto's write path as records arrive.

Layout (what Timestream shows a query): one DuckDB catalog per account+region, one schema
per Timestream database, and per table a storage table plus a view named like the table
whose column order is Timestream's (dimensions, ``measure_name``, ``time``, measures).
Single-measure values live in columns literally named ``measure_value::double`` (bigint,
varchar, boolean, timestamp), so a type a row does not have reads as NULL, as on AWS;
multi-measure records get one column per measure name. Columns are added as new
dimensions and measures arrive. Each storage table also holds the row's ``Version``
(hidden from the view) and each catalog a ``__columns`` table (which column is a
dimension), so the store rebuilds itself from DuckDB alone.

Writes behave like Timestream's: ``CommonAttributes`` merged into every record; a repeat
of an identical record is accepted and stored once (so retried batches do not duplicate
rows); a different value for the same time, dimensions and measure name is rejected
unless its ``Version`` is higher (then it replaces the row). These rules are a join of
each commit's rows against the table on that natural key (no per-row index in Python, so
memory does not grow with the rows; the join reads only the row groups whose time range
overlaps the batch). Time is kept to the microsecond; nanoseconds are truncated.

Persistence (part "timestream", see `durable`): each catalog is a DuckDB file under
``data/timestream/`` (ephemeral: in memory). Durability policy: group commit. A
WriteRecords queues its rows; one writer at a time commits everything queued in one
DuckDB transaction per catalog and only then answers every request in the group. DuckDB
writes the commit to its WAL and fsyncs it before COMMIT returns, so an acknowledged
WriteRecords survives a ``kill -9``; the WAL is checkpointed into the file by DuckDB
(automatically, and at close). ``MEMORY_LIMIT`` caps DuckDB's buffer pool.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from iotpipe.local.durable import PERSISTENCE, Part
from iotpipe.local.tsrecords import Reject, WriteValidation, merge_common, to_row
from iotpipe.local.tswrite import MEMORY_LIMIT, STORE_SCHEMA, VERSION, Job, Table, qi, write_table

__all__ = ["RejectedRecords", "TableSchema", "TimestreamStore", "WriteValidation", "qi", "store"]


class RejectedRecords(Exception):
    """Some records were not written; `rejected` is Timestream's RejectedRecords list."""

    def __init__(self, rejected: list[dict[str, Any]], written: int) -> None:
        super().__init__(f"{len(rejected)} record(s) rejected")
        self.rejected = rejected
        self.written = written


@dataclass(frozen=True)
class TableSchema:
    storage: str  # the DuckDB table (internal: never shown to a query)
    dimensions: dict[str, str]
    measures: dict[str, str]


class TimestreamStore:
    """All Timestream data of the emulator, queryable with DuckDB."""

    def __init__(self, directory: Path | None = None) -> None:
        self._lock = threading.RLock()  # the connection and the metadata
        self._queue: list[Job] = []
        self._queue_lock = threading.Lock()
        self._writing = False
        self._open(directory)

    def _open(self, directory: Path | None) -> None:
        self._dir = directory
        self._con = duckdb.connect(":memory:", config={"memory_limit": MEMORY_LIMIT})
        self._con.execute("SET GLOBAL TimeZone='UTC'")  # every cursor: Timestream is UTC
        self._tables: dict[tuple[str, str, str, str], Table] = {}
        self._databases: set[tuple[str, str, str]] = set()
        self._catalogs: set[str] = set()
        if directory is not None:
            self._con.execute("SET allowed_directories=?", [[str(directory) + "/"]])
        self._con.execute("SET enable_external_access=false")
        self._con.execute("SET lock_configuration=true")  # no query can SET anything now
        if directory is not None:
            for path in sorted(directory.glob("ts_*.duckdb")):
                self._attach(path.stem)

    def reopen(self, directory: Path | None) -> None:
        """Switch to ``directory`` (the part's open, before anything is served)."""
        with self._lock:
            self.close()
            self._open(directory)

    def close(self) -> None:
        with self._lock:
            if self._dir is not None:
                for cat in self._catalogs:
                    self._con.execute(f"CHECKPOINT {qi(cat)}")
            self._con.close()

    # -- catalog management -------------------------------------------------------
    @staticmethod
    def catalog_name(account: str, region: str) -> str:
        return f"ts_{account}_{region.replace('-', '_')}"

    def _catalog(self, account: str, region: str) -> str:
        name = self.catalog_name(account, region)
        if name not in self._catalogs:
            self._attach(name)
        return name

    def _attach(self, name: str) -> None:
        """Attach (and on first use create) a catalog; load its tables' metadata."""
        where = ":memory:" if self._dir is None else str(self._dir / f"{name}.duckdb")
        self._con.execute(f"ATTACH '{where}' AS {qi(name)}")
        self._con.execute(f"CREATE SCHEMA IF NOT EXISTS {qi(name)}.{STORE_SCHEMA}")
        meta = f"{qi(name)}.{STORE_SCHEMA}"
        self._con.execute(
            f"CREATE TABLE IF NOT EXISTS {meta}.__columns "
            "(tbl VARCHAR, col VARCHAR, typ VARCHAR, is_dim BOOLEAN, pos INTEGER)"
        )
        self._con.execute(
            f"CREATE TABLE IF NOT EXISTS {meta}.__databases (db VARCHAR, ident VARCHAR)"
        )
        self._catalogs.add(name)
        account, region = name[3:].split("_", 1)
        region = region.replace("_", "-")
        for db, _ in self._con.execute(f"SELECT db, ident FROM {meta}.__databases").fetchall():
            self._databases.add((account, region, db))
        cols = self._con.execute(
            f"SELECT tbl, col, typ, is_dim FROM {meta}.__columns ORDER BY tbl, pos"
        ).fetchall()
        for tbl, col, typ, is_dim in cols:
            db, table = tbl.split("/", 1)
            t = self._tables.setdefault((account, region, db, table), Table(name, db, table))
            t.columns[col] = typ
            if is_dim is not None:
                t.kinds[col] = (typ, bool(is_dim))
                (t.dims if is_dim else t.measures).append(col)
        for t in self._tables.values():
            if t.catalog == name:
                t.rows = self._count(t)

    def _count(self, t: Table) -> int:
        found = self._con.execute(f"SELECT count(*) FROM {t.storage}").fetchone()
        return int(found[0]) if found else 0

    def cursor(self, account: str, region: str) -> duckdb.DuckDBPyConnection:
        """A read-only cursor for one query: its own transaction, which cannot write."""
        with self._lock:
            name = self._catalog(account, region)
            cur = self._con.cursor()
        cur.execute(f"USE {qi(name)}")
        cur.execute("BEGIN TRANSACTION READ ONLY")
        return cur

    # -- what queries may see ------------------------------------------------------
    def create_database(self, account: str, region: str, db: str) -> None:
        with self._lock:
            if (account, region, db) in self._databases:
                return
            meta = f"{qi(self._catalog(account, region))}.{STORE_SCHEMA}"
            self._con.execute(f"INSERT INTO {meta}.__databases VALUES (?, NULL)", [db])
            self._databases.add((account, region, db))

    def has_table(self, account: str, region: str, db: str, table: str | None = None) -> bool:
        """Whether a database (``table=None``) or a table exists for this account+region."""
        with self._lock:
            if table is None:
                return (account, region, db) in self._databases
            return (account, region, db, table) in self._tables

    def databases(self, account: str, region: str) -> list[str]:
        with self._lock:
            return sorted(d for a, r, d in self._databases if (a, r) == (account, region))

    def tables(self, account: str, region: str, db: str | None = None) -> list[str]:
        with self._lock:
            return sorted(
                t for a, r, d, t in self._tables if (a, r) == (account, region) and db in (None, d)
            )

    def schema(self, account: str, region: str, db: str, table: str) -> TableSchema:
        """Dimensions and measure columns (name -> Timestream type), for DESCRIBE/SHOW."""
        with self._lock:
            t = self._tables[(account, region, db, table)]
            return TableSchema(
                t.storage,
                {d: "varchar" for d in t.dims},
                {m: t.columns[m].lower() for m in t.measures},
            )

    def create_table(self, account: str, region: str, db: str, table: str) -> None:
        with self._lock:
            key = (account, region, db, table)
            self.create_database(account, region, db)
            if key in self._tables:
                return
            cat = self._catalog(account, region)
            t = Table(cat, db, table)
            self._con.execute(f"CREATE SCHEMA IF NOT EXISTS {qi(cat)}.{qi(db)}")
            self._con.execute(
                f"CREATE TABLE {t.storage} (measure_name VARCHAR, time TIMESTAMP, {VERSION} BIGINT)"
            )
            for col, typ in (
                ("measure_name", "VARCHAR"),
                ("time", "TIMESTAMP"),
                (VERSION, "BIGINT"),
            ):
                self._remember(t, col, typ, None)
            self._tables[key] = t
            self._refresh_view(t)

    def _remember(self, t: Table, col: str, typ: str, dim: bool | None) -> None:
        meta = f"{qi(t.catalog)}.{STORE_SCHEMA}.__columns"
        self._con.execute(
            f"INSERT INTO {meta} VALUES (?, ?, ?, ?, ?)", [t.key, col, typ, dim, len(t.columns)]
        )
        t.columns[col] = typ
        if dim is not None:
            t.kinds[col] = (typ, dim)
            (t.dims if dim else t.measures).append(col)

    def drop_table(self, account: str, region: str, db: str, table: str) -> None:
        with self._lock:
            t = self._tables.pop((account, region, db, table), None)
            if t:
                self._con.execute(f"DROP VIEW IF EXISTS {t.view}")
                self._con.execute(f"DROP TABLE IF EXISTS {t.storage}")
                meta = f"{qi(t.catalog)}.{STORE_SCHEMA}.__columns"
                self._con.execute(f"DELETE FROM {meta} WHERE tbl = ?", [t.key])

    def drop_database(self, account: str, region: str, db: str) -> None:
        with self._lock:
            for key in [k for k in self._tables if k[:3] == (account, region, db)]:
                self.drop_table(*key)
            self._databases.discard((account, region, db))
            if (cat := self.catalog_name(account, region)) in self._catalogs:
                self._con.execute(f"DROP SCHEMA IF EXISTS {qi(cat)}.{qi(db)} CASCADE")
                meta = f"{qi(cat)}.{STORE_SCHEMA}.__databases"
                self._con.execute(f"DELETE FROM {meta} WHERE db = ?", [db])

    def reset(self) -> None:
        with self._lock:
            for a, r, d in list(self._databases):
                self.drop_database(a, r, d)
            for key in list(self._tables):
                self.drop_table(*key)

    def row_count(self) -> int:
        with self._lock:
            return sum(t.rows for t in self._tables.values())

    def flush(self) -> None:
        """Nothing to do: a write is in DuckDB before it is acknowledged (read your writes)."""

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
        merged = [merge_common(r, common or {}) for r in records]
        job = Job((account, region, db, table), [], [])
        now_us = int(time.time() * 1_000_000)
        for i, rec in enumerate(merged):
            try:
                row = to_row(rec, now_us, retention_hours, magnetic_writes)
            except Reject as e:
                job.rejected.append({"RecordIndex": i, "Reason": str(e), **e.extra})
                continue
            job.rows.append((i, row, int(rec.get("Version", 1) or 1)))
        self._submit(job)
        if job.rejected:
            job.rejected.sort(key=lambda r: int(r["RecordIndex"]))
            raise RejectedRecords(job.rejected, len(merged) - len(job.rejected))
        return len(merged)

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
        by_catalog: dict[str, list[Job]] = {}
        for job in group:
            by_catalog.setdefault(self.catalog_name(*job.table[:2]), []).append(job)
        for jobs in by_catalog.values():
            try:
                with self._lock:
                    self._commit_catalog(jobs)
            except BaseException as e:  # every request of the group fails alike
                for job in jobs:
                    job.error = e
            finally:
                for job in jobs:
                    job.done.set()

    def _commit_catalog(self, jobs: list[Job]) -> None:
        """One transaction for every job of a catalog (DuckDB writes one catalog at a time)."""
        by_table: dict[tuple[str, str, str, str], list[Job]] = {}
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

    def _columns_for(self, t: Table, row: dict[str, Any]) -> None:
        for name in row["__dims__"]:
            if t.kinds.get(name) != ("VARCHAR", True):
                self._ensure_column(t, name, "VARCHAR", dim=True)
        for name, typ in row["__vals__"].items():
            if t.kinds.get(name) != (typ, False):
                self._ensure_column(t, name, typ, dim=False)

    def _ensure_column(self, t: Table, name: str, typ: str, dim: bool) -> None:
        existing = {c.lower(): c for c in t.columns}
        if name.lower() in existing:
            have = existing[name.lower()]
            is_dim = have in t.dims
            if have != name or is_dim != dim or t.columns[have] != typ:
                kind = "dimension" if is_dim else f"{t.columns[have]} measure"
                raise Reject(f"Column {name} conflicts with existing {kind} {have}.")
            return
        self._con.execute(f"ALTER TABLE {t.storage} ADD COLUMN {qi(name)} {typ}")
        self._remember(t, name, typ, dim)
        self._refresh_view(t)

    def _refresh_view(self, t: Table) -> None:
        order = [*t.dims, "measure_name", "time", *t.measures]
        cols = ", ".join(qi(c) for c in order)
        self._con.execute(f"CREATE OR REPLACE VIEW {t.view} AS SELECT {cols} FROM {t.storage}")


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
