"""The lake's read side against the embedded AWS's Athena (DuckDB over S3 Parquet),
without the write side: a Glue table, a workgroup and objects put by hand, then every
preset, the probe's lookup, ``count``, ``quality`` and ``--sql`` with its hints."""

from __future__ import annotations

import base64
import json
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import duckdb
import pytest

from iotpipe import lakeschema
from iotpipe.config import Config, LakeConfig
from iotpipe.errors import IotpipeError
from iotpipe.naming import Names
from iotpipe.stores.lake import LakeReader

pytestmark = pytest.mark.integration
DUCK = {"timestamp": "TIMESTAMP", "double": "DOUBLE", "string": "VARCHAR"}


def _catalog(local_aws: Any, config: Config, names: Names) -> None:
    local_aws.client("s3").create_bucket(Bucket=names.bucket)
    glue = local_aws.client("glue")
    glue.create_database(DatabaseInput={"Name": names.lake_database})
    columns = [{"Name": n, "Type": t} for n, t in lakeschema.columns(config)]
    glue.create_table(
        DatabaseName=names.lake_database,
        TableInput={
            "Name": names.lake_table,
            "TableType": "EXTERNAL_TABLE",
            "PartitionKeys": [{"Name": n, "Type": t} for n, t in lakeschema.PARTITION_KEYS],
            "StorageDescriptor": {
                "Columns": columns,
                "Location": lakeschema.data_location(names.bucket),
                "InputFormat": lakeschema.PARQUET_INPUT,
                "OutputFormat": lakeschema.PARQUET_OUTPUT,
                "SerdeInfo": {"SerializationLibrary": lakeschema.PARQUET_SERDE},
            },
            "Parameters": {"classification": "parquet", **lakeschema.projection(names.bucket, 30)},
        },
    )
    local_aws.client("athena").create_work_group(
        Name=names.workgroup,
        Configuration={
            "ResultConfiguration": {"OutputLocation": lakeschema.results_location(names.bucket)},
            "EnforceWorkGroupConfiguration": True,
        },
    )


def _parquet(config: Config, rows: list[dict[str, Any]]) -> bytes:
    cols = lakeschema.columns(config)
    con = duckdb.connect()
    con.execute(f"CREATE TABLE t ({', '.join(f'{n} {DUCK[t]}' for n, t in cols)})")
    for row in rows:
        con.execute(
            f"INSERT INTO t VALUES ({', '.join('?' for _ in cols)})", [row.get(n) for n, _ in cols]
        )
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "x.parquet"
        con.execute(f"COPY t TO '{out}' (FORMAT parquet, COMPRESSION snappy)")
        return out.read_bytes()


@pytest.fixture(scope="module")
def lake(local_aws: Any) -> LakeReader:
    config = Config(name=local_aws.name("lk"), lake=LakeConfig(enabled=True))
    names = Names.of(config, "abc123", "123456789012")
    _catalog(local_aws, config, names)
    now = datetime.now(UTC).replace(tzinfo=None)
    rows = [
        {"time": now - timedelta(minutes=2), "device_id": "sensor001", "temperature": 21.0},
        {"time": now - timedelta(minutes=1), "device_id": "sensor002", "temperature": 23.0},
        {"time": now - timedelta(minutes=1), "device_id": "iotpipe-probe-ab", "temperature": 50.0},
    ]
    s3 = local_aws.client("s3")
    key = f"data/dt={now:%Y-%m-%d}/hour={now:%H}/part-1.parquet"
    s3.put_object(Bucket=names.bucket, Key=key, Body=_parquet(config, rows))
    ms = int(datetime.now(UTC).timestamp() * 1000)
    raw = {"deviceId": "sensor001", "timestamp": f"{now.isoformat()}Z", "temperature": 900}
    record = {
        "attemptsMade": 1,
        "arrivalTimestamp": ms,
        "errorCode": "Lambda.ProcessingFailedStatus",
        "errorMessage": "returned an error result",
        "attemptEndingTimestamp": ms,
        "rawData": base64.b64encode(json.dumps(raw).encode()).decode(),
        "lambdaArn": names.transform_function_arn,
    }
    error_key = f"errors/processing-failed/dt={now:%Y-%m-%d}/e1"
    s3.put_object(Bucket=names.bucket, Key=error_key, Body=json.dumps(record) + "\n")
    gateway = SimpleNamespace(client=local_aws.client, local=True, endpoint_url=local_aws.endpoint)
    return LakeReader(SimpleNamespace(config=config, names=names, gateway=gateway))  # type: ignore[arg-type]


def test_presets_answer_in_timestreams_vocabulary_without_probe_rows(lake: LakeReader) -> None:
    recent = lake.preset("recent", since="1h", device=None, limit=10)
    assert [r["DeviceId"] for r in recent.rows] == ["sensor002", "sensor001"]
    assert recent.types[0] == "TIMESTAMP" and "Athena scanned" in recent.notes[0]
    by_device = lake.preset("by-device", since="1h", device=None, limit=10)
    assert by_device.columns == ["DeviceId", "avg_temperature", "messages"]
    assert [(r["DeviceId"], r["avg_temperature"], r["messages"]) for r in by_device.rows] == [
        ("sensor001", 21.0, 1),
        ("sensor002", 23.0, 1),
    ]
    per_minute = lake.preset("per-minute", since="1h", device="sensor001", limit=10)
    assert [(r["measure"], r["samples"]) for r in per_minute.rows] == [("temperature", 1)]
    assert lake.count("1d") == 3  # probe rows included
    assert lake.probe_rows("iotpipe-probe-ab", "temperature")[0]["v"] == 50.0


def test_quality_and_user_sql(lake: LakeReader) -> None:
    quality = lake.quality(since="1h", device=None)
    assert [(r["reason"], r["count"]) for r in quality.rows] == [("out_of_range", 1)]
    assert lake.user_sql("SELECT count(*) AS n FROM telemetry").rows == [{"n": 3}]
    with pytest.raises(IotpipeError, match="a string is in single quotes: 'sensor001'"):
        lake.user_sql('SELECT * FROM telemetry WHERE device_id = "sensor001"')
