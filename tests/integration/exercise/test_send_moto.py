"""send-test's sender against a moto server: every message arrives exactly once."""

from __future__ import annotations

import random
import uuid
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest

from iotpipe.aws import Gateway
from iotpipe.config import DEFAULT_SENSORS
from iotpipe.fleet import Fleet, default_devices, timing
from iotpipe.poll import Backoff, Clock
from iotpipe.traffic import KinesisSink, Resend, deliver

pytestmark = pytest.mark.integration


def kinesis(endpoint: str) -> Any:
    return Gateway(region="us-east-1", endpoint_url=endpoint, local=True).client("kinesis")


def new_stream(client: Any, shards: int = 4) -> str:
    name = f"s-{uuid.uuid4().hex[:8]}"
    client.create_stream(StreamName=name, ShardCount=shards)
    client.get_waiter("stream_exists").wait(StreamName=name, WaiterConfig={"Delay": 0.1})
    return name


def read_all(client: Any, stream: str) -> list[tuple[str, bytes]]:
    """(partition key, data) of every record on every shard, via GetRecords."""
    out = []
    for shard in client.list_shards(StreamName=stream)["Shards"]:
        it = client.get_shard_iterator(
            StreamName=stream, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while it:
            resp = client.get_records(ShardIterator=it, Limit=10000)
            out += [(r["PartitionKey"], r["Data"]) for r in resp["Records"]]
            if not resp["Records"] or resp.get("MillisBehindLatest", 0) == 0:
                break
            it = resp.get("NextShardIterator")
    return out


def fleet_messages(count: int) -> list[Any]:
    start, step = timing(count, None, datetime.now(UTC))
    fleet = Fleet(default_devices(20, {}), DEFAULT_SENSORS, seed=5)
    return list(fleet.messages(count, start, step, invalid_ratio=0.03))


class Flaky:
    """Passes calls to a real client, but the first time an entry is seen, fails it with
    ProvisionedThroughputExceededException without sending it (as Kinesis would)."""

    def __init__(self, client: Any, ratio: float) -> None:
        self.client = client
        self.ratio = ratio
        self.rng = random.Random(3)
        self.seen: set[bytes] = set()
        self.injected = 0

    def put_records(self, StreamName: str, Records: list[dict[str, Any]]) -> dict[str, Any]:
        fail = set()
        for i, r in enumerate(Records):
            if r["Data"] not in self.seen and self.rng.random() < self.ratio:
                fail.add(i)
            self.seen.add(r["Data"])
        self.injected += len(fail)
        passed = [r for i, r in enumerate(Records) if i not in fail]
        real = iter(
            self.client.put_records(StreamName=StreamName, Records=passed)["Records"]
            if passed
            else []
        )
        records = [
            {"ErrorCode": "ProvisionedThroughputExceededException", "ErrorMessage": "injected"}
            if i in fail
            else next(real)
            for i in range(len(Records))
        ]
        return {"FailedRecordCount": len(fail), "Records": records}


def test_every_message_arrives_exactly_once_one_call_at_a_time(moto_endpoint: str) -> None:
    client = kinesis(moto_endpoint)
    stream = new_stream(client)
    messages = fleet_messages(1500)
    summary = deliver(messages, KinesisSink(client, stream), workers=1)
    assert (summary.sent, summary.failed, summary.batches) == (1500, 0, 3)
    assert Counter(read_all(client, stream)) == Counter((m.partition_key, m.data) for m in messages)


@pytest.mark.usefixtures("serialized_kinesis")
def test_every_message_arrives_exactly_once_concurrently(moto_endpoint: str) -> None:
    client = kinesis(moto_endpoint)
    stream = new_stream(client)
    messages = fleet_messages(2500)
    summary = deliver(messages, KinesisSink(client, stream), workers=4)
    assert (summary.sent, summary.failed, summary.messages) == (2500, 0, 2500)
    assert summary.invalid == sum(1 for m in messages if m.invalid) > 0
    stored = read_all(client, stream)
    assert Counter(stored) == Counter((m.partition_key, m.data) for m in messages)


@pytest.mark.usefixtures("serialized_kinesis")
def test_injected_partial_failures_are_resent_and_counted(moto_endpoint: str) -> None:
    client = kinesis(moto_endpoint)
    stream = new_stream(client, shards=2)
    messages = fleet_messages(1200)
    flaky = Flaky(client, ratio=0.25)
    backoff = Resend(
        backoff=Backoff(first=0.1, jitter="full", rng=random.Random(0)),
        clock=Clock(sleep=lambda s: None),
    )
    summary = deliver(messages, KinesisSink(flaky, stream, backoff), workers=3)
    assert flaky.injected > 200
    assert summary.retried == flaky.injected
    assert (summary.sent, summary.failed) == (1200, 0)
    assert Counter(read_all(client, stream)) == Counter((m.partition_key, m.data) for m in messages)
