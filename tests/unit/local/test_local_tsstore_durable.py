"""Timestream rows in a DuckDB file: reattach after restart, durable when acknowledged,
dedupe and Version rules enforced by DuckDB (no per-row index in Python)."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from ts_records import rec

from iotpipe.local import tswrite
from iotpipe.local.esmcheckpoints import Checkpoints
from iotpipe.local.tsquery import QueryEngine
from iotpipe.local.tsstore import RejectedRecords, TimestreamStore

A, R = "123456789012", "us-east-1"


def values(store: TimestreamStore) -> list[tuple[str | None, ...]]:
    out = QueryEngine(store).query(
        A, R, 'SELECT DeviceId, "measure_value::double" FROM db."t" ORDER BY 1, 2'
    )
    return [tuple(d.get("ScalarValue") for d in r["Data"]) for r in out["Rows"]]


def test_rows_and_schema_reattach_after_reopen(tmp_path: Path) -> None:
    t = int(time.time() * 1000)
    store = TimestreamStore(tmp_path)
    store.create_database(A, R, "empty-db")
    store.create_table(A, R, "db", "t")
    store.write(A, R, "db", "t", [rec("s1", 20, t), rec("s2", 21, t)])
    store.close()
    again = TimestreamStore(tmp_path)
    assert again.databases(A, R) == ["db", "empty-db"]
    assert again.tables(A, R, "db") == ["t"]
    assert again.schema(A, R, "db", "t").dimensions == {"DeviceId": "varchar"}
    assert again.row_count() == 2
    assert values(again) == [("s1", "20.0"), ("s2", "21.0")]
    again.drop_database(A, R, "empty-db")
    again.close()
    assert TimestreamStore(tmp_path).databases(A, R) == ["db"]


def test_dedupe_and_version_rules_hold_against_stored_rows(tmp_path: Path) -> None:
    assert not hasattr(tswrite.Table("c", "d", "n"), "index")  # no per-row Python index
    t = int(time.time() * 1000)
    store = TimestreamStore(tmp_path)
    store.write(A, R, "db", "t", [rec("s1", 20, t)])
    store.close()
    store = TimestreamStore(tmp_path)  # nothing of the first write is in Python now
    assert store.write(A, R, "db", "t", [rec("s1", 20, t)]) == 1  # identical: stored once
    with pytest.raises(RejectedRecords) as e:
        store.write(A, R, "db", "t", [rec("s1", 21, t), rec("s9", 1, t)])
    assert e.value.rejected == [
        {"RecordIndex": 0, "Reason": tswrite._CONFLICT, "ExistingVersion": 1}
    ]
    store.write(A, R, "db", "t", [rec("s1", 25, t, Version=2)])
    with pytest.raises(RejectedRecords) as e:  # same key twice in one request
        store.write(A, R, "db", "t", [rec("s5", 1, t), rec("s5", 2, t)])
    assert e.value.rejected[0]["RecordIndex"] == 1
    assert values(store) == [("s1", "25.0"), ("s5", "1.0"), ("s9", "1.0")]
    assert store.row_count() == 3


WRITER = """
import os, signal, sys, time
from pathlib import Path
from iotpipe.local.tsstore import TimestreamStore
store = TimestreamStore(Path(sys.argv[1]))
t = int(time.time() * 1000)
recs = [{"Dimensions": [{"Name": "DeviceId", "Value": f"s{i}"}], "MeasureName": "m",
         "MeasureValue": "1", "MeasureValueType": "DOUBLE", "Time": str(t)} for i in range(100)]
store.write("123456789012", "us-east-1", "db", "t", recs)
print("acknowledged", flush=True)
os.kill(os.getpid(), signal.SIGKILL)  # no close, no checkpoint
"""


def test_acknowledged_write_survives_kill_9(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", WRITER, str(tmp_path)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == -signal.SIGKILL and "acknowledged" in proc.stdout
    store = TimestreamStore(tmp_path)
    assert store.row_count() == 100
    assert len(values(store)) == 100


def test_checkpoints_survive_reopen(tmp_path: Path) -> None:
    cp = Checkpoints()
    cp.open(tmp_path)
    cp.set("uuid-1", "shardId-000000000001", 42)
    cp.set("uuid-1", "shardId-000000000002", 7)
    again = Checkpoints()  # nothing closed: what set() returned from is on disk
    again.open(tmp_path)
    assert again.starts == {
        ("uuid-1", "shardId-000000000001"): 42,
        ("uuid-1", "shardId-000000000002"): 7,
    }
    assert os.stat(tmp_path / Checkpoints.FILE).st_size > 0
