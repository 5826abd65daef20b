"""``query quality``: exact counts from CloudWatch metrics, a sample that consumes nothing.

moto in-process stands in for AWS: SQS holds the quarantined messages, CloudWatch the
metrics the function (EMF ``QuarantinedByReason``) and the IoT rule (``AWS/IoT``
``ParseError``/``Failure``) publish.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections import Counter
from types import SimpleNamespace
from typing import Any

import boto3
import pytest

from iotpipe import metrics
from iotpipe.failurequeue import peek, quarantine_report, sample
from lambda_handler import report

FN, RULE, QUEUE = "iotpipe-fn", "iotpipe_rule", "iotpipe-failures"


class CountingSqs:
    """An SQS client that counts ReceiveMessage calls (the work quality does)."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.receives = 0

    def receive_message(self, **kwargs: Any) -> Any:
        self.receives += 1
        if self.receives > 200:
            raise AssertionError("ReceiveMessage in a loop")
        return self._client.receive_message(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Any:
    from moto import mock_aws
    from moto.sqs.models import Message, Queue

    from iotpipe.local import sqspatch, sqsread

    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(k, "testing")
    # the embedded AWS's SQS (same answers as moto's, without its O(depth) clock reads)
    monkeypatch.setattr(Queue, "attributes", sqspatch.attributes)
    monkeypatch.setattr(Message, "visible", sqsread.visible)
    monkeypatch.setattr(Message, "delayed", sqsread.delayed)
    with mock_aws():
        clients = {s: boto3.client(s, region_name="us-east-1") for s in ("sqs", "cloudwatch")}
        clients["sqs"] = CountingSqs(clients["sqs"])
        clients["url"] = clients["sqs"].create_queue(QueueName=QUEUE)["QueueUrl"]
        yield clients


def deployment(aws: Any) -> Any:
    gateway = SimpleNamespace(client=lambda s: aws[s], local=True, endpoint_url=None)
    names = SimpleNamespace(queue=QUEUE, function=FN, rule=RULE)
    return SimpleNamespace(gateway=gateway, names=names)


def entry(i: int, reason: str) -> dict[str, Any]:
    return {
        "source": "iotpipe-handler",
        "reason": reason,
        "detail": f"temperature {900 + i} not in [-50, 150]",
        "deviceId": f"sensor{i % 7:03d}",
        "shardId": "shardId-000000000000",
        "sequenceNumber": str(10_000 + i),
    }


def seed(bodies: list[dict[str, Any]]) -> None:
    """Straight into moto's queue: its SendMessage is O(depth) per call, and seeding
    5,000 messages through it would time the emulator, not what is tested here."""
    from moto.sqs.models import Message, sqs_backends

    queue = sqs_backends["123456789012"]["us-east-1"].queues[QUEUE]
    for body in bodies:
        message = Message(str(uuid.uuid4()), json.dumps(body))
        message.mark_sent()
        queue.add_message(message)


def quarantine(aws: Any, bodies: list[dict[str, Any]]) -> None:
    """Put `bodies` on the queue and publish the metrics the function would (via EMF)."""
    seed(bodies)
    per_reason = Counter(b["reason"] for b in bodies if b.get("source") == "iotpipe-handler")
    emf = report.BatchSummary(reasons=dict(per_reason))
    for doc in report.reason_emf(emf, FN, 0):
        put_reason_count(aws, doc["Reason"], doc[report.REASON_METRIC])


def put_reason_count(aws: Any, reason: str, value: float, **extra: Any) -> None:
    """The metric datum CloudWatch makes of the function's per-reason EMF document."""
    dims = [{"Name": "FunctionName", "Value": FN}, {"Name": "Reason", "Value": reason}]
    aws["cloudwatch"].put_metric_data(
        Namespace=report.NAMESPACE,
        MetricData=[
            {"MetricName": report.REASON_METRIC, "Dimensions": dims, "Value": value, **extra}
        ],
    )


def depth(aws: Any) -> tuple[str, str]:
    attrs = aws["sqs"].get_queue_attributes(
        QueueUrl=aws["url"],
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return attrs["ApproximateNumberOfMessages"], attrs["ApproximateNumberOfMessagesNotVisible"]


def test_quality_over_5000_queued_messages_is_exact_bounded_and_consumes_nothing(aws: Any) -> None:
    reasons = ["out_of_range"] * 3000 + ["malformed_json"] * 1500 + ["not_a_number"] * 500
    quarantine(aws, [entry(i, r) for i, r in enumerate(reasons)])
    before = depth(aws)
    assert before == ("5000", "0")
    first = quarantine_report(deployment(aws), since="1h", device=None)
    assert [(r["reason"], r["count"]) for r in first.rows] == [
        ("out_of_range", 3000),
        ("malformed_json", 1500),
        ("not_a_number", 500),
    ]
    assert aws["sqs"].receives <= 5  # a bounded sample, not a walk through the queue
    assert depth(aws) == before  # nothing consumed, nothing hidden
    second = quarantine_report(deployment(aws), since="1h", device=None)
    assert second.rows == first.rows
    assert depth(aws) == before
    assert any("~5000 messages" in n for n in first.notes)


def test_rule_errors_and_batch_failures_have_their_rows(aws: Any) -> None:
    quarantine(aws, [entry(1, "out_of_range")])
    batch = {
        "requestContext": {"condition": "RetryAttemptsExhausted"},
        "KinesisBatchInfo": {
            "shardId": "shardId-000000000001",
            "startSequenceNumber": "1",
            "endSequenceNumber": "5",
            "batchSize": 5,
        },
    }
    quarantine(aws, [batch, batch])  # the same batch twice: one row, counted once
    cw = aws["cloudwatch"]
    rule = {"Name": "RuleName", "Value": RULE}
    cw.put_metric_data(
        Namespace="AWS/IoT",
        MetricData=[
            {"MetricName": "ParseError", "Dimensions": [rule], "Value": 1},
            {"MetricName": "ParseError", "Dimensions": [rule], "Value": 1},
            {
                "MetricName": "Failure",
                "Dimensions": [rule, {"Name": "ActionType", "Value": "Kinesis"}],
                "Value": 1,
            },
        ],
    )
    rows = {
        r["reason"]: r for r in quarantine_report(deployment(aws), since="1h", device=None).rows
    }
    assert {k: r["count"] for k, r in rows.items()} == {
        "out_of_range": 1,
        "rule_error": 3,
        "batch_failure": 1,
    }
    assert "2 not a JSON object (ParseError)" in rows["rule_error"]["example"]
    assert "1 Kinesis action failed" in rows["rule_error"]["example"]
    assert rows["batch_failure"]["example"] == "5 records of shardId-000000000001"
    assert rows["out_of_range"]["devices"] == "sensor001"


def test_the_window_counts_only_its_minutes(aws: Any) -> None:
    old = dt.datetime.now(dt.UTC) - dt.timedelta(hours=3)
    put_reason_count(aws, "empty", 4, Timestamp=old)
    dep = deployment(aws)
    assert quarantine_report(dep, since="1h", device=None).rows == []
    assert [r["count"] for r in quarantine_report(dep, since="4h", device=None).rows] == [4]
    win = metrics.window(60, now=lambda: dt.datetime(2026, 1, 1, 12, 0, 30, tzinfo=dt.UTC))
    assert (win.start.minute, win.end.minute, win.period) == (59, 1, 120)


def test_unknown_reasons_are_found_through_list_metrics(aws: Any) -> None:
    quarantine(aws, [entry(1, "a_reason_from_a_newer_function")])
    rows = quarantine_report(deployment(aws), since="1h", device=None).rows
    assert [(r["reason"], r["count"]) for r in rows] == [("a_reason_from_a_newer_function", 1)]


def test_device_counts_come_from_the_sample_and_say_so(aws: Any) -> None:
    quarantine(aws, [entry(i, "out_of_range") for i in [*range(8), 10]])  # sensor003: 3, 10
    result = quarantine_report(deployment(aws), since="1h", device="sensor003")
    assert [(r["reason"], r["count"]) for r in result.rows] == [("out_of_range", 2)]
    assert any("sample" in n and "per-device" in n for n in result.notes)


def test_sample_deduplicates_and_cannot_delete(aws: Any) -> None:
    quarantine(aws, [entry(1, "out_of_range"), entry(1, "out_of_range"), entry(2, "empty")])
    got = sample(aws["sqs"], aws["url"])
    assert sorted(q.fields["sequenceNumber"] for q in got) == ["10001", "10002"]
    assert all(q.receipt == "" for q in got)
    assert depth(aws) == ("3", "0")


def test_sample_reaches_past_the_first_ten_and_releases_what_it_held(aws: Any) -> None:
    """With VisibilityTimeout=0 a queue may answer every receive with the same ten (moto
    and the embedded AWS do: the oldest), so a reason that came later had no example."""
    quarantine(aws, [entry(i, "out_of_range") for i in range(45)] + [entry(45, "empty")])
    got = sample(aws["sqs"], aws["url"])
    assert len(got) == 46 and any(q.reason == "empty" for q in got)
    assert depth(aws) == ("46", "0")  # every held message is visible again at once


def test_peek_ends_when_the_queue_has_nothing_new(aws: Any) -> None:
    """The old peek re-received messages after their visibility ran out and never ended."""
    quarantine(aws, [entry(i, "empty") for i in range(25)])
    with peek(aws["sqs"], aws["url"], hold_s=0) as messages:  # hold 0: all stay visible
        assert len(messages) == 10  # the same ten again: stop, not loop until `limit`
    assert aws["sqs"].receives == 2


def test_a_device_missing_from_a_partial_sample_is_no_all_clear(aws: Any) -> None:
    quarantine(aws, [entry(i, "out_of_range") for i in range(60)])  # more than one sample
    result = quarantine_report(deployment(aws), since="1h", device="sensor-not-sampled")
    assert result.rows == []
    assert any("No message from sensor-not-sampled in a sample of 50" in n for n in result.notes)
    assert not any("every message was valid" in n for n in result.notes)
