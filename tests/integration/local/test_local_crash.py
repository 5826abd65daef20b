"""`kill -9` of the embedded AWS in the middle of a send, then start and drain.

The issue's promise, tested as a user would meet it: every PutRecords entry that got a
success response is there after `start` and is processed, so each acknowledged valid
message is exactly one Timestream row and each acknowledged invalid one is in the failure
queue (at least once: a redelivery repeats it with the same sequence number). The kill
lands after a chosen number of acknowledged records, while puts are still in flight.
"""

from __future__ import annotations

import json
import os
import signal
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import BotoCoreError, ClientError
from cli_process import run_iotpipe, user_env
from localaws_helpers import aws, wait_for

from iotpipe.local import lifecycle

pytestmark = pytest.mark.integration

CONFIG = """\
name: crash
target: local
event_source:
  batching_window_s: 0
"""
BATCH = 100
INVALID_EVERY = 20  # every 20th message is out of range: the failure queue's


def message(n: int, base: datetime) -> bytes:
    value = 999.0 if n % INVALID_EVERY == 0 else 20.0 + n % 7
    when = (base + timedelta(milliseconds=n)).isoformat().replace("+00:00", "Z")
    return json.dumps(
        {"deviceId": f"crash{n % 10}", "timestamp": when, "temperature": value}
    ).encode()


class Sender(threading.Thread):
    """PutRecords in batches until the endpoint dies; remembers what was acknowledged."""

    def __init__(self, endpoint: str, stream: str, base: datetime) -> None:
        super().__init__(daemon=True)
        self.kinesis = aws(endpoint, "kinesis")
        self.stream, self.base = stream, base
        self.acked: list[int] = []
        self.reached = threading.Event()
        self.target = 0

    def run(self) -> None:
        n = 0
        while True:
            batch = list(range(n, n + BATCH))
            n += BATCH
            records = [{"Data": message(i, self.base), "PartitionKey": f"k{i % 16}"} for i in batch]
            try:
                out = self.kinesis.put_records(StreamName=self.stream, Records=records)
            except (ClientError, BotoCoreError):
                return  # the emulator is gone: what was not acknowledged is not promised
            self.acked += [
                i for i, r in zip(batch, out["Records"], strict=True) if "ErrorCode" not in r
            ]
            if len(self.acked) >= self.target:
                self.reached.set()


@pytest.fixture
def deployed(tmp_path: Path) -> Iterator[tuple[Path, dict[str, str], dict[str, Any]]]:
    (tmp_path / "iotpipe.yaml").write_text(CONFIG)
    env = user_env(tmp_path / ".iotpipe")
    try:
        up = run_iotpipe(tmp_path, env, "up", "-o", "json", timeout=240)
        assert up.returncode == 0, up.stderr
        yield tmp_path, env, json.loads(up.stdout)["resources"]
    finally:
        lifecycle.stop(tmp_path / ".iotpipe")


def _rows(endpoint: str, database: str, table: str, until_ms: int) -> tuple[int, int]:
    """(rows, distinct (device, time) pairs) of the crash devices up to ``until_ms``."""
    sql = (
        "SELECT count(*), count(DISTINCT DeviceId || CAST(time AS VARCHAR)) "
        f'FROM "{database}"."{table}" '
        f"WHERE DeviceId LIKE 'crash%' AND to_milliseconds(time) <= {until_ms}"
    )
    try:
        rows = aws(endpoint, "timestream-query").query(QueryString=sql)["Rows"]
    except ClientError:
        return 0, 0  # no row yet: the table has no DeviceId column
    cells = rows[0]["Data"]
    return int(cells[0]["ScalarValue"]), int(cells[1]["ScalarValue"])


def _status(home: Path) -> Any:
    status = lifecycle.status(home) or {}
    return {k: status.get(k) for k in ("counts", "mappings", "held")}


def _quarantined(endpoint: str, url: str, seen: set[str]) -> set[str]:
    """Adds what the queue holds now to ``seen`` (received messages stay hidden 300 s)."""
    sqs = aws(endpoint, "sqs")
    while True:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=300)
        if not got.get("Messages"):
            return seen
        for m in got["Messages"]:
            body = json.loads(m["Body"])
            if str(body.get("deviceId", "")).startswith("crash"):
                seen.add(body["sequenceNumber"])


@pytest.mark.parametrize("kill_after", [300, 2000])
def test_every_acknowledged_record_is_processed_exactly_once_after_kill_9(deployed, kill_after):
    _, env, out = deployed
    home = Path(env["IOTPIPE_HOME"])
    state = lifecycle.read_state(home)
    assert state is not None
    sender = Sender(
        state["endpoint"], out["stream"]["name"], datetime.now(UTC) - timedelta(minutes=5)
    )
    sender.target = kill_after
    sender.start()
    assert sender.reached.wait(120), "the sender never reached its count"
    os.kill(state["pid"], signal.SIGKILL)  # puts still in flight
    sender.join(60)
    acked = sorted(set(sender.acked))
    assert len(acked) >= kill_after

    info = lifecycle.start(home)
    # The sender is sequential: every batch before the last acknowledged one was
    # acknowledged, so message numbers up to max(acked) are exactly the promised ones (the
    # batch in flight at the kill may have landed too: it is extra, never missing).
    last = acked[-1]
    assert acked == list(range(last + 1))
    valid = [n for n in acked if n % INVALID_EVERY]
    invalid = {n for n in acked if n % INVALID_EVERY == 0}
    db, table = out["timestream"]["database"], out["timestream"]["table"]
    until_ms = int(sender.base.timestamp() * 1000) + last

    def drained() -> tuple[int, int] | None:
        rows = _rows(info.endpoint, db, table, until_ms)
        return rows if rows[1] >= len(valid) else None

    try:
        rows, distinct = wait_for(drained, timeout=120, what=f"{len(valid)} acknowledged rows")
    except AssertionError as exc:
        found = _rows(info.endpoint, db, table, until_ms)
        raise AssertionError(f"{exc}: found {found}; emulator: {_status(home)}") from None
    assert rows == distinct == len(valid)  # each acknowledged valid message once
    # At least once, by sequence number; a batch's rows can be queryable a moment before
    # its quarantine sends finish, so the queue is polled until they are all there.
    seen: set[str] = set()
    wait_for(
        lambda: len(_quarantined(info.endpoint, out["queue"]["url"], seen)) >= len(invalid),
        timeout=60,
        what=f"{len(invalid)} quarantined messages",
    )
