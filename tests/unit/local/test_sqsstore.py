"""SQS messages on disk (iotpipe.local.sqsstore) and moto's SQS wired to it (sqsdurable)."""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from durable_patches import installed
from moto import mock_aws

from iotpipe.local import motointernals as moto
from iotpipe.local import motointernals_data as data
from iotpipe.local import snapshot, sqsdurable
from iotpipe.local.sqsstore import FILE, DiskFull, SqsStore

REGION = "us-east-1"


class Queue:
    def __init__(self, name: str) -> None:
        self.account_id, self.region, self.name = "123456789012", REGION, name


class Msg:
    def __init__(self, mid: str, body: str) -> None:
        self.id, self.body, self.approximate_receive_count = mid, body, 0


def _bodies(store: SqsStore, key: str = "123456789012/us-east-1/q") -> list[str]:
    return [store.payload(s["id"])["body"] for s in store.load().get(key, [])]


def test_saved_messages_come_back_in_send_order_after_a_restart(tmp_path: Path) -> None:
    store = SqsStore()
    store.open(tmp_path)
    q = Queue("q")
    first, second = Msg("a", "one"), Msg("b", "two")
    store.save(q, [first, second])
    first.approximate_receive_count = 3
    store.save(q, [first])  # an update keeps its place
    store.close()
    again = SqsStore()
    again.open(tmp_path)
    states = again.load()["123456789012/us-east-1/q"]
    assert _bodies(again) == ["one", "two"]
    assert states[0]["approximate_receive_count"] == 3
    again.forget(["b"])
    again.save(Queue("other"), [Msg("c", "three")])
    again.forget_queue(q)
    assert list(again.load()) == ["123456789012/us-east-1/other"]
    assert again.count() == 1


def test_a_crash_with_a_torn_wal_tail_keeps_every_committed_message(tmp_path: Path) -> None:
    live, crashed = tmp_path / "live", tmp_path / "crashed"
    live.mkdir()
    store = SqsStore()
    store.open(live)
    store.save(Queue("q"), [Msg(str(i), f"m{i}") for i in range(50)])
    shutil.copytree(live, crashed)  # the files as a kill -9 leaves them (no checkpoint)
    wal = crashed / (FILE + "-wal")
    assert wal.stat().st_size > 0
    with open(wal, "ab") as fh:
        fh.write(b"\x37\x7f\x06\x82" + b"torn frame" * 100)  # half a frame written at the crash
    after = SqsStore()
    after.open(crashed)
    assert _bodies(after) == [f"m{i}" for i in range(50)]
    store.close()


class FullDisk:
    """A connection whose commits fail as SQLite's do on a full disk."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def execute(self, sql: str, *args: Any) -> Any:
        if sql == "COMMIT":
            raise sqlite3.OperationalError("database or disk is full")
        return self.db.execute(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.db, name)


def test_a_full_disk_is_a_clear_error_and_loses_nothing_committed(tmp_path: Path) -> None:
    store = SqsStore()
    store.open(tmp_path)
    store.save(Queue("q"), [Msg("a", "kept")])
    real = store._db
    assert real is not None
    store._db = FullDisk(real)  # type: ignore[assignment]
    with pytest.raises(DiskFull, match="disk is full"):
        store.save(Queue("q"), [Msg("b", "refused")])
    store._db = real
    store.close()
    again = SqsStore()
    again.open(tmp_path)
    assert _bodies(again) == ["kept"]


# -- moto's SQS wired to the store ---------------------------------------------------------
@pytest.fixture
def sqs(tmp_path: Path) -> Iterator[Any]:
    with installed(sqsdurable), mock_aws():
        sqsdurable.STORE.open(tmp_path)
        try:
            yield boto3.client("sqs", region_name=REGION)
        finally:
            sqsdurable.STORE.close()


def _restart(tmp_path: Path) -> None:
    """What a restart does to the messages: the snapshot brings placeholders, the store
    the messages."""
    sqsdurable.STORE.close()
    for queue in moto.all_queues():
        data.set_messages(queue, [])
    sqsdurable.STORE.open(tmp_path)
    sqsdurable.restore()


def test_messages_with_receive_counts_and_deletes_survive_a_restart(sqs, tmp_path) -> None:
    url = sqs.create_queue(QueueName="failures")["QueueUrl"]
    for i in range(5):
        sqs.send_message(
            QueueUrl=url,
            MessageBody=f"m{i}",
            MessageAttributes={"n": {"DataType": "Number", "StringValue": str(i)}},
        )
    sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": "x", "MessageBody": "batched"}])
    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=2, VisibilityTimeout=0)
    sqs.delete_message(QueueUrl=url, ReceiptHandle=got["Messages"][0]["ReceiptHandle"])
    _restart(tmp_path)
    back = sqs.receive_message(
        QueueUrl=url,
        MaxNumberOfMessages=10,
        AttributeNames=["All"],
        MessageAttributeNames=["All"],
    )["Messages"]
    assert sorted(m["Body"] for m in back) == ["batched", "m1", "m2", "m3", "m4"]
    counts = {m["Body"]: m["Attributes"]["ApproximateReceiveCount"] for m in back}
    assert counts["m1"] == "2" and counts["m2"] == "1"
    by_body = {m["Body"]: m for m in back}
    assert by_body["m3"]["MessageAttributes"]["n"]["StringValue"] == "3"
    _restart(tmp_path)  # the receive just now is on disk too: all in flight
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attrs["ApproximateNumberOfMessagesNotVisible"] == "5"
    sqs.purge_queue(QueueUrl=url)
    assert sqsdurable.STORE.count() == 0


def test_deleting_a_queue_deletes_its_messages(sqs) -> None:
    url = sqs.create_queue(QueueName="gone")["QueueUrl"]
    keep = sqs.create_queue(QueueName="kept")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="x")
    sqs.send_message(QueueUrl=keep, MessageBody="y")
    sqs.delete_queue(QueueUrl=url)
    assert sqsdurable.STORE.count() == 1


def test_a_send_on_a_full_disk_fails_and_is_not_queued(sqs, tmp_path) -> None:
    url = sqs.create_queue(QueueName="q")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="kept")
    real = sqsdurable.STORE._db
    assert real is not None
    sqsdurable.STORE._db = FullDisk(real)  # type: ignore[assignment]
    with pytest.raises(ClientError, match="disk is full") as caught:
        sqs.send_message(QueueUrl=url, MessageBody="refused")
    sqsdurable.STORE._db = real
    assert caught.value.response["Error"]["Code"] == "ServiceUnavailable"
    _restart(tmp_path)
    bodies = [
        m["Body"] for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    ]
    assert bodies == ["kept"]


def test_the_control_snapshot_holds_no_message_bodies(sqs) -> None:
    url = sqs.create_queue(QueueName="q")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="secret-body-" * 100)
    assert b"secret-body-" not in snapshot.dumps(moto.all_queues())


def test_committed_bodies_and_attributes_leave_the_heap_and_still_read_back(sqs, tmp_path) -> None:
    """A deep failure queue held every body in moto's memory (~1.4 KB of RSS a message)."""
    url = sqs.create_queue(QueueName="q")["QueueUrl"]
    attrs = {"reason": {"DataType": "String", "StringValue": "out_of_range"}}
    sent = sqs.send_message(QueueUrl=url, MessageBody="body-0", MessageAttributes=attrs)
    sqs.send_message_batch(
        QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": f"body-{i}"} for i in (1, 2)]
    )
    (queue,) = moto.all_queues()
    held = [vars(m) for m in data.messages(queue)]
    assert len(held) == 3 and not any("body" in h or "message_attributes" in h for h in held)
    assert sent["MD5OfMessageBody"] == hashlib.md5(b"body-0").hexdigest()
    got = sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], VisibilityTimeout=0
    )["Messages"]
    assert sorted(m["Body"] for m in got) == ["body-0", "body-1", "body-2"]
    assert next(m for m in got if m["Body"] == "body-0")["MessageAttributes"] == attrs
    assert not any("body" in vars(m) for m in data.messages(queue))  # the receive's save too
    _restart(tmp_path)
    back = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert sorted(m["Body"] for m in back) == ["body-0", "body-1", "body-2"]


def test_rows_saved_before_payloads_had_a_column_keep_their_bodies(tmp_path: Path) -> None:
    """A messages.sqlite of the previous version: the body inside the state, no column."""
    import pickle

    db = sqlite3.connect(tmp_path / FILE)
    db.execute("CREATE TABLE messages (seq INTEGER PRIMARY KEY AUTOINCREMENT, "
               "id TEXT NOT NULL UNIQUE, queue TEXT NOT NULL, state BLOB NOT NULL)")  # fmt: skip
    state = {"id": "old", "body": "from before", "approximate_receive_count": 1}
    db.execute("INSERT INTO messages(id, queue, state) VALUES (?, ?, ?)",
               ("old", "123456789012/us-east-1/q", pickle.dumps(state)))  # fmt: skip
    db.commit()
    db.close()
    store = SqsStore()
    store.open(tmp_path)
    assert _bodies(store) == ["from before"]
    msg = Msg("old", "ignored")
    del msg.body  # as a restored, received message: the body is not in memory
    msg.approximate_receive_count = 2
    store.save(Queue("q"), [msg])  # an update keeps the body it had
    assert _bodies(store) == ["from before"]
    store.close()


def test_releasing_a_sampled_message_does_not_scan_the_whole_queue(
    sqs, tmp_path, monkeypatch
) -> None:
    """`query quality` releases the messages it sampled (ChangeMessageVisibility to 0);
    saving each by scanning every queued message took 3 s at 100,000 quarantined."""
    url = sqs.create_queue(QueueName="q")["QueueUrl"]
    for start in range(0, 500, 10):
        entries = [{"Id": str(i), "MessageBody": f"m{i}"} for i in range(start, start + 10)]
        sqs.send_message_batch(QueueUrl=url, Entries=entries)
    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, VisibilityTimeout=30)
    handle = got["Messages"][0]["ReceiptHandle"]
    calls = []
    real = data.Message.had_receipt_handle
    monkeypatch.setattr(
        data.Message, "had_receipt_handle", lambda self, h: calls.append(1) or real(self, h)
    )
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=handle, VisibilityTimeout=0)
    assert len(calls) <= 4  # moto's own lookup and ours, both stopping at the first message
    _restart(tmp_path)  # the release is on disk
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attrs["ApproximateNumberOfMessages"] == "500"
