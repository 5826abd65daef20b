"""One delivery stream's rounds (`firehose.Delivery.step`), on moto in process, with a
scripted processor and an injected clock: nothing is lost when S3 fails, the checkpoint
moves only after the objects are written, processor failures become error records."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from fake_clock import FakeClock
from moto import mock_aws

from iotpipe import lakeschema
from iotpipe.local import firehose
from iotpipe.local import motointernals_lake as lake
from iotpipe.local.functions import InvokeResult

ACCOUNT, REGION, BUCKET = "123456789012", "us-east-1", "lake-bucket"
COLUMNS = [("time", "timestamp"), ("device_id", "string"), ("temperature", "double")]
TRUST = json.dumps({"Version": "2012-10-17", "Statement": []})


class ScriptedPool:
    """Stands in for FunctionPool: each invoke answers with `reply(event)`."""

    def __init__(self, reply: Callable[[dict[str, Any]], InvokeResult]) -> None:
        self.reply = reply
        self.events: list[dict[str, Any]] = []

    def invoke(self, fn: Any, event: dict[str, Any]) -> InvokeResult:
        self.events.append(event)
        return self.reply(event)


def transform(event: dict[str, Any]) -> InvokeResult:
    """Ok rows partitioned by the message's hour; ``bad`` -> ProcessingFailed."""
    out = []
    for r in event["records"]:
        m = json.loads(base64.b64decode(r["data"]))
        if m.get("bad"):
            out.append({"recordId": r["recordId"], "result": "ProcessingFailed", "data": r["data"]})
            continue
        row = {"time": m["time"], "device_id": m["id"], "temperature": 1.0}
        keys = {"dt": m["time"][:10], "hour": m["time"][11:13]}
        data = base64.b64encode(json.dumps(row).encode()).decode()
        out.append({"recordId": r["recordId"], "result": "Ok", "data": data,
                    "metadata": {"partitionKeys": keys}})  # fmt: skip
    return InvokeResult(True, {"records": out})


@pytest.fixture
def aws() -> Iterator[dict[str, Any]]:
    with mock_aws():
        kw = {"region_name": REGION}
        k = boto3.client("kinesis", **kw)
        k.create_stream(StreamName="src", ShardCount=1)
        stream_arn = k.describe_stream_summary(StreamName="src")["StreamDescriptionSummary"][
            "StreamARN"
        ]
        boto3.client("s3", **kw).create_bucket(Bucket=BUCKET)
        glue = boto3.client("glue", **kw)
        glue.create_database(DatabaseInput={"Name": "db"})
        columns = [{"Name": n, "Type": t} for n, t in COLUMNS]
        glue.create_table(
            DatabaseName="db",
            TableInput={"Name": "telemetry", "StorageDescriptor": {"Columns": columns}},
        )
        role = boto3.client("iam", **kw).create_role(RoleName="r", AssumeRolePolicyDocument=TRUST)
        fn_arn = boto3.client("lambda", **kw).create_function(
            FunctionName="transform",
            Runtime="python3.13",
            Role=role["Role"]["Arn"],
            Handler="fn.handler",
            Code={"ZipFile": b"PK\x05\x06" + b"\x00" * 18},  # an empty zip: never run here
        )["FunctionArn"]
        yield {"stream_arn": stream_arn, "fn_arn": fn_arn, "role": role["Role"]["Arn"]}


def make_delivery(aws: dict[str, Any], pool: ScriptedPool, clock: FakeClock, retries: str = "1"):
    fh = boto3.client("firehose", region_name=REGION)
    params = {"LambdaArn": aws["fn_arn"], "NumberOfRetries": retries}
    fh.create_delivery_stream(
        DeliveryStreamName="ds",
        DeliveryStreamType="KinesisStreamAsSource",
        KinesisStreamSourceConfiguration={"KinesisStreamARN": aws["stream_arn"], "RoleARN": "r"},
        ExtendedS3DestinationConfiguration={
            "RoleARN": aws["role"],
            "BucketARN": f"arn:aws:s3:::{BUCKET}",
            "Prefix": lakeschema.FIREHOSE_PREFIX,
            "ErrorOutputPrefix": lakeschema.FIREHOSE_ERROR_PREFIX,
            "BufferingHints": {"IntervalInSeconds": 60, "SizeInMBs": 64},
            "ProcessingConfiguration": {
                "Enabled": True,
                "Processors": [
                    {
                        "Type": "Lambda",
                        "Parameters": [
                            {"ParameterName": k, "ParameterValue": v} for k, v in params.items()
                        ],
                    }
                ],
            },
            "DynamicPartitioningConfiguration": {"Enabled": True},
            "DataFormatConversionConfiguration": {
                "Enabled": True,
                "SchemaConfiguration": {"DatabaseName": "db", "TableName": "telemetry"},
            },
        },
    )
    ds = lake.delivery_stream(ACCOUNT, REGION, "ds")
    manager = firehose.FirehoseManager(pool)  # type: ignore[arg-type]
    return firehose.Delivery(manager, ACCOUNT, REGION, ds, manager._latest(ds), clock.now)


def put(messages: list[dict[str, Any]]) -> None:
    boto3.client("kinesis", region_name=REGION).put_records(
        StreamName="src",
        Records=[{"Data": json.dumps(m).encode(), "PartitionKey": "k"} for m in messages],
    )


def objects(prefix: str) -> dict[str, bytes]:
    keys = lake.list_keys(ACCOUNT, REGION, BUCKET, prefix)
    return {k: lake.get_object(ACCOUNT, REGION, BUCKET, k) or b"" for k in keys}


def msg(i: int, hour: int = 7, **extra: Any) -> dict[str, Any]:
    return {"id": f"d{i}", "time": f"2025-12-01 {hour:02d}:00:00.000", **extra}


def test_it_starts_at_latest_and_flushes_when_the_interval_elapses(aws):
    put([msg(0)])  # before the delivery stream: not for the lake
    clock, pool = FakeClock(), ScriptedPool(transform)
    d = make_delivery(aws, pool, clock)
    put([msg(1), msg(2, hour=8)])
    assert d.step() == 0  # read: look again at once
    assert d.step() == 60  # nothing new, buffered, not due
    assert d.stats["received"] == 2 and not objects("")
    clock.sleep(59.9)
    assert d.step() == pytest.approx(0.1)
    clock.sleep(0.1)
    assert d.step() == 0
    assert sorted(k.rsplit("/", 1)[0] for k in objects("data/")) == [
        "data/dt=2025-12-01/hour=07",
        "data/dt=2025-12-01/hour=08",
    ]
    assert [r["kinesisRecordMetadata"]["sequenceNumber"] for r in pool.events[0]["records"]] == [
        "2",
        "3",
    ]
    assert d.checkpoint == {"shardId-000000000000": 3}
    assert (d.stats["delivered_rows"], d.stats["objects"], d.stats["flushes"]) == (2, 2, 1)


def test_a_failed_write_keeps_the_flush_and_the_checkpoint_until_it_succeeds(aws):
    clock, pool = FakeClock(), ScriptedPool(transform)
    d = make_delivery(aws, pool, clock)
    put([msg(1), msg(2, bad=True)])
    d.step()
    s3 = boto3.client("s3", region_name=REGION)
    s3.delete_bucket(Bucket=BUCKET)
    clock.sleep(60)
    with pytest.raises(Exception, match="bucket"):
        d.step()
    assert d.checkpoint == {"shardId-000000000000": 0} and d.outbox is not None
    with pytest.raises(Exception, match="bucket"):
        d.step()  # retried: the same flush, the processor not run again
    s3.create_bucket(Bucket=BUCKET)
    assert d.step() == 0
    assert len(pool.events) == 1
    assert d.checkpoint == {"shardId-000000000000": 2} and d.outbox is None
    assert len(objects("data/")) == 1 and len(objects("errors/processing-failed/")) == 1
    assert (d.stats["processing_failed"], d.stats["error_objects"]) == (1, 1)


def test_a_failing_processor_is_retried_then_its_records_are_processing_failed(aws):
    clock = FakeClock()
    pool = ScriptedPool(lambda e: InvokeResult(False, None, {"errorMessage": "boom"}, "error"))
    d = make_delivery(aws, pool, clock, retries="2")
    put([msg(1), msg(2)])
    d.step()
    clock.sleep(60)
    d.step()
    assert len(pool.events) == 3  # NumberOfRetries 2: three attempts
    ((key, body),) = objects("errors/").items()
    assert key.startswith("errors/processing-failed/dt=")
    lines = [json.loads(x) for x in body.decode().splitlines()]
    assert [json.loads(base64.b64decode(x["rawData"]))["id"] for x in lines] == ["d1", "d2"]
    assert {(x["errorCode"], x["errorMessage"], x["attemptsMade"]) for x in lines} == {
        ("Lambda.FunctionError", "boom", 3)
    }
    assert not objects("data/") and d.checkpoint == {"shardId-000000000000": 2}


def test_a_response_missing_a_record_fails_the_invocation(aws):
    clock = FakeClock()

    def half(event: dict[str, Any]) -> InvokeResult:
        full = transform(event).payload
        return InvokeResult(True, {"records": full["records"][:1]})

    d = make_delivery(aws, ScriptedPool(half), clock, retries="0")
    put([msg(1), msg(2)])
    d.step()
    clock.sleep(60)
    d.step()
    lines = [json.loads(x) for b in objects("errors/").values() for x in b.decode().splitlines()]
    assert [x["errorCode"] for x in lines] == ["Lambda.MissingRecordId"] * 2
    assert d.stats["processing_failed"] == 2 and d.stats["delivered_rows"] == 0


def test_a_row_that_does_not_convert_is_a_format_conversion_failure(aws):
    clock = FakeClock()
    d = make_delivery(aws, ScriptedPool(transform), clock)
    put([msg(1), {"id": "late", "time": "2025-12-01 07:61:00.000"}])
    d.step()
    clock.sleep(60)
    d.step()
    assert len(objects("data/")) == 1
    ((key, body),) = objects("errors/").items()
    assert key.startswith("errors/format-conversion-failed/dt=")
    line = json.loads(body)
    assert json.loads(base64.b64decode(line["rawData"]))["device_id"] == "late"
    assert line["dataCatalogTable"]["tableName"] == "telemetry"
    assert (d.stats["conversion_failed"], d.stats["delivered_rows"]) == (1, 1)


def test_an_update_changes_the_version_in_object_names(aws):
    clock = FakeClock()
    d = make_delivery(aws, ScriptedPool(transform), clock)
    fh = boto3.client("firehose", region_name=REGION)
    desc = fh.describe_delivery_stream(DeliveryStreamName="ds")["DeliveryStreamDescription"]
    fh.update_destination(
        DeliveryStreamName="ds",
        CurrentDeliveryStreamVersionId=desc["VersionId"],
        DestinationId=desc["Destinations"][0]["DestinationId"],
        ExtendedS3DestinationUpdate={"BufferingHints": {"IntervalInSeconds": 1, "SizeInMBs": 64}},
    )
    put([msg(1)])
    d.step()
    clock.sleep(1)
    d.step()
    (key,) = objects("data/")
    assert key.rsplit("/", 1)[1].startswith("ds-2-")


def test_a_stopped_delivery_writes_nothing_and_keeps_its_checkpoint(aws):
    clock = FakeClock()
    d = make_delivery(aws, ScriptedPool(transform), clock)
    put([msg(1), msg(2, hour=8)])
    d.step()
    clock.sleep(60)
    d.stopped.set()  # the emulator stops between objects, never inside one
    d.step()
    assert not objects("") and d.checkpoint == {"shardId-000000000000": 0}
    assert d.outbox is not None and not any(o.written for o in d.outbox.outputs)
