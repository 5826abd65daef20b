"""Kinesis records survive a clean stop/start and a kill -9 (every acknowledged put)."""

from __future__ import annotations

import json
import os
import signal
import threading
from pathlib import Path
from typing import Any

import pytest
from localaws_helpers import aws

from iotpipe.local import lifecycle

pytestmark = pytest.mark.integration


def read_all(endpoint: str, stream: str) -> list[bytes]:
    kinesis = aws(endpoint, "kinesis")
    out: list[bytes] = []
    for shard in kinesis.list_shards(StreamName=stream)["Shards"]:
        it = kinesis.get_shard_iterator(
            StreamName=stream, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while True:
            got = kinesis.get_records(ShardIterator=it, Limit=10000)
            out += [r["Data"] for r in got["Records"]]
            if not got["Records"]:
                break
            it = got["NextShardIterator"]
    return out


def create(endpoint: str, stream: str) -> Any:
    kinesis = aws(endpoint, "kinesis")
    kinesis.create_stream(StreamName=stream, ShardCount=2)
    kinesis.get_waiter("stream_exists").wait(StreamName=stream)
    return kinesis


def test_stop_start_keeps_every_record(tmp_path: Path) -> None:
    info = lifecycle.start(tmp_path, port=0)
    try:
        kinesis = create(info.endpoint, "kept")
        sent = [f"m{i}".encode() for i in range(1200)]
        for i in range(0, len(sent), 400):
            entries = [{"Data": d, "PartitionKey": d.decode()} for d in sent[i : i + 400]]
            assert kinesis.put_records(StreamName="kept", Records=entries)["FailedRecordCount"] == 0
        lifecycle.stop(tmp_path)
        assert list((tmp_path / "data" / "kinesis").rglob("*.seg"))
        info = lifecycle.start(tmp_path, port=0)
        assert sorted(read_all(info.endpoint, "kept")) == sorted(sent)
        aws(info.endpoint, "kinesis").delete_stream(StreamName="kept")
        assert not list((tmp_path / "data" / "kinesis").rglob("*.seg"))
    finally:
        lifecycle.stop(tmp_path)


def test_kill_9_keeps_every_acknowledged_put(tmp_path: Path) -> None:
    info = lifecycle.start(tmp_path, port=0)
    try:
        kinesis = create(info.endpoint, "crash")
        acked: list[bytes] = []
        stop = threading.Event()

        def loop() -> None:
            n = 0
            while not stop.is_set():
                batch = [f"k{n + j}".encode() for j in range(100)]
                n += 100
                try:
                    kinesis.put_records(
                        StreamName="crash",
                        Records=[{"Data": d, "PartitionKey": d.decode()} for d in batch],
                    )
                except Exception:
                    return
                acked.extend(batch)

        thread = threading.Thread(target=loop)
        thread.start()
        while len(acked) < 3000 and thread.is_alive():
            thread.join(0.05)
        pid = json.loads((tmp_path / "local.json").read_text())["pid"]
        os.kill(int(pid), signal.SIGKILL)
        stop.set()
        thread.join(30)
        info = lifecycle.start(tmp_path, port=0)
        found = set(read_all(info.endpoint, "crash"))
        assert len(acked) >= 3000
        assert set(acked) <= found
    finally:
        lifecycle.stop(tmp_path)
