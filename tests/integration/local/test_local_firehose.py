"""A KinesisStreamAsSource delivery stream in the embedded AWS: Kinesis -> transform -> S3.

Everything is made with plain boto3 (stream, bucket, Glue table, a tiny inline transform
or the real one, the delivery stream), then records are put on the stream and the lake is read back: the
Parquet objects under data/dt=.../hour=.../ (read with DuckDB, counted exactly), the
ProcessingFailed records under errors/processing-failed/, nothing for Dropped, and the
records put before the delivery stream existed nowhere (Firehose starts at LATEST).
"""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
from lake_contract import delivery_request
from localaws_helpers import TRUST, make_zip, wait_for

from iotpipe import lakeschema
from iotpipe.config import Config, LakeConfig
from iotpipe.package import build_function_zip, settings_from_config

pytestmark = pytest.mark.integration

# The lead's lambda_handler/transform.py is the real one; this keeps the test independent.
TRANSFORM = """
import base64, json, time

def handler(event, context):
    out = []
    for r in event["records"]:
        m = json.loads(base64.b64decode(r["data"]))
        assert r["kinesisRecordMetadata"]["shardId"].startswith("shardId-")
        if m.get("bad"):
            out.append({"recordId": r["recordId"], "result": "ProcessingFailed", "data": r["data"]})
            continue
        if m.get("drop"):
            out.append({"recordId": r["recordId"], "result": "Dropped", "data": r["data"]})
            continue
        t = m["t"] / 1000
        row = {"time": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t)) + ".%03d" % (m["t"] % 1000),
               "Device_Id": m["id"], "location": "lab", "device_type": "probe",
               "temperature": m["temp"], "not_a_column": 1}
        keys = {"dt": time.strftime("%Y-%m-%d", time.gmtime(t)), "hour": time.strftime("%H", time.gmtime(t))}
        data = base64.b64encode((json.dumps(row) + "\\n").encode()).decode()
        out.append({"recordId": r["recordId"], "result": "Ok", "data": data,
                    "metadata": {"partitionKeys": keys}})
    return {"records": out}
"""
COLUMNS = [
    ("time", "timestamp"),
    ("device_id", "string"),
    ("location", "string"),
    ("device_type", "string"),
    ("temperature", "double"),
]
HOUR_MS = 3_600_000


def _lake(local_aws: Any, interval: int = 1) -> dict[str, Any]:
    aws = local_aws
    stream, bucket, db, fn, ds = (aws.name(p) for p in ("fhst", "fhbucket", "fhdb", "fhfn", "fhds"))
    k = aws.client("kinesis")
    k.create_stream(StreamName=stream, ShardCount=2)
    arn = k.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]["StreamARN"]
    aws.client("s3").create_bucket(Bucket=bucket)
    glue = aws.client("glue")
    glue.create_database(DatabaseInput={"Name": db})
    glue.create_table(
        DatabaseName=db,
        TableInput={
            "Name": "telemetry",
            "PartitionKeys": [{"Name": n, "Type": t} for n, t in lakeschema.PARTITION_KEYS],
            "StorageDescriptor": {"Columns": [{"Name": n, "Type": t} for n, t in COLUMNS]},
        },
    )
    role = aws.client("iam").create_role(
        RoleName=aws.name("fhrole"), AssumeRolePolicyDocument=TRUST
    )
    role_arn = role["Role"]["Arn"]
    fn_arn = aws.client("lambda").create_function(
        FunctionName=fn,
        Runtime="python3.13",
        Role=role_arn,
        Handler="fn.handler",
        Code={"ZipFile": make_zip({"fn.py": TRANSFORM})},
        Timeout=10,
    )["FunctionArn"]
    return {"stream": stream, "stream_arn": arn, "bucket": bucket, "db": db, "fn_arn": fn_arn,
            "role": role_arn, "name": ds, "interval": interval}  # fmt: skip


def _create_delivery_stream(aws: Any, lake: dict[str, Any], size_mb: int = 64) -> str:
    request = delivery_request(
        name=lake["name"],
        stream_arn=lake["stream_arn"],
        role=lake["role"],
        bucket_arn=f"arn:aws:s3:::{lake['bucket']}",
        function_arn=lake["fn_arn"],
        database=lake["db"],
        region=aws.region,
        interval_s=lake["interval"],
        size_mb=size_mb,
    )
    return str(aws.client("firehose").create_delivery_stream(**request)["DeliveryStreamARN"])


def _put(aws: Any, lake: dict[str, Any], messages: list[dict[str, Any]]) -> None:
    out = aws.client("kinesis").put_records(
        StreamName=lake["stream"],
        Records=[
            {"Data": json.dumps(m).encode(), "PartitionKey": f"k{i}"}
            for i, m in enumerate(messages)
        ],
    )
    assert out["FailedRecordCount"] == 0


def _objects(aws: Any, bucket: str, prefix: str) -> dict[str, bytes]:
    s3 = aws.client("s3")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])]
    return {k: s3.get_object(Bucket=bucket, Key=k)["Body"].read() for k in keys}


def _rows(objects: dict[str, bytes], tmp_path: Path) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = []
    for i, body in enumerate(objects.values()):
        path = tmp_path / f"o{i}.parquet"
        path.write_bytes(body)
        rows += duckdb.sql(f"SELECT * FROM read_parquet('{path}') ORDER BY device_id").fetchall()
    return sorted(rows, key=lambda r: r[1])


def test_kinesis_records_reach_the_lake_as_parquet_partitions_and_error_records(
    local_aws, tmp_path
):
    lake = _lake(local_aws)
    _put(local_aws, lake, [{"id": "before", "t": 1_764_572_400_000, "temp": 1.0}])
    ds_arn = _create_delivery_stream(local_aws, lake)
    t0 = 1_764_572_400_123  # 2025-12-01 07:00:00.123 UTC; the second hour follows
    good = [{"id": f"d{i}", "t": t0 + (i % 2) * HOUR_MS, "temp": 20.0 + i} for i in range(10)]
    bad = [{"id": "bad1", "bad": True}, {"id": "bad2", "bad": True}]
    started = time.monotonic()
    _put(local_aws, lake, [*good, *bad, {"id": "gone", "drop": True}])

    def delivered() -> dict[str, Any] | None:
        found = {d["arn"]: d for d in local_aws.status()["delivery_streams"]}.get(ds_arn)
        return found if found and found["received"] == 13 and found["flushes"] else None

    status = wait_for(delivered, timeout=10, what="the delivery stream's flush")
    elapsed = time.monotonic() - started
    assert 0.9 <= elapsed < 2.5, f"IntervalInSeconds=1 delivered after {elapsed:.2f} s"

    data = _objects(local_aws, lake["bucket"], "data/")
    assert sorted(k.rsplit("/", 1)[0] for k in data) == [
        "data/dt=2025-12-01/hour=07",
        "data/dt=2025-12-01/hour=08",
    ]
    name = lake["name"]
    assert all(k.rsplit("/", 1)[1].startswith(f"{name}-1-") for k in data)
    assert all(k.endswith(".parquet") and body[:4] == b"PAR1" for k, body in data.items())
    rows = _rows(data, tmp_path)
    assert [r[1] for r in rows] == sorted(m["id"] for m in good)  # exactly once each
    assert len(rows[0]) == 5  # the key with no column was dropped
    first = next(r for r in rows if r[1] == "d0")
    assert str(first[0]) == "2025-12-01 07:00:00.123000" and first[4] == 20.0

    errors = _objects(local_aws, lake["bucket"], "errors/")
    assert len(errors) == 1
    key, body = next(iter(errors.items()))
    today = time.strftime("%Y-%m-%d", time.gmtime())
    assert key.startswith(f"errors/processing-failed/dt={today}/{name}-1-")
    lines = [json.loads(line) for line in body.decode().splitlines()]
    assert sorted(json.loads(base64.b64decode(e["rawData"]))["id"] for e in lines) == [
        "bad1",
        "bad2",
    ]
    assert {e["errorCode"] for e in lines} == {"Lambda.ProcessingFailedStatus"}
    assert all(e["lambdaArn"] == lake["fn_arn"] and e["attemptsMade"] == 1 for e in lines)

    assert (status["delivered_rows"], status["processing_failed"], status["dropped"]) == (10, 2, 1)
    assert (status["objects"], status["error_objects"], status["conversion_failed"]) == (2, 1, 0)
    assert status["bytes"] == sum(map(len, data.values())) + len(body)
    assert status["last_error"] == ""


def test_direct_puts_to_a_kinesis_sourced_stream_are_refused(local_aws):
    lake = _lake(local_aws, interval=60)
    _create_delivery_stream(local_aws, lake)
    fh = local_aws.client("firehose")
    with pytest.raises(fh.exceptions.InvalidArgumentException, match="KinesisStreamAsSource"):
        fh.put_record(DeliveryStreamName=lake["name"], Record={"Data": b"{}"})
    with pytest.raises(fh.exceptions.InvalidArgumentException, match="KinesisStreamAsSource"):
        fh.put_record_batch(DeliveryStreamName=lake["name"], Records=[{"Data": b"{}"}])


def test_a_missing_bucket_holds_the_records_until_it_exists(local_aws, tmp_path):
    lake = _lake(local_aws)
    local_aws.client("s3").delete_bucket(Bucket=lake["bucket"])
    ds_arn = _create_delivery_stream(local_aws, lake)
    _put(local_aws, lake, [{"id": "kept", "t": 1_764_572_400_000, "temp": 3.0}])

    def retrying() -> dict[str, Any] | None:
        found = {d["arn"]: d for d in local_aws.status()["delivery_streams"]}[ds_arn]
        return found if found["delivery_retries"] >= 2 else None

    status = wait_for(retrying, timeout=10, what="failed writes retried")
    assert status["objects"] == 0 and status["buffered"] == 1 and status["last_error"]
    local_aws.client("s3").create_bucket(Bucket=lake["bucket"])
    wait_for(lambda: _objects(local_aws, lake["bucket"], "data/"), timeout=15, what="the object")
    rows = _rows(_objects(local_aws, lake["bucket"], "data/"), tmp_path)
    assert [r[1] for r in rows] == ["kept"]


def test_deleting_the_delivery_stream_stops_its_delivery(local_aws):
    lake = _lake(local_aws, interval=60)
    ds_arn = _create_delivery_stream(local_aws, lake)
    assert ds_arn in {d["arn"] for d in local_aws.status()["delivery_streams"]}
    local_aws.client("firehose").delete_delivery_stream(DeliveryStreamName=lake["name"])
    assert ds_arn not in {d["arn"] for d in local_aws.status()["delivery_streams"]}


def test_the_real_transform_fills_the_contract_table(local_aws, tmp_path):
    """lambda_handler.transform in the deployed zip, the contract's Glue columns."""
    config = Config(name=local_aws.name("fhreal"), lake=LakeConfig(enabled=True))
    lake = _lake(local_aws)
    glue = local_aws.client("glue")
    glue.delete_table(DatabaseName=lake["db"], Name="telemetry")
    columns = [{"Name": n, "Type": t} for n, t in lakeschema.columns(config)]
    glue.create_table(
        DatabaseName=lake["db"],
        TableInput={"Name": "telemetry", "StorageDescriptor": {"Columns": columns}},
    )
    fn = local_aws.name("fhreal")
    lake["fn_arn"] = local_aws.client("lambda").create_function(
        FunctionName=fn,
        Runtime="python3.13",
        Role=lake["role"],
        Handler="lambda_handler.transform.lambda_handler",
        Code={"ZipFile": build_function_zip(settings_from_config(config))},
        Timeout=30,
    )["FunctionArn"]
    _create_delivery_stream(local_aws, lake)
    when = datetime.now(UTC) - timedelta(minutes=1)
    stamp = when.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    good = [
        {"timestamp": stamp, "deviceId": f"sensor00{i}", "temperature": 20.0 + i, "humidity": 50.0}
        for i in (1, 2, 3)
    ]
    _put(local_aws, lake, [*good, {"deviceId": "sensor001"}, {"nonsense": True}])
    where = f"data/dt={when:%Y-%m-%d}/hour={when:%H}/"
    data = wait_for(
        lambda: _objects(local_aws, lake["bucket"], where), timeout=15, what="the lake's object"
    )
    rows = _rows(data, tmp_path)
    assert [r[1] for r in rows] == ["sensor001", "sensor002", "sensor003"]
    assert rows[0][2] == "factory_floor_1" and rows[0][5] == 21.0  # enriched, typed
    errors = wait_for(
        lambda: _objects(local_aws, lake["bucket"], "errors/processing-failed/"),
        timeout=5,
        what="the processing-failed records",
    )
    lines = [json.loads(x) for body in errors.values() for x in body.decode().splitlines()]
    assert len(lines) == 2 and {e["errorCode"] for e in lines} == {"Lambda.ProcessingFailedStatus"}
