"""The Firehose transform's record contract on a corpus of good, bad and partial messages.

Firehose counts a record delivered only if the response names its recordId with `Ok`
(or `Dropped`); `ProcessingFailed` sends it to the error prefix. These tests pin what
each kind of message becomes, that every record is answered exactly once, and that
partition keys come from the event's own time, not the arrival time.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from handler_helpers import NOW, iso, reading

from lambda_handler import lakerow, reasons, report, settings, transform
from lambda_handler.decode import MalformedEvent

RECIPE = settings.Settings()


def fh_record(payload: Any, n: int, *, arrival_ms: int | None = None) -> dict[str, Any]:
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return {
        "recordId": f"49650000000000000000000000000000000000000000000000{n:04d}0000",
        "approximateArrivalTimestamp": arrival_ms if arrival_ms is not None else int(NOW * 1000),
        "data": base64.b64encode(data).decode(),
        "kinesisRecordMetadata": {
            "shardId": "shardId-000000000000",
            "partitionKey": "pk",
            "sequenceNumber": str(1000 + n),
            "subsequenceNumber": 0,
            "approximateArrivalTimestamp": int(NOW * 1000),
        },
    }


def fh_event(*payloads: Any) -> dict[str, Any]:
    return {
        "invocationId": "inv-1",
        "deliveryStreamArn": "arn:aws:firehose:us-east-1:123456789012:deliverystream/x",
        "region": "us-east-1",
        "records": [fh_record(p, n) for n, p in enumerate(payloads)],
    }


def run(event: dict[str, Any], conf: settings.Settings = RECIPE) -> transform.TransformResult:
    lines: list[str] = []
    return transform.process(event, conf, clock=lambda: NOW, log=report.Log(lines.append))


def decoded(record: dict[str, Any]) -> dict[str, Any]:
    return json.loads(base64.b64decode(record["data"]))


def test_a_valid_message_is_one_flat_row_partitioned_by_its_event_time():
    msg = reading("sensor001", offset_s=-7200, temperature=21.5, humidity=40.0)
    result = run(fh_event(msg))
    (out,) = result.records
    assert out["result"] == "Ok"
    row = decoded(out)
    assert row["device_id"] == "sensor001"
    assert row["temperature"] == 21.5 and row["humidity"] == 40.0
    assert row["time"] == iso(-7200).replace("T", " ").rstrip("Z")
    # Two hours before NOW (08:00): the 06 partition, whatever the arrival time was.
    assert out["metadata"]["partitionKeys"] == {"dt": "2026-11-27", "hour": "06"}
    assert set(row) <= {"time", "device_id", "location", "device_type", "temperature", "humidity"}
    assert all(k == k.lower() for k in row)


def test_every_record_is_answered_once_with_its_own_id_in_order():
    payloads = [reading(), b"not json", reading("sensor002"), {"deviceId": "x"}]
    event = fh_event(*payloads)
    result = run(event)
    assert [r["recordId"] for r in result.records] == [r["recordId"] for r in event["records"]]
    assert [r["result"] for r in result.records] == [
        "Ok",
        "ProcessingFailed",
        "Ok",
        "ProcessingFailed",
    ]
    assert result.summary.balanced and result.summary.received == 4


def test_an_invalid_message_keeps_its_original_bytes_and_its_reason_is_counted():
    event = fh_event(b"{not json")
    result = run(event)
    (out,) = result.records
    assert out["result"] == "ProcessingFailed"
    assert out["data"] == event["records"][0]["data"]  # Firehose writes this under errors/
    assert "metadata" not in out
    assert result.summary.reasons == {reasons.MALFORMED_JSON: 1}


def test_a_partial_message_is_written_with_its_valid_measures_and_the_rest_counted():
    msg = reading(temperature=21.0, humidity=400.0)  # humidity out of 0-100
    conf = settings.Settings(
        sensors=(
            settings.SensorRule("temperature", -50, 150),
            settings.SensorRule("humidity", 0, 100),
        )
    )
    result = run(fh_event(msg), conf)
    (out,) = result.records
    assert out["result"] == "Ok"
    row = decoded(out)
    assert row["temperature"] == 21.0 and "humidity" not in row
    assert result.summary.measures_rejected == 1 and result.summary.written == 1
    assert result.entries[0].doc["partial"] is True


def test_the_arrival_time_decides_the_partition_of_a_message_without_a_timestamp():
    msg = {"deviceId": "sensor001", "temperature": 20.0}
    event = {"records": [fh_record(msg, 0, arrival_ms=int(NOW * 1000) - 3_600_000)]}
    (out,) = run(event).records
    assert out["metadata"]["partitionKeys"] == {"dt": "2026-11-27", "hour": "07"}


@pytest.mark.parametrize(
    "event",
    [None, {}, {"records": "x"}, {"records": [{"data": "e30="}]}, {"records": [{"recordId": "a"}]}],
)
def test_an_event_that_is_not_firehose_raises_and_answers_nothing(event):
    with pytest.raises(MalformedEvent, match="not a Firehose transformation event"):
        run(event)


def test_the_emf_counts_the_same_as_the_summary():
    lines: list[str] = []
    transform.process(
        fh_event(reading(), b"x"), RECIPE, clock=lambda: NOW, log=report.Log(lines.append)
    )
    emf = [json.loads(line) for line in lines if '"_aws"' in line]
    assert emf and any(doc.get("Written") == 1 and doc.get("Quarantined") == 1 for doc in emf)


@pytest.mark.parametrize(
    ("epoch_ms", "expected"),
    [
        (0, ("1970-01-01", "00", "1970-01-01 00:00:00.000")),
        (951_782_400_000, ("2000-02-29", "00", "2000-02-29 00:00:00.000")),
        (1_796_236_435_556, ("2026-12-02", "18", "2026-12-02 18:33:55.556")),
        (4_107_542_399_999, ("2100-02-28", "23", "2100-02-28 23:59:59.999")),
    ],
)
def test_dates_and_hours_are_exact_without_datetime(epoch_ms, expected):
    dt, hour, text = expected
    assert lakerow.partition_keys(epoch_ms) == {"dt": dt, "hour": hour}
    assert lakerow.timestamp_text(epoch_ms) == text


def test_dates_match_the_standard_library_over_four_centuries():
    from datetime import UTC, datetime

    for days in range(-1000, 160_000, 97):
        expected = datetime.fromtimestamp(days * 86400, UTC).strftime("%Y-%m-%d")
        assert lakerow.civil_date(days) == expected
