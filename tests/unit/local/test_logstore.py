"""CloudWatch Logs events saved to disk and bounded per stream (iotpipe.local.logstore)."""

from __future__ import annotations

import errno
import itertools
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from durable_patches import installed
from moto import mock_aws

from iotpipe.local import logstore, snapshot
from iotpipe.local import motointernals as moto
from iotpipe.local import motointernals_data as data
from iotpipe.local.logstore import FILE, STORE

REGION = "us-east-1"
ACCOUNT = "123456789012"
_CLOCK = itertools.count(int(time.time() * 1000) - 600_000)  # in order, within 14 days


@pytest.fixture
def logs(tmp_path: Path) -> Iterator[Any]:
    with installed(logstore), mock_aws():
        STORE.open(tmp_path)
        try:
            yield boto3.client("logs", region_name=REGION)
        finally:
            STORE.close()


def _put(client: Any, group: str, stream: str, messages: list[str]) -> None:
    events = [{"timestamp": next(_CLOCK), "message": m} for m in messages]
    client.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events)


def _messages(client: Any, group: str, stream: str) -> list[str]:
    got = client.get_log_events(logGroupName=group, logStreamName=stream, startFromHead=True)
    return [e["message"] for e in got["events"]]


def _restart(tmp_path: Path) -> None:
    """A clean stop and start: saved, then moto's streams hold only placeholders."""
    STORE.close()
    for _, _, _, stream in data.log_streams():
        stream.events = [None] * len(stream.events)  # what the control snapshot brings back
    STORE.open(tmp_path)


def test_events_survive_a_clean_restart_with_unique_ids(logs, tmp_path) -> None:
    logs.create_log_group(logGroupName="/aws/lambda/f")
    logs.create_log_stream(logGroupName="/aws/lambda/f", logStreamName="s")
    _put(logs, "/aws/lambda/f", "s", ["one", "two"])
    moto.put_log_events(
        ACCOUNT,
        REGION,
        "/aws/lambda/g",
        "w",
        [{"timestamp": int(time.time() * 1000), "message": "own"}],
    )
    _restart(tmp_path)
    assert _messages(logs, "/aws/lambda/f", "s") == ["one", "two"]
    assert _messages(logs, "/aws/lambda/g", "w") == ["own"]
    _put(logs, "/aws/lambda/f", "s", ["three"])
    found = logs.filter_log_events(logGroupName="/aws/lambda/f")["events"]
    assert len({e["eventId"] for e in found}) == 3


def test_a_stream_keeps_its_newest_events_only(logs, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(logstore, "MAX_EVENTS", 5)
    logs.create_log_group(logGroupName="g")
    logs.create_log_stream(logGroupName="g", logStreamName="s")
    _put(logs, "g", "s", [f"m{i}" for i in range(4)])
    _put(logs, "g", "s", [f"m{i}" for i in range(4, 8)])
    assert _messages(logs, "g", "s") == ["m3", "m4", "m5", "m6", "m7"]
    _restart(tmp_path)
    assert _messages(logs, "g", "s") == ["m3", "m4", "m5", "m6", "m7"]


def test_a_crash_mid_save_leaves_the_previous_file(logs, tmp_path) -> None:
    logs.create_log_group(logGroupName="g")
    logs.create_log_stream(logGroupName="g", logStreamName="s")
    _put(logs, "g", "s", ["saved"])
    STORE.save()
    (tmp_path / f".{FILE}.tmp").write_bytes(b'{"format": 1, "streams": [{"acc')  # torn
    _put(logs, "g", "s", ["after the save"])
    STORE.path = None  # the process died: no save at close
    STORE.close()
    for _, _, _, stream in data.log_streams():
        stream.events = []
    STORE.open(tmp_path)
    assert _messages(logs, "g", "s") == ["saved"]


def test_a_full_disk_fails_the_save_and_keeps_the_file(logs, tmp_path, monkeypatch) -> None:
    logs.create_log_group(logGroupName="g")
    logs.create_log_stream(logGroupName="g", logStreamName="s")
    _put(logs, "g", "s", ["kept"])
    STORE.save()

    def full(path: Path, data: bytes) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(logstore, "write_durably", full)
    _put(logs, "g", "s", ["unsaved"])
    with pytest.raises(OSError, match="No space"):
        STORE.save()
    assert "No space" in STORE.last_error and STORE._dirty  # retried next period
    saved = json.loads((tmp_path / FILE).read_text())
    assert [e[2] for e in saved["streams"][0]["events"]] == ["kept"]
    monkeypatch.undo()


def test_the_control_snapshot_holds_no_log_messages(logs) -> None:
    logs.create_log_group(logGroupName="g")
    logs.create_log_stream(logGroupName="g", logStreamName="s")
    _put(logs, "g", "s", ["private-line-" * 50])
    streams = [s for _, _, _, s in data.log_streams()]
    assert b"private-line-" not in snapshot.dumps(streams)
