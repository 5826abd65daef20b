"""Timestream's catalog in DuckDB: which databases, tables and columns exist.

Layout (what Timestream shows a query): one DuckDB catalog per account+region, one schema
per Timestream database, and per table a storage table plus a view named like the table
whose column order is Timestream's (dimensions, ``measure_name``, ``time``, measures).
Single-measure values live in columns literally named ``measure_value::double`` (bigint,
varchar, boolean, timestamp), so a type a row does not have reads as NULL, as on AWS;
multi-measure records get one column per measure name. Columns are added as new
dimensions and measures arrive. Each storage table also holds the row's ``Version``
(hidden from the view), and each catalog a
``__columns`` table (which column is a dimension), so the store rebuilds itself from
DuckDB alone. `tsstore` adds the write path on top of this class.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from iotpipe.local.tsrecords import Reject
from iotpipe.local.tsstage import SeriesClock, series_of
from iotpipe.local.tswrite import DISK_MEMORY_LIMIT, MEMORY_LIMIT, STORE_SCHEMA, VERSION, Table, qi

TableKey = tuple[str, str, str, str]  # account, region, database, table


@dataclass(frozen=True)
class TableSchema:
    storage: str  # the DuckDB table (internal: never shown to a query)
    dimensions: dict[str, str]
    measures: dict[str, str]


class TableCatalog:
    """One DuckDB connection and what it holds; every method takes the lock."""

    _lock: threading.RLock

    def _open_catalogs(self, directory: Path | None) -> None:
        """A fresh connection, locked down for queries, with every catalog file attached."""
        self._dir = directory
        limit = MEMORY_LIMIT if directory is None else DISK_MEMORY_LIMIT
        self._con = duckdb.connect(":memory:", config={"memory_limit": limit})
        self._con.execute("SET GLOBAL TimeZone='UTC'")  # every cursor: Timestream is UTC
        self._tables: dict[TableKey, Table] = {}
        self._databases: set[tuple[str, str, str]] = set()
        self._catalogs: set[str] = set()
        self._clocks: dict[TableKey, SeriesClock] = {}
        if directory is not None:
            self._con.execute("SET allowed_directories=?", [[str(directory) + "/"]])
            self._con.execute("SET temp_directory=?", [str(directory / "tmp")])
        self._con.execute("SET enable_external_access=false")
        self._con.execute("SET lock_configuration=true")  # no query can SET anything now
        if directory is not None:
            for path in sorted(directory.glob("ts_*.duckdb")):
                self._attach(path.stem)

    def _before_drop(self) -> None:
        """Hook: the write path applies what it staged before a table goes."""

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
        for key, t in self._tables.items():
            if t.catalog == name:
                t.rows = self._count(t)
                self._load_clock(key, t)

    def _load_clock(self, key: TableKey, t: Table) -> None:
        """The table's `SeriesClock`: one GROUP BY over what it stores."""
        dims = [qi(d) for d in t.dims]
        found = self._con.execute(
            f"SELECT measure_name, epoch_us(max(time)) {''.join(', ' + d for d in dims)} "
            f"FROM {t.storage} GROUP BY ALL"
        ).fetchall()
        floors: dict[int, int] = {}  # all stored: each series up to its latest
        for name, at, *values in found:
            pairs = ((d, v) for d, v in zip(t.dims, values, strict=True) if v is not None)
            series = series_of(name, pairs)
            floors[series] = max(at, floors.get(series, at))
        self._clocks[key] = SeriesClock(floors)

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
            self._clocks[key] = SeriesClock()
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
            self._before_drop()  # no staged row outlives its table
            self._clocks.pop((account, region, db, table), None)
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
        """Rows stored or staged, without the lock: a status never waits for a commit."""
        while True:
            try:
                return sum(t.rows for t in list(self._tables.values()))
            except RuntimeError:  # a table was added or dropped meanwhile: count again
                continue

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
