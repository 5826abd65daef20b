"""PutRecords batching, resending only the failed entries, pacing and IoT publish, offline."""

from __future__ import annotations

import random
import threading
from collections import Counter
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from botocore.stub import Stubber

from iotpipe.aws import Gateway
from iotpipe.fleet import Message
from iotpipe.poll import Backoff, Clock
from iotpipe.traffic import (
    MAX_REQUEST_BYTES,
    BatchCounts,
    IotSink,
    KinesisSink,
    Pacer,
    Resend,
    SendSummary,
    batches,
    deliver,
    iot_data_client,
    topic_for,
)


def msg(i: int, size: int = 10, device: str | None = None, invalid: str | None = None) -> Message:
    return Message(device or f"d{i % 7}", str(i).encode().ljust(size, b"."), "", invalid=invalid)


def no_sleep_backoff(sleeps: list[float] | None = None, attempts: int = 8) -> Resend:
    return Resend(
        attempts=attempts,
        backoff=Backoff(first=0.1, factor=2.0, cap=1.0, jitter="full", rng=random.Random(0)),
        clock=Clock(sleep=(sleeps.append if sleeps is not None else lambda s: None)),
    )


def test_batches_respect_count_and_bytes() -> None:
    counted = list(batches((msg(i) for i in range(1201)), 500, MAX_REQUEST_BYTES))
    assert [len(b) for b in counted] == [500, 500, 201]
    big = [msg(i, size=1_100_000) for i in range(12)]
    sized = list(batches(big, 500, MAX_REQUEST_BYTES))
    assert [len(b) for b in sized] == [4, 4, 4]
    assert all(
        sum(len(m.data) + len(m.partition_key) for m in b) <= MAX_REQUEST_BYTES for b in sized
    )
    assert [m for b in sized for m in b] == big


def kinesis_stubbed() -> tuple[Any, Stubber]:
    client = boto3.client(
        "kinesis", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    return client, Stubber(client)


def ok(seq: int = 1) -> dict[str, str]:
    return {"SequenceNumber": str(seq), "ShardId": "shardId-000000000000"}


def bad(code: str = "ProvisionedThroughputExceededException") -> dict[str, str]:
    return {"ErrorCode": code, "ErrorMessage": "slow down"}


def response(records: list[dict[str, str]]) -> dict[str, Any]:
    """The Stubber's model forbids FailedRecordCount 0 (min 1), so it is left out then."""
    failed = sum(1 for r in records if "ErrorCode" in r)
    return {"Records": records, **({"FailedRecordCount": failed} if failed else {})}


def test_partial_failures_are_resent_alone_with_backoff_and_counted() -> None:
    client, stub = kinesis_stubbed()
    messages = [msg(i) for i in range(5)]

    def expect(ms: list[Message], records: list[dict[str, str]]) -> None:
        stub.add_response(
            "put_records",
            response(records),
            {
                "StreamName": "s",
                "Records": [{"Data": m.data, "PartitionKey": m.partition_key} for m in ms],
            },
        )

    expect(messages, [ok(), bad(), ok(), bad("InternalFailure"), ok()])
    expect([messages[1], messages[3]], [ok(), bad()])
    expect([messages[3]], [ok()])
    sleeps: list[float] = []
    with stub:
        summary = deliver(messages, KinesisSink(client, "s", no_sleep_backoff(sleeps)), workers=1)
    stub.assert_no_pending_responses()
    assert (summary.sent, summary.failed, summary.retried) == (5, 0, 3)
    assert len(sleeps) == 2 and 0 <= sleeps[0] <= 0.1 and 0 <= sleeps[1] <= 0.2


def test_entries_still_failing_after_all_attempts_are_failed_with_their_code() -> None:
    client, stub = kinesis_stubbed()
    messages = [msg(0), msg(1)]
    stub.add_response("put_records", response([ok(), bad()]))
    for _ in range(2):
        stub.add_response("put_records", response([bad()]))
    with stub:
        summary = deliver(messages, KinesisSink(client, "s", no_sleep_backoff(attempts=3)))
    assert (summary.sent, summary.failed, summary.retried) == (1, 1, 2)
    assert summary.errors == Counter({"ProvisionedThroughputExceededException": 1})


def test_retryable_call_error_retries_the_batch_other_errors_stop_the_run() -> None:
    client, stub = kinesis_stubbed()
    stub.add_client_error("put_records", "ProvisionedThroughputExceededException")
    stub.add_response("put_records", response([ok(), ok()]))
    with stub:
        summary = deliver([msg(0), msg(1)], KinesisSink(client, "s", no_sleep_backoff()))
    assert (summary.sent, summary.retried) == (2, 2)
    stub.add_client_error("put_records", "ResourceNotFoundException", "Stream s not found")
    with stub, pytest.raises(ClientError):
        deliver([msg(0)], KinesisSink(client, "s", no_sleep_backoff()))


class FakeKinesis:
    """Fails each entry once with a given probability; records what was stored."""

    def __init__(self, fail: float = 0.3) -> None:
        self.rng = random.Random(1)
        self.fail = fail
        self.stored: list[bytes] = []
        self.lock = threading.Lock()
        self.concurrent = 0
        self.peak = 0
        self.seen: set[bytes] = set()

    def put_records(self, StreamName: str, Records: list[dict[str, Any]]) -> dict[str, Any]:
        with self.lock:
            self.concurrent += 1
            self.peak = max(self.peak, self.concurrent)
        out = []
        with self.lock:
            for r in Records:
                if r["Data"] not in self.seen and self.rng.random() < self.fail:
                    self.seen.add(r["Data"])
                    out.append(bad())
                else:
                    self.stored.append(r["Data"])
                    out.append(ok())
            self.concurrent -= 1
        return {"FailedRecordCount": sum("ErrorCode" in r for r in out), "Records": out}


def test_concurrent_sending_stores_every_message_exactly_once() -> None:
    fake = FakeKinesis()
    messages = [msg(i, invalid="x" if i % 10 == 0 else None) for i in range(5000)]
    done: list[int] = []
    summary = deliver(
        messages,
        KinesisSink(fake, "s", no_sleep_backoff()),
        workers=4,
        on_batch=lambda o: done.append(o.sent),
    )
    assert sorted(fake.stored) == sorted(m.data for m in messages)
    assert summary.sent == 5000 and summary.failed == 0
    assert summary.retried == len(fake.seen) > 0
    assert summary.invalid == 500 and summary.messages == 5000 and sum(done) == 5000
    assert summary.batches == 10


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_pacer_spaces_messages_on_an_injected_clock() -> None:
    fc = FakeClock()
    times = [fc.now for _ in Pacer(10, fc.clock, fc.sleep).pace(msg(i) for i in range(21))]
    assert times[0] == 100.0 and times[-1] == pytest.approx(102.0)
    assert Pacer(None, fc.clock, fc.sleep).pace([msg(1)]) is not None


def test_paced_delivery_uses_small_batches_and_takes_simulated_time() -> None:
    fc = FakeClock()
    fake = FakeKinesis(fail=0)
    summary = deliver(
        (msg(i) for i in range(100)),
        KinesisSink(fake, "s"),
        rate=50,
        clock=fc.clock,
        sleep=fc.sleep,
    )
    assert summary.sent == 100 and summary.batches == 10
    assert summary.seconds == pytest.approx(1.98)


class FakeIot:
    def __init__(self, throttle_first: int = 2) -> None:
        self.calls: list[tuple[str, bytes]] = []
        self.throttle = throttle_first

    def publish(self, topic: str, qos: int, payload: bytes) -> None:
        if self.throttle:
            self.throttle -= 1
            raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "x"}}, "Publish")
        self.calls.append((topic, payload))


def test_iot_publish_goes_to_the_device_topic_and_retries_throttling() -> None:
    fake = FakeIot()
    summary = deliver(
        [msg(1, device="sensor001"), msg(2, device="sensor002")],
        IotSink(fake, "iot/sensors/+/data", no_sleep_backoff()),
        workers=1,
    )
    assert (summary.sent, summary.retried, summary.failed) == (2, 2, 0)
    assert [t for t, _ in fake.calls] == [
        "iot/sensors/sensor001/data",
        "iot/sensors/sensor002/data",
    ]
    assert topic_for("fleet/#", "x1") == "fleet/x1"


def test_iot_throttling_that_outlasts_every_attempt_fails_the_message_once() -> None:
    sleeps: list[float] = []
    fake = FakeIot(throttle_first=10)
    summary = deliver(
        [msg(1, device="sensor001"), msg(2, device="sensor002")],
        IotSink(fake, "iot/sensors/+/data", no_sleep_backoff(sleeps, attempts=3)),
        workers=1,
    )
    assert (summary.sent, summary.failed, summary.retried) == (0, 2, 4)
    assert summary.errors == Counter({"ThrottlingException": 2})
    assert len(sleeps) == 4 and all(0 <= s <= 0.2 for s in sleeps)
    assert fake.throttle == 4 and fake.calls == []


def test_default_resend_spreads_throttled_senders_with_full_jitter() -> None:
    pauses = [Resend().backoff.delay(3) for _ in range(200)]
    assert min(pauses) < 0.2 and max(pauses) <= 0.8  # uniform(0, 0.1 * 2**3), not from half


def test_summary_dict_shape() -> None:
    summary = deliver([msg(1, invalid="garbled")], KinesisSink(FakeKinesis(fail=0), "s"))
    d = summary.as_dict()
    assert {k: d[k] for k in ("messages", "sent", "invalid_injected", "retried", "failed")} == {
        "messages": 1,
        "sent": 1,
        "invalid_injected": 1,
        "retried": 0,
        "failed": 0,
    }


def test_iot_data_client_uses_the_accounts_ats_endpoint_on_aws() -> None:
    gateway = Gateway(region="eu-west-1")
    iot = boto3.client(
        "iot", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    stub = Stubber(iot)
    stub.add_response(
        "describe_endpoint",
        {"endpointAddress": "abc123-ats.iot.eu-west-1.amazonaws.com"},
        {"endpointType": "iot:Data-ATS"},
    )
    gateway._clients["iot"] = iot
    hooked: list[Any] = []
    gateway.hooks.append(hooked.append)
    with stub:
        client = iot_data_client(gateway)
    assert client.meta.endpoint_url == "https://abc123-ats.iot.eu-west-1.amazonaws.com"
    assert hooked == [client]
    local = Gateway(region="us-east-1", endpoint_url="http://127.0.0.1:1", local=True)
    assert iot_data_client(local).meta.endpoint_url == "http://127.0.0.1:1"


def test_a_run_that_stops_keeps_its_counts_in_the_callers_summary() -> None:
    """Batch 1 is acknowledged, batch 2 raises (the endpoint is gone), batch 3 never starts:
    the caller's summary says 500 sent, 500 unconfirmed, and nothing about batch 3."""

    class Sink:
        max_records, max_bytes = 500, MAX_REQUEST_BYTES
        calls = 0

        def send(self, batch: list[Message]) -> BatchCounts:
            self.calls += 1
            if self.calls == 2:
                raise EndpointConnectionError(endpoint_url="http://127.0.0.1:1")
            return BatchCounts(sent=len(batch))

    summary = SendSummary()
    sink = Sink()
    with pytest.raises(EndpointConnectionError):
        deliver((msg(i) for i in range(1500)), sink, workers=1, summary=summary)
    assert (summary.sent, summary.failed, summary.submitted) == (500, 0, 1000)
    assert summary.unconfirmed == 500 and sink.calls == 2
