"""Staged Timestream writes: the series clock never lets a repeat through, the journal keeps what
was acknowledged (and only that), and a crash at any point of staging or applying leaves
every acknowledged row in the store exactly once."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import duckdb
import pytest
from ts_records import rec

from iotpipe.local import tsstage, tsstore, tswrite
from iotpipe.local.counters import COUNTERS
from iotpipe.local.segments import DiskFull
from iotpipe.local.tsstage import Journal, SeriesClock, row_series, series_of
from iotpipe.local.tsstore import RejectedRecords, TimestreamStore

A, R = "123456789012", "us-east-1"
TABLE = (A, R, "db", "t")


def new_pairs(clock: SeriesClock, rows: list[dict[str, Any]]) -> list[tuple[int, int]] | None:
    """The pairs to `advance` if every row is certainly new, else None."""
    pairs, new = clock.classify(rows)
    return pairs if all(new) else None


def row(dev: str, t: int, measure: str = "temperature") -> dict[str, Any]:
    return {"__dims__": ["DeviceId"], "DeviceId": dev, "time": t, "measure_name": measure}


# -- SeriesClock -----------------------------------------------------------------------------
def test_series_ignores_dimension_order_and_values_are_not_part_of_it() -> None:
    two = {"__dims__": ["a", "b"], "a": "1", "b": "2", "time": 1, "measure_name": "m"}
    swapped = {"__dims__": ["b", "a"], "b": "2", "a": "1", "time": 1, "measure_name": "m"}
    assert row_series(two) == row_series(swapped) == series_of("m", [("a", "1"), ("b", "2")])
    assert row_series(row("s1", 1)) == row_series({**row("s1", 5), "value": 99})
    assert row_series(row("s1", 1)) != row_series(row("s2", 1))
    assert row_series(row("s1", 1)) != row_series(row("s1", 1, measure="n"))


def test_rows_not_among_the_recent_pairs_are_new_even_out_of_order() -> None:
    clock = SeriesClock()
    first = new_pairs(clock, [row("s1", 10), row("s2", 10), row("s1", 12)])
    assert first is not None
    clock.advance(first)
    assert new_pairs(clock, [row("s1", 11), row("s1", 9)]) is not None  # reordered, still new
    assert new_pairs(clock, [row("s1", 12)]) is None  # a repeat
    assert new_pairs(clock, [row("s3", 1), row("s2", 10)]) is None  # one repeat: all exact
    assert new_pairs(clock, [row("s1", 13), row("s1", 13)]) is None  # twice in one batch
    assert len(clock) == 3  # nothing changed without advance


def test_forgotten_pairs_raise_their_series_floor(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tsstage, "RECENT", 4)
    clock = SeriesClock()
    clock.advance_rows([row("s1", t) for t in (5, 1, 7, 3, 8, 9)])  # 5 and 1 forgotten
    assert len(clock) == 5  # four pairs and one floor: bounded, whatever was written
    assert new_pairs(clock, [row("s1", 4)]) is None  # at or below the floor (5): maybe stored
    assert new_pairs(clock, [row("s1", 6)]) is not None  # above it, not recent: new
    assert new_pairs(clock, [row("s1", 7)]) is None  # recent
    assert new_pairs(clock, [row("s2", 1)]) is not None  # another series: its own floor
    floors = SeriesClock({row_series(row("s1", 0)): 20})
    assert new_pairs(floors, [row("s1", 20)]) is None
    assert new_pairs(floors, [row("s1", 21)]) is not None


def test_the_store_rebuilds_its_clock_from_duckdb(tmp_path: Path) -> None:
    store = TimestreamStore(tmp_path)
    t = int(time.time() * 1000)
    store.write(A, R, "db", "t", [rec("s1", 1, t), rec("s1", 2, t + 5), rec("s2", 1, t)])
    store.write(A, R, "db", "t", [{**rec("s3", 1, t), "Dimensions": []}])  # no dimension
    store.close()
    again = TimestreamStore(tmp_path)
    clock = again._clocks[TABLE]
    us = 1000
    assert new_pairs(clock, [row("s1", (t + 5) * us)]) is None
    assert new_pairs(clock, [row("s1", (t + 6) * us), row("s2", (t + 1) * us)]) is not None
    none = {"__dims__": [], "time": t * us, "measure_name": "temperature"}
    assert new_pairs(clock, [none]) is None
    again.close()


# -- Journal ---------------------------------------------------------------------------------
def test_journal_replays_what_the_last_process_appended(tmp_path: Path) -> None:
    j = Journal(tmp_path)
    j.append([(TABLE, [(0, row("s1", 1), 1)])])
    j.append([(TABLE, [(0, row("s2", 1), 1)]), (TABLE, [(1, row("s3", 1), 2)])])
    again = Journal(tmp_path)  # no close: as after kill -9
    got = [[r["DeviceId"] for _, r, _ in rows] for _, rows in again.replay()]
    assert got == [["s1"], ["s2"], ["s3"]]
    assert oct(os.stat(tmp_path / f"{again.number}.log").st_mode & 0o777) == "0o600"


def test_journal_ignores_a_torn_tail(tmp_path: Path) -> None:
    j = Journal(tmp_path)
    j.append([(TABLE, [(0, row("s1", 1), 1)])])
    j.append([(TABLE, [(0, row("s2", 1), 1)])])
    path = tmp_path / f"{j.number}.log"
    path.write_bytes(path.read_bytes()[:-3])  # the second frame was never acknowledged
    assert [r["DeviceId"] for _, rows in Journal(tmp_path).replay() for _, r, _ in rows] == ["s1"]


def test_journal_drops_applied_files_and_keeps_newer_ones(tmp_path: Path) -> None:
    j = Journal(tmp_path)
    j.append([(TABLE, [(0, row("s1", 1), 1)])])
    upto = j.rotate()
    j.append([(TABLE, [(0, row("s2", 1), 1)])])  # staged after the apply began
    j.drop_through(upto)
    assert [r["DeviceId"] for _, rows in Journal(tmp_path).replay() for _, r, _ in rows] == ["s2"]


def test_journal_full_disk_fails_the_append_and_keeps_earlier_frames(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    j = Journal(tmp_path)
    j.append([(TABLE, [(0, row("s1", 1), 1)])])
    real = os.write

    def full(fd: int, data: Any) -> int:
        real(fd, bytes(data)[:10])  # part of the frame reaches the file, then no space
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", full)
    with pytest.raises(DiskFull, match="disk is full"):
        j.append([(TABLE, [(0, row("s2", 1), 1)])])
    monkeypatch.setattr(os, "write", real)
    j.append([(TABLE, [(0, row("s3", 1), 1)])])  # the cut-back file takes the next one
    got = [r["DeviceId"] for _, rows in Journal(tmp_path).replay() for _, r, _ in rows]
    assert got == ["s1", "s3"]


# -- the store's two paths -------------------------------------------------------------------
def test_new_rows_are_staged_and_read_your_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tsstore, "APPLY_EVERY_S", 3600.0)  # the applier waits: all staged
    store = TimestreamStore(tmp_path)
    t = int(time.time() * 1000)
    store.write(A, R, "db", "t", [rec(f"s{i}", i, t) for i in range(10)])
    assert store.row_count() == 10
    assert list((tmp_path / "journal").glob("*.log"))
    cur = store.cursor(A, R)
    assert cur.execute('SELECT count(*) FROM db."t"').fetchone() == (0,)  # not applied yet
    cur.close()
    store.flush()
    cur = store.cursor(A, R)
    assert cur.execute('SELECT count(*) FROM db."t"').fetchone() == (10,)
    cur.close()
    assert [p.stat().st_size for p in (tmp_path / "journal").glob("*.log")] == [0]
    store.close()


def test_a_repeat_of_a_staged_row_takes_the_exact_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tsstore, "APPLY_EVERY_S", 3600.0)
    store = TimestreamStore()
    t = int(time.time() * 1000)
    store.write(A, R, "db", "t", [rec("s1", 1, t), rec("s2", 2, t)])
    assert store.write(A, R, "db", "t", [rec("s1", 1, t)]) == 1  # identical: accepted once
    with pytest.raises(RejectedRecords) as e:
        store.write(A, R, "db", "t", [rec("s2", 5, t)])
    assert e.value.rejected[0]["ExistingVersion"] == 1
    assert store.row_count() == 2
    store.close()


def test_one_late_row_is_checked_and_the_rest_of_its_request_staged(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(tsstore, "APPLY_EVERY_S", 3600.0)
    store = TimestreamStore()
    t = int(time.time() * 1000)
    store.write(A, R, "db", "t", [rec("s1", 1, t)])
    staged, checked = (COUNTERS.get(f"timestream_rows_{k}") for k in ("staged", "checked"))
    batch = [rec("s2", 2, t), rec("s1", 9, t), rec("s3", 3, t), rec("s1", 1, t - 5)]
    with pytest.raises(RejectedRecords) as e:
        store.write(A, R, "db", "t", batch)
    assert [(r["RecordIndex"], r["ExistingVersion"]) for r in e.value.rejected] == [(1, 1)]
    assert e.value.written == 3
    assert COUNTERS.get("timestream_rows_staged") - staged == 3  # s2, s3, and s1's older row
    assert COUNTERS.get("timestream_rows_checked") - checked == 1  # s1 at t: maybe a repeat
    store.flush()
    cur = store.cursor(A, R)
    got = cur.execute('SELECT DeviceId, "measure_value::double" FROM db."t" ORDER BY 1, 2')
    assert got.fetchall() == [("s1", 1.0), ("s1", 1.0), ("s2", 2.0), ("s3", 3.0)]
    cur.close()
    store.close()


def test_a_failed_apply_keeps_the_rows_staged_and_journaled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tsstore, "APPLY_EVERY_S", 3600.0)
    store = TimestreamStore(tmp_path)
    t = int(time.time() * 1000)
    store.write(A, R, "db", "t", [rec("s1", 1, t)])

    def broken(*_: object) -> None:
        raise RuntimeError("insert failed")

    monkeypatch.setattr(tsstore, "insert_new", broken)
    with pytest.raises(RuntimeError):
        store.flush()
    assert sum(p.stat().st_size for p in (tmp_path / "journal").glob("*.log")) > 0
    monkeypatch.setattr(tsstore, "insert_new", tswrite.insert_new)
    store.flush()
    cur = store.cursor(A, R)
    assert cur.execute('SELECT DeviceId FROM db."t"').fetchall() == [("s1",)]
    cur.close()
    store.close()


CRASH = """
import os, signal, sys, time
from pathlib import Path
from iotpipe.local import tsstage, tsstore
from iotpipe.local.tsstore import TimestreamStore
where, when = Path(sys.argv[1]), sys.argv[2]
tsstore.APPLY_EVERY_S = 3600.0
if when == "applied-not-dropped":  # DuckDB committed, the journal not yet deleted
    tsstage.Journal.drop_through = lambda self, number: None
store = TimestreamStore(where)
t = int(sys.argv[3])
recs = [{"Dimensions": [{"Name": "DeviceId", "Value": f"s{i}"}], "MeasureName": "temperature",
         "MeasureValue": str(i), "MeasureValueType": "DOUBLE", "Time": str(t)}
        for i in range(100)]
store.write("123456789012", "us-east-1", "db", "t", recs)
if when == "applied-not-dropped":
    store.flush()
print("acknowledged", flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.parametrize("when", ["staged", "applied-not-dropped"])
def test_kill_9_while_staged_or_applying_keeps_every_row_once(tmp_path: Path, when: str) -> None:
    t = int(time.time() * 1000)
    done = subprocess.run(
        [sys.executable, "-c", CRASH, str(tmp_path), when, str(t)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == -signal.SIGKILL and "acknowledged" in done.stdout, done.stderr
    store = TimestreamStore(tmp_path)
    cur = store.cursor(A, R)
    assert cur.execute('SELECT count(*), count(DISTINCT DeviceId) FROM db."t"').fetchone() == (
        100,
        100,
    )
    cur.close()
    assert store.row_count() == 100
    assert store.write(A, R, "db", "t", [rec("s7", 7, t)]) == 1  # identical repeat: kept once
    with pytest.raises(RejectedRecords) as e:  # the replayed row still guards its key
        store.write(A, R, "db", "t", [rec("s7", 8, t)])
    assert e.value.rejected[0]["ExistingVersion"] == 1
    assert store.row_count() == 100
    store.close()


def test_a_full_disk_is_a_clear_503_and_nothing_is_acknowledged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from types import SimpleNamespace

    from iotpipe.local import motointernals, tspatch
    from iotpipe.local.runtime import RUNTIME

    store = TimestreamStore(tmp_path)
    monkeypatch.setattr(RUNTIME, "store", store)

    def full(*_: object, **__: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(tsstage.os, "fsync", full)
    table = SimpleNamespace(retention_properties={}, magnetic_store_write_properties={})
    call = SimpleNamespace(
        body=json.dumps(
            {
                "DatabaseName": "db",
                "TableName": "t",
                "Records": [rec("s1", 1, int(time.time() * 1000))],
            }
        ),
        timestreamwrite_backend=SimpleNamespace(describe_table=lambda db, t: table),
        current_account=A,
        region=R,
    )
    with pytest.raises(motointernals.Unavailable) as e:
        tspatch.write_records(call)
    assert e.value.code == 503 and "disk is full" in e.value.message
    monkeypatch.undo()
    assert store.row_count() == 0
    store.close()


def _visible(store: TimestreamStore, want: int, timeout: float = 10.0) -> int:
    """Rows DuckDB shows, once ``want`` are there or the (bounded) wait ends. A new
    cursor each time: each is one read-only transaction, a snapshot."""
    deadline = time.monotonic() + timeout
    while True:
        cur = store.cursor(A, R)
        (n,) = cur.execute('SELECT count(*) FROM db."t"').fetchone() or (0,)
        cur.close()
        if n >= want or time.monotonic() > deadline:
            return int(n)
        store._stop.wait(0.01)


def test_the_applier_works_without_the_store_lock(monkeypatch: pytest.MonkeyPatch) -> None:
    """Writers hold the lock to stage; an insert into DuckDB must not wait for them, nor
    they for it (every WriteRecords queued behind an apply before)."""
    monkeypatch.setattr(tsstore, "APPLY_EVERY_S", 0.01)
    store = TimestreamStore()
    store.create_table(*TABLE)
    t = int(time.time() * 1000)
    with store._lock:  # as a writer in the middle of staging
        store.write(A, R, "db", "t", [rec("s1", 1, t)])  # the lock is re-entrant
        assert _visible(store, 1) == 1
    store.close()


def test_a_schema_change_winning_the_race_only_delays_the_apply(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """DuckDB refuses the applier's COMMIT when a writer added a column meanwhile: the rows
    stay staged and go in on the next pass, without a warning."""
    monkeypatch.setattr(tsstore, "APPLY_EVERY_S", 3600.0)
    store = TimestreamStore()
    t = int(time.time() * 1000)
    store.write(A, R, "db", "t", [rec("s1", 1, t)])
    store.flush()
    calls: list[int] = []

    def conflicted(con: Any, table: Any, rows: Any) -> None:
        calls.append(len(rows))
        if len(calls) == 1:
            raise duckdb.TransactionException("Transaction conflict: table has been altered")
        tswrite.insert_new(con, table, rows)

    monkeypatch.setattr(tsstore, "insert_new", conflicted)
    monkeypatch.setattr(tsstore, "APPLY_EVERY_S", 0.01)
    store.write(A, R, "db", "t", [rec("s2", 2, t)])
    with store._wake:  # end the applier's long wait: from now on it passes every 0.01 s
        store._wake.notify()
    assert _visible(store, 2) == 2
    assert calls == [1, 1]  # refused once, applied on the next pass
    assert "not applied yet" not in caplog.text
    store.close()
