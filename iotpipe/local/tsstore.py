"""Timestream tables mirrored in DuckDB, fed by moto's write path as records arrive.

Layout (what Timestream shows a query): one DuckDB catalog per account+region, one schema
per Timestream database, and per table a storage table plus a view named like the table
whose column order is Timestream's (dimensions, ``measure_name``, ``time``, measures).
Single-measure values live in columns literally named ``measure_value::double`` (bigint,
varchar, boolean, timestamp), so a type a row does not have reads as NULL, as on AWS;
multi-measure records get one column per measure name. Columns are added as new
dimensions and measures arrive.

Writes behave like Timestream's: ``CommonAttributes`` merged into every record; a repeat
of an identical record is accepted and stored once (so retried batches do not duplicate
rows); a different value for the same time, dimensions and measure name is rejected
unless its ``Version`` is higher (then it replaces the row). Time is kept to the
microsecond (DuckDB TIMESTAMP); nanoseconds are truncated.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import duckdb
import numpy as np

from iotpipe.local.tsrecords import Reject, WriteValidation, merge_common, to_row

__all__ = ["RejectedRecords", "TableSchema", "TimestreamStore", "WriteValidation", "qi", "store"]

FLUSH_ROWS = 5000  # pending rows that trigger an INSERT without waiting for a query
STORE_SCHEMA = "__iotpipe_storage"  # per catalog; views named like the Timestream tables


class RejectedRecords(Exception):
    """Some records were not written; `rejected` is Timestream's RejectedRecords list."""

    def __init__(self, rejected: list[dict[str, Any]], written: int) -> None:
        super().__init__(f"{len(rejected)} record(s) rejected")
        self.rejected = rejected
        self.written = written


def qi(name: str) -> str:
    """Quote a DuckDB identifier."""
    return '"' + name.replace('"', '""') + '"'


@dataclass
class _Table:
    catalog: str
    db: str
    name: str
    columns: dict[str, str] = field(default_factory=dict)  # name -> DuckDB type
    dims: list[str] = field(default_factory=list)
    measures: list[str] = field(default_factory=list)
    kinds: dict[str, tuple[str, bool]] = field(default_factory=dict)  # name -> (type, is_dim)
    index: dict[tuple[Any, ...], tuple[Any, int]] = field(default_factory=dict)
    pending: list[dict[str, Any]] = field(default_factory=list)  # accepted, not yet in DuckDB
    rows: int = 0

    @property
    def storage(self) -> str:
        return f"{qi(self.catalog)}.{STORE_SCHEMA}.{qi(self.db + '/' + self.name)}"

    @property
    def view(self) -> str:
        return f"{qi(self.catalog)}.{qi(self.db)}.{qi(self.name)}"


@dataclass(frozen=True)
class TableSchema:
    storage: str  # the DuckDB table (internal: never shown to a query)
    dimensions: dict[str, str]
    measures: dict[str, str]


class TimestreamStore:
    """All Timestream data of the emulator, queryable with DuckDB."""

    def __init__(self) -> None:
        self._con = duckdb.connect(":memory:")
        self._con.execute("SET GLOBAL TimeZone='UTC'")  # every cursor: Timestream is UTC
        self._lock = threading.RLock()
        self._tables: dict[tuple[str, str, str, str], _Table] = {}
        self._databases: set[tuple[str, str, str]] = set()
        self._catalogs: set[str] = set()
        self._con.execute("SET enable_external_access=false")
        self._con.execute("SET lock_configuration=true")  # no query can SET anything now

    # -- catalog management -------------------------------------------------------
    @staticmethod
    def catalog_name(account: str, region: str) -> str:
        return f"ts_{account}_{region.replace('-', '_')}"

    def _catalog(self, account: str, region: str) -> str:
        name = self.catalog_name(account, region)
        if name not in self._catalogs:
            self._con.execute(f"ATTACH ':memory:' AS {qi(name)}")
            self._con.execute(f"CREATE SCHEMA {qi(name)}.{STORE_SCHEMA}")
            self._catalogs.add(name)
        return name

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
            self._databases.add((account, region, db))
            if key in self._tables:
                return
            cat = self._catalog(account, region)
            t = _Table(cat, db, table, columns={"measure_name": "VARCHAR", "time": "TIMESTAMP"})
            self._con.execute(f"CREATE SCHEMA IF NOT EXISTS {qi(cat)}.{qi(db)}")
            self._con.execute(f"CREATE TABLE {t.storage} (measure_name VARCHAR, time TIMESTAMP)")
            self._tables[key] = t
            self._refresh_view(t)

    def drop_table(self, account: str, region: str, db: str, table: str) -> None:
        with self._lock:
            t = self._tables.pop((account, region, db, table), None)
            if t:
                self._con.execute(f"DROP VIEW IF EXISTS {t.view}")
                self._con.execute(f"DROP TABLE IF EXISTS {t.storage}")

    def drop_database(self, account: str, region: str, db: str) -> None:
        with self._lock:
            for key in [k for k in self._tables if k[:3] == (account, region, db)]:
                self.drop_table(*key)
            self._databases.discard((account, region, db))
            if (cat := self.catalog_name(account, region)) in self._catalogs:
                self._con.execute(f"DROP SCHEMA IF EXISTS {qi(cat)}.{qi(db)} CASCADE")

    def reset(self) -> None:
        with self._lock:
            for key in list(self._tables):
                self.drop_table(*key)
            self._databases.clear()

    def row_count(self) -> int:
        with self._lock:
            return sum(t.rows for t in self._tables.values())

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

        Raises RejectedRecords after writing the acceptable ones, WriteValidation when the
        request as a whole is malformed.
        """
        merged = [merge_common(r, common or {}) for r in records]
        rejected: list[dict[str, Any]] = []
        now_us = int(time.time() * 1_000_000)
        with self._lock:
            self.create_table(account, region, db, table)
            t = self._tables[(account, region, db, table)]
            for i, rec in enumerate(merged):
                try:
                    row = to_row(rec, now_us, retention_hours, magnetic_writes)
                    self._claim(t, row, rec)
                except Reject as e:
                    rejected.append({"RecordIndex": i, "Reason": str(e), **e.extra})
                    continue
                if row.pop("__skip__", False):
                    continue
                del row["__dims__"], row["__vals__"]
                t.pending.append(row)
                t.rows += 1
            if len(t.pending) >= FLUSH_ROWS:
                self._flush(t)
        if rejected:
            raise RejectedRecords(rejected, len(merged) - len(rejected))
        return len(merged)

    def _claim(self, t: _Table, row: dict[str, Any], rec: dict[str, Any]) -> None:
        """Dedupe/version check and schema evolution for one row (under the lock)."""
        dims = tuple(sorted((k, row[k]) for k in row["__dims__"]))
        key = (row["time"], dims, row["measure_name"])
        values = tuple((k, row[k]) for k in sorted(row["__vals__"]))
        version = int(rec.get("Version", 1) or 1)
        old = t.index.get(key)
        if old is not None:
            if old[0] == values:
                row["__skip__"] = True
                return
            if version <= old[1]:
                raise Reject(
                    "A record with the same time, dimensions and measure name but a different "
                    "measure value exists and its version is not lower.",
                    ExistingVersion=old[1],
                )
        for name in row["__dims__"]:
            if t.kinds.get(name) != ("VARCHAR", True):
                self._ensure_column(t, name, "VARCHAR", dim=True)
        for name, typ in row["__vals__"].items():
            if t.kinds.get(name) != (typ, False):
                self._ensure_column(t, name, typ, dim=False)
        if old is not None:
            self._flush(t)  # the row to replace may still be pending
            where = " AND ".join(
                [f"{qi(k)} = ?" for k, _ in dims] + ["time = make_timestamp(?)", "measure_name = ?"]
            )
            self._con.execute(
                f"DELETE FROM {t.storage} WHERE {where}",
                [v for _, v in dims] + [row["time"], row["measure_name"]],
            )
            t.rows -= 1
        t.index[key] = (values, version)

    def _ensure_column(self, t: _Table, name: str, typ: str, dim: bool) -> None:
        existing = {c.lower(): c for c in t.columns}
        if name.lower() in existing:
            have = existing[name.lower()]
            is_dim = have in t.dims
            if have != name or is_dim != dim or t.columns[have] != typ:
                kind = "dimension" if is_dim else f"{t.columns[have]} measure"
                raise Reject(f"Column {name} conflicts with existing {kind} {have}.")
            return
        self._con.execute(f"ALTER TABLE {t.storage} ADD COLUMN {qi(name)} {typ}")
        t.columns[name] = typ
        t.kinds[name] = (typ, dim)
        (t.dims if dim else t.measures).append(name)
        self._refresh_view(t)

    def _refresh_view(self, t: _Table) -> None:
        order = [*t.dims, "measure_name", "time", *t.measures]
        cols = ", ".join(qi(c) for c in order)
        self._con.execute(f"CREATE OR REPLACE VIEW {t.view} AS SELECT {cols} FROM {t.storage}")

    def flush(self) -> None:
        """Move every pending row into DuckDB (queries call this first: read your writes)."""
        with self._lock:
            for t in self._tables.values():
                if t.pending:
                    self._flush(t)

    def _flush(self, t: _Table) -> None:
        """One INSERT for all pending rows: DuckDB's cost is per statement, not per row."""
        rows, t.pending = t.pending, []
        if not rows:
            return
        names = sorted({k for r in rows for k in r})
        data: dict[str, np.ndarray] = {}
        for name in names:
            values = [r.get(name) for r in rows]
            if name == "time":
                data[name] = np.array(values, dtype="datetime64[us]")
            else:
                data[name] = np.array(values, dtype=object)
        cur = self._con.cursor()
        cur.register("__batch", data)
        cols = ", ".join(qi(n) for n in names)
        typed = ", ".join(
            qi(n)
            if t.columns[n] in ("VARCHAR", "TIMESTAMP")
            else f"CAST({qi(n)} AS {t.columns[n]})"
            for n in names
        )
        cur.execute(f"INSERT INTO {t.storage} ({cols}) SELECT {typed} FROM __batch")
        cur.unregister("__batch")
        cur.close()


STORE: TimestreamStore | None = None
_STORE_LOCK = threading.Lock()


def store() -> TimestreamStore:
    """The emulator's one store (created on first use)."""
    global STORE
    with _STORE_LOCK:
        if STORE is None:
            STORE = TimestreamStore()
        return STORE
