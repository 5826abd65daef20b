"""``quality --store lake`` on moto's in-process S3: error objects in Firehose's shape
(lake contract) become counts by the transform's own reason codes, with examples."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import boto3
import pytest

from iotpipe.config import Config, Device, ValidationConfig
from iotpipe.errors import IotpipeError
from iotpipe.stores import lakeerrors
from iotpipe.stores.lake import LakeReader
from lambda_handler import reasons

BUCKET = "iotpipe-abc123-123456789012-us-east-1"
NOW = datetime.now(UTC)
NOW_MS = int(NOW.timestamp() * 1000)


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Any:
    from moto import mock_aws

    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(k, "testing")
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


def reader(s3: Any, config: Config | None = None) -> LakeReader:
    names = SimpleNamespace(
        lake_database="iotpipe_lake_abc123",
        lake_table="telemetry",
        bucket=BUCKET,
        workgroup="iotpipe-athena-abc123",
    )
    gateway = SimpleNamespace(client=lambda service: {"s3": s3}[service], local=True)
    dep = SimpleNamespace(config=config or Config(), names=names, gateway=gateway)
    return LakeReader(dep, now=lambda: NOW)  # type: ignore[arg-type]


def failed(body: Any, *, age_s: float = 5, code: str = "Lambda.ProcessingFailedStatus") -> str:
    """One processing-failed error record, as Firehose writes it (lake contract)."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    arrival = NOW_MS - int(age_s * 1000)
    return json.dumps(
        {
            "attemptsMade": 1,
            "arrivalTimestamp": arrival,
            "errorCode": code,
            "errorMessage": "The Lambda function was successfully invoked but it returned an "
            "error result."
            if code == "Lambda.ProcessingFailedStatus"
            else "Timed out",
            "attemptEndingTimestamp": arrival + 300,
            "rawData": base64.b64encode(raw).decode(),
            "lambdaArn": "arn:aws:lambda:us-east-1:123456789012:function:iotpipe-transform-abc123",
        }
    )


def message(device: str = "sensor001", **measures: Any) -> dict[str, Any]:
    stamp = (NOW - timedelta(seconds=10)).isoformat(timespec="milliseconds")
    return {"deviceId": device, "timestamp": stamp.replace("+00:00", "Z"), **measures}


def put(s3: Any, key: str, lines: list[str]) -> None:
    s3.put_object(Bucket=BUCKET, Key=key, Body=("\n".join(lines) + "\n").encode())


def day(offset: int = 0) -> str:
    return (NOW + timedelta(days=offset)).strftime("%Y-%m-%d")


def write_errors(s3: Any) -> None:
    put(
        s3,
        f"errors/processing-failed/dt={day()}/iotpipe-lake-abc123-1-{day()}-00-00-00-a",
        [
            failed(message(temperature=900.0)),
            failed(message("sensor002", temperature=901.0)),
            failed(message("sensor002", humidity=-5.0)),
            failed(b'{"deviceId": "sensor003", "temperature": '),
            failed(message(None, temperature=20.0)),
            failed(message("iotpipe-probe-abcd1234", temperature=999.0)),  # verify's probe
            failed(message(temperature=950.0), age_s=7200),  # arrived before the window
        ],
    )
    put(
        s3,
        f"errors/processing-failed/dt={day()}/iotpipe-lake-abc123-1-{day()}-00-05-00-b",
        [failed(message(temperature=20.0), code="Lambda.FunctionError"), "not json"],
    )
    conversion = {
        "attemptsMade": 1,
        "arrivalTimestamp": NOW_MS - 1000,
        "ErrorCode": "DataFormatConversion.InvalidSchema",
        "ErrorMessage": "The schema is invalid.",
        "rawData": base64.b64encode(b'{"device_id": "sensor003", "time": "x"}').decode(),
        "dataCatalogTable": {"databaseName": "iotpipe_lake_abc123", "tableName": "telemetry"},
    }
    put(s3, f"errors/format-conversion-failed/dt={day()}/obj-c", [json.dumps(conversion)])
    put(s3, f"data/dt={day()}/hour=00/rows.parquet", ["not an error"])  # not counted


def test_counts_by_the_transforms_reason_with_examples(s3: Any) -> None:
    write_errors(s3)
    result = reader(s3).quality(since="1h", device=None)
    counts = {r["reason"]: r["count"] for r in result.rows}
    assert counts == {
        reasons.OUT_OF_RANGE: 3,
        reasons.MALFORMED_JSON: 1,
        reasons.MISSING_DEVICE_ID: 1,
        "transform_error": 1,
        "unreadable": 1,
        "format_conversion_failed": 1,
    }
    assert set(counts) - {"transform_error", "unreadable", "format_conversion_failed"} <= set(
        reasons.REASONS
    )
    top = result.rows[0]
    assert top["reason"] == reasons.OUT_OF_RANGE and top["devices"] == "sensor001, sensor002"
    assert (
        "not in [-50, 150]" in top["example"] and top["meaning"] == reasons.REASONS["out_of_range"]
    )
    assert result.columns == ["reason", "count", "devices", "meaning", "example"]
    assert result.types[1] == "BIGINT"
    assert next(r for r in result.rows if r["reason"] == "transform_error")["example"].startswith(
        "Lambda.FunctionError"
    )
    assert "3 error object(s)" in result.notes[0]


def test_device_and_probe_device_filters(s3: Any) -> None:
    write_errors(s3)
    lake = reader(s3)
    mine = lake.quality(since="1h", device="sensor002")
    assert [(r["reason"], r["count"]) for r in mine.rows] == [(reasons.OUT_OF_RANGE, 2)]
    probe = lake.quality(since="1h", device="iotpipe-probe-abcd1234")
    assert [(r["reason"], r["count"]) for r in probe.rows] == [(reasons.OUT_OF_RANGE, 1)]
    found = lake.refused("abcd1234", NOW - timedelta(minutes=1))
    assert found is not None and found.reason == reasons.OUT_OF_RANGE


def test_the_deployments_settings_decide_the_reason(s3: Any) -> None:
    strict = Config(devices={"sensor001": Device("f1")}, validation=ValidationConfig("quarantine"))
    put(
        s3,
        f"errors/processing-failed/dt={day()}/o",
        [failed(message("sensor777", temperature=1.0))],
    )
    assert [r["reason"] for r in reader(s3, strict).quality(since="1h", device=None).rows] == [
        reasons.UNKNOWN_DEVICE
    ]
    # the same record under the default (accepting) settings is no longer refused
    assert [r["reason"] for r in reader(s3).quality(since="1h", device=None).rows] == [
        "not_reproduced"
    ]


def test_the_work_is_capped_and_says_so(s3: Any) -> None:
    for i in range(3):
        put(s3, f"errors/processing-failed/dt={day()}/o{i}", [failed(message(temperature=900.0))])
    found = lakeerrors.scan(
        s3, BUCKET, reader(s3).settings(), NOW - timedelta(hours=1), max_objects=2
    )
    assert found.capped and found.objects == 2 and len(found.refusals) == 2
    capped = lakeerrors.scan(s3, BUCKET, reader(s3).settings(), None, max_records=1)
    assert capped.capped and len(capped.refusals) == 1


def test_empty_and_missing_bucket(s3: Any) -> None:
    result = reader(s3).quality(since="1h", device=None)
    assert result.rows == [] and "Nothing refused in the last 1h" in result.notes[-1]
    s3.delete_bucket(Bucket=BUCKET)
    with pytest.raises(IotpipeError, match=r"bucket .* does not exist: run 'iotpipe up'"):
        reader(s3).quality(since="1h", device=None)


def test_old_days_are_not_listed(s3: Any) -> None:
    put(s3, f"errors/processing-failed/dt={day(-3)}/old", [failed(message(temperature=900.0))])
    keys, _ = lakeerrors.error_objects(s3, BUCKET, NOW - timedelta(hours=1))
    assert keys == []
    keys, _ = lakeerrors.error_objects(s3, BUCKET, None)
    assert keys == [f"errors/processing-failed/dt={day(-3)}/old"]
