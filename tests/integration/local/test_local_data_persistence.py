"""The data planes of SQS, S3 and CloudWatch Logs survive a stop/start and a kill -9 of a
real emulator (restored into the queues, buckets and groups the control snapshot keeps)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from localaws_helpers import aws, wait_for

from iotpipe.local import lifecycle

pytestmark = pytest.mark.integration


def _home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    return home


def _queue_with_receives(endpoint: str) -> str:
    sqs = aws(endpoint, "sqs")
    url = sqs.create_queue(QueueName="failures")["QueueUrl"]
    for i in range(6):
        sqs.send_message(QueueUrl=url, MessageBody=f"m{i}")
    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=2, VisibilityTimeout=0)
    assert len(got["Messages"]) == 2
    sqs.delete_message(QueueUrl=url, ReceiptHandle=got["Messages"][0]["ReceiptHandle"])
    return str(url)


def _check_queue(endpoint: str) -> None:
    sqs = aws(endpoint, "sqs")
    url = sqs.get_queue_url(QueueName="failures")["QueueUrl"]
    back = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"])
    counts = {m["Body"]: m["Attributes"]["ApproximateReceiveCount"] for m in back["Messages"]}
    assert sorted(counts) == ["m1", "m2", "m3", "m4", "m5"]  # m0 was deleted
    assert sum(c == "2" for c in counts.values()) == 1  # the one received before, again


def test_messages_objects_and_log_events_survive_stop_and_start(tmp_path):
    home = _home(tmp_path)
    info = lifecycle.start(home)
    try:
        _queue_with_receives(info.endpoint)
        s3 = aws(info.endpoint, "s3")
        s3.create_bucket(Bucket="lake-bucket")
        s3.put_object(Bucket="lake-bucket", Key="raw/a.json", Body=b'{"a": 1}')
        logs = aws(info.endpoint, "logs")
        logs.create_log_group(logGroupName="/aws/lambda/f")
        logs.create_log_stream(logGroupName="/aws/lambda/f", logStreamName="w")
        now = int(time.time() * 1000)
        logs.put_log_events(
            logGroupName="/aws/lambda/f",
            logStreamName="w",
            logEvents=[{"timestamp": now + i, "message": f"line {i}"} for i in range(3)],
        )
        lifecycle.stop(home)
        again = lifecycle.start(home)
        _check_queue(again.endpoint)
        body = aws(again.endpoint, "s3").get_object(Bucket="lake-bucket", Key="raw/a.json")
        assert body["Body"].read() == b'{"a": 1}'
        events = aws(again.endpoint, "logs").get_log_events(
            logGroupName="/aws/lambda/f", logStreamName="w", startFromHead=True
        )["events"]
        assert [e["message"] for e in events] == ["line 0", "line 1", "line 2"]
    finally:
        lifecycle.stop(home)


def test_acknowledged_messages_and_objects_survive_kill_9(tmp_path):
    home = _home(tmp_path)
    info = lifecycle.start(home)
    try:
        _queue_with_receives(info.endpoint)
        s3 = aws(info.endpoint, "s3")
        s3.create_bucket(Bucket="lake-bucket")
        s3.put_object(Bucket="lake-bucket", Key="raw/b.json", Body=b"acked")
        os.kill(info.pid, signal.SIGKILL)  # right after the acknowledgements
        wait_for(lambda: not lifecycle._alive(info.pid), 5, "the emulator to die")
        again = lifecycle.start(home)
        _check_queue(again.endpoint)
        got = aws(again.endpoint, "s3").get_object(Bucket="lake-bucket", Key="raw/b.json")
        assert got["Body"].read() == b"acked"
    finally:
        lifecycle.stop(home)
