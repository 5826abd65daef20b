"""The write path of `tsstore`: one group commit's rows checked against a table, stored.

Timestream's rules, enforced in DuckDB rather than with a per-row index in Python: within
the group a dict over the group's own keys (bounded by the group); against the stored
rows one join on the natural key (time, measure name, every dimension, NULL-safe), whose
probe side DuckDB narrows to the row groups overlapping the batch's time range. Identical
repeats are skipped, a different value needs a higher Version (it replaces the row), else
the record is rejected with ExistingVersion, as on AWS.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import duckdb
import numpy as np

from iotpipe.local.tsrecords import Reject

STORE_SCHEMA = "__iotpipe_storage"  # per catalog; views named like the Timestream tables
VERSION = "__version"  # hidden column: the row's Version
MEMORY_LIMIT = "256MB"  # --ephemeral: the rows themselves live in DuckDB's memory
DISK_MEMORY_LIMIT = "128MB"  # persistent: a cache of the files (bounded RSS); spills to tmp/
_CONFLICT = (
    "A record with the same time, dimensions and measure name but a different "
    "measure value exists and its version is not lower."
)


def qi(name: str) -> str:
    """Quote a DuckDB identifier."""
    return '"' + name.replace('"', '""') + '"'


@dataclass
class Table:
    catalog: str
    db: str
    name: str
    columns: dict[str, str] = field(default_factory=dict)  # name -> DuckDB type
    dims: list[str] = field(default_factory=list)
    measures: list[str] = field(default_factory=list)
    kinds: dict[str, tuple[str, bool]] = field(default_factory=dict)  # name -> (type, is_dim)
    rows: int = 0

    @property
    def key(self) -> str:
        return self.db + "/" + self.name

    @property
    def storage(self) -> str:
        return f"{qi(self.catalog)}.{STORE_SCHEMA}.{qi(self.key)}"

    @property
    def view(self) -> str:
        return f"{qi(self.catalog)}.{qi(self.db)}.{qi(self.name)}"


@dataclass
class Job:
    """One WriteRecords waiting for the group commit that includes it."""

    table: tuple[str, str, str, str]
    rows: list[tuple[int, dict[str, Any], int]]  # (record index, row, version)
    rejected: list[dict[str, Any]]
    done: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None


def write_table(
    con: duckdb.DuckDBPyConnection,
    t: Table,
    jobs: list[Job],
    columns_for: Callable[[Table, dict[str, Any]], None],
) -> None:
    """Dedupe/version rules for this group's rows, then one DELETE and one INSERT."""
    group: dict[tuple[Any, ...], tuple[tuple[Any, ...], int, int]] = {}
    rows: list[tuple[Job, int, dict[str, Any], int]] = []
    for job in jobs:
        for i, row, version in job.rows:
            try:
                columns_for(t, row)
            except Reject as e:
                job.rejected.append({"RecordIndex": i, "Reason": str(e)})
                continue
            dims = tuple(sorted((k, row[k]) for k in row["__dims__"]))
            key = (row["time"], dims, row["measure_name"])
            values = tuple((k, row[k]) for k in sorted(row["__vals__"]))
            old = group.get(key)
            if old is not None:  # the same key twice in this group
                if old[0] == values:
                    continue
                if version <= old[1]:
                    job.rejected.append(
                        {"RecordIndex": i, "Reason": _CONFLICT, "ExistingVersion": old[1]}
                    )
                    continue
                rows[old[2]] = (rows[old[2]][0], -1, {}, 0)  # replaced within the group
            group[key] = (values, version, len(rows))
            rows.append((job, i, row, version))
    live = [r for r in rows if r[1] >= 0]
    if not live:
        return
    names = [c for c in t.columns if c != VERSION]
    data = _arrays(names, [r[2] for r in live], [r[3] for r in live])
    con.register("__raw", data)
    try:
        skip = against_table(con, t, names, live)
        keep = np.array([i not in skip for i in range(len(live))], dtype=bool)
        con.unregister("__raw")
        con.register("__raw", {n: a[keep] for n, a in data.items()})
        _insert(con, t, names)
        t.rows += int(keep.sum())
    finally:
        con.unregister("__raw")


def insert_new(
    con: duckdb.DuckDBPyConnection, t: Table, rows: list[tuple[dict[str, Any], int]]
) -> None:
    """Insert rows known to be new (`tsstage.SeriesClock`: later than their series): no join.

    May run beside a writer adding a column: `list()` copies the names in one step."""
    names = [c for c in list(t.columns) if c != VERSION]
    con.register("__raw", _arrays(names, [r[0] for r in rows], [r[1] for r in rows]))
    try:
        _insert(con, t, names)
    finally:
        con.unregister("__raw")


def _arrays(
    names: list[str], rows: list[dict[str, Any]], versions: list[int]
) -> dict[str, np.ndarray]:
    data: dict[str, np.ndarray] = {
        n: (
            np.array([r["time"] for r in rows], dtype="datetime64[us]")
            if n == "time"
            else np.array([r.get(n) for r in rows], dtype=object)
        )
        for n in names
    }
    data[VERSION] = np.array(versions, dtype=np.int64)
    data["__i"] = np.arange(len(rows), dtype=np.int64)
    return data


def _insert(con: duckdb.DuckDBPyConnection, t: Table, names: list[str]) -> None:
    cols = ", ".join(qi(n) for n in [*names, VERSION])
    con.execute(f"INSERT INTO {t.storage} ({cols}) SELECT {cols} FROM ({typed(t, names)})")


def typed(t: Table, names: list[str]) -> str:
    cols = [
        qi(n)
        if t.columns[n] in ("VARCHAR", "TIMESTAMP")
        else f"CAST({qi(n)} AS {t.columns[n]}) AS {qi(n)}"
        for n in names
    ]
    return f"SELECT {', '.join(cols)}, {VERSION}, __i FROM __raw"


def against_table(
    con: duckdb.DuckDBPyConnection,
    t: Table,
    names: list[str],
    live: list[tuple[Job, int, dict[str, Any], int]],
) -> set[int]:
    """Rows already stored under the same key: skip repeats and rejects, drop replaced."""
    # Keys straight from the registered arrays (no casts); the constant time range lets
    # DuckDB skip every row group outside it by its min/max, so the cost follows the
    # batch, not the table. Values are cast only for the rows that matched.
    on = ["s.time = b.time", "s.measure_name = b.measure_name"]
    on += [f"s.{qi(d)} IS NOT DISTINCT FROM b.{qi(d)}" for d in t.dims if d in names]
    same = " AND ".join(
        f"s.{qi(m)} IS NOT DISTINCT FROM CAST(b.{qi(m)} AS {t.columns[m]})" for m in t.measures
    )
    times = [r[2]["time"] for r in live]
    found = con.execute(
        f"SELECT b.__i, s.{VERSION}, {same or 'true'} FROM __raw b JOIN {t.storage} s "
        f"ON {' AND '.join(on)} WHERE s.time BETWEEN make_timestamp(?) AND make_timestamp(?)",
        [min(times), max(times)],
    ).fetchall()
    skip: set[int] = set()
    replaced: list[int] = []
    for i, existing, identical in found:
        job, index, _, version = live[i]
        skip.add(i)
        if identical:
            continue
        if version <= existing:
            job.rejected.append(
                {"RecordIndex": index, "Reason": _CONFLICT, "ExistingVersion": existing}
            )
            continue
        skip.discard(i)
        replaced.append(i)
    if replaced:
        con.execute(
            f"DELETE FROM {t.storage} s USING ({typed(t, names)}) b "
            f"WHERE {' AND '.join(on)} AND b.__i IN ({', '.join(map(str, replaced))})"
        )
        t.rows -= len(replaced)
    return skip
