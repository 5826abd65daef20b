"""Firehose's delivery rules, pure: prefixes, flush conditions (injected clock), keys, the
processor's chunks and response checks."""

from __future__ import annotations

import base64
import calendar
import json
import re

import pytest
from fake_clock import FakeClock

from iotpipe import lakeschema
from iotpipe.local import firehosebuffer as fb

# 2025-12-01 07:05:09.250 UTC
ARRIVAL = calendar.timegm((2025, 12, 1, 7, 5, 9)) + 0.25


def item(seq: int, data: bytes = b'{"a":1}', shard: str = "shardId-000000000000") -> fb.Item:
    return fb.Item(shard, seq, base64.b64encode(data).decode(), f"k{seq}", ARRIVAL + seq)


# -- prefixes ------------------------------------------------------------------------------
def test_the_contract_prefixes_evaluate_to_the_lake_layout():
    keys = {"dt": "2025-11-30", "hour": "23"}
    assert fb.evaluate(lakeschema.FIREHOSE_PREFIX, ARRIVAL, keys) == "data/dt=2025-11-30/hour=23/"
    error = fb.evaluate(lakeschema.FIREHOSE_ERROR_PREFIX, ARRIVAL, None, fb.PROCESSING_FAILED)
    assert error == "errors/processing-failed/dt=2025-12-01/"  # arrival time, not event time


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("yyyy/MM/dd/HH/", "2025/12/01/07/"),
        ("yyyy-MM-dd'T'HH:mm:ss", "2025-12-01T07:05:09"),
        ("'year='yyyy'/month='MM", "year=2025/month=12"),
        ("yy", "25"),
        ("HH''mm", "07'05"),
    ],
)
def test_timestamp_patterns_are_java_datetimeformatter_patterns(pattern, expected):
    assert fb.evaluate(f"!{{timestamp:{pattern}}}", ARRIVAL) == expected


def test_every_timestamp_in_a_prefix_is_the_same_instant():
    got = fb.evaluate("!{timestamp:yyyy}/!{timestamp:ss}/", ARRIVAL)
    assert got == "2025/09/"


@pytest.mark.parametrize(
    "prefix",
    [
        "!{partitionKeyFromLambda:dt}/",  # no such key
        "!{timestamp:yyyy-QQ}/",  # unsupported field
        "!{partitionKeyFromQuery:dt}/",  # jq partitioning is not modelled
        "!{firehose:error-output-type}/",  # only in an error prefix
    ],
)
def test_a_prefix_that_cannot_be_evaluated_is_a_prefix_error(prefix):
    with pytest.raises(fb.PrefixError):
        fb.evaluate(prefix, ARRIVAL, {"hour": "07"})


def test_random_string_is_eleven_characters():
    assert re.fullmatch(r"x/[a-z0-9]{11}/", fb.evaluate("x/!{firehose:random-string}/", ARRIVAL))


def test_a_prefix_without_timestamp_gets_the_default_hour_path_unless_partitioning():
    assert fb.data_prefix("raw/", dynamic=False) == "raw/!{timestamp:yyyy/MM/dd/HH/}"
    assert fb.data_prefix("raw/!{timestamp:yyyy}/", dynamic=False) == "raw/!{timestamp:yyyy}/"
    assert fb.data_prefix(lakeschema.FIREHOSE_PREFIX, dynamic=True) == lakeschema.FIREHOSE_PREFIX


def test_object_names_follow_firehose():
    name = fb.object_name("lake-ds", "3", ARRIVAL, "0b9e7c1c-uuid", ".parquet")
    assert name == "lake-ds-3-2025-12-01-07-05-09-0b9e7c1c-uuid.parquet"


# -- buffering -----------------------------------------------------------------------------
def test_the_interval_flushes_a_buffer_when_it_elapses():
    clock, hints, buf = FakeClock(), fb.Hints(interval_s=1, size_bytes=64 * fb.MB), fb.Buffer()
    assert buf.wait(hints, clock.now()) is None and not buf.due(hints, clock.now())  # empty
    buf.add("r1", 10, clock.now())
    clock.sleep(0.6)
    buf.add("r2", 10, clock.now())  # a later record does not restart the interval
    assert buf.wait(hints, clock.now()) == pytest.approx(0.4)
    assert not buf.due(hints, clock.now())
    clock.sleep(0.4)
    assert buf.due(hints, clock.now())
    assert buf.take() == ["r1", "r2"] and buf.size == 0 and buf.wait(hints, clock.now()) is None


def test_the_size_flushes_first_when_it_is_reached_first():
    clock, hints, buf = FakeClock(), fb.Hints(interval_s=900, size_bytes=100), fb.Buffer()
    buf.add("a", 60, clock.now())
    assert not buf.due(hints, clock.now())
    buf.add("b", 40, clock.now())
    assert buf.full(hints) and buf.due(hints, clock.now())


def test_hints_take_any_value_the_api_accepts_and_default_as_aws():
    hints = fb.Hints.from_config({"BufferingHints": {"IntervalInSeconds": 1, "SizeInMBs": 64}})
    assert hints == fb.Hints(1.0, 64 * fb.MB)
    assert fb.Hints.from_config({}) == fb.Hints(300.0, 5 * fb.MB)
    zero, buf = fb.Hints(0, fb.MB), fb.Buffer()
    buf.add("x", 1, 5.0)
    assert buf.due(zero, 5.0)


def test_b64_size_is_the_decoded_length():
    for n in range(0, 9):
        assert fb.b64_size(base64.b64encode(b"x" * n).decode()) == n


# -- the processor -------------------------------------------------------------------------
def _processor(params: dict[str, str], enabled: bool = True) -> dict[str, object]:
    return {
        "ProcessingConfiguration": {
            "Enabled": enabled,
            "Processors": [
                {
                    "Type": "Lambda",
                    "Parameters": [
                        {"ParameterName": k, "ParameterValue": v} for k, v in params.items()
                    ],
                }
            ],
        }
    }


def test_processor_parameters_are_strings_with_aws_defaults():
    arn = "arn:aws:lambda:us-east-1:123456789012:function:t"
    p = fb.Processor.from_config(_processor({"LambdaArn": arn}))
    assert p == fb.Processor(arn, retries=3, chunk_bytes=fb.MB)
    p = fb.Processor.from_config(
        _processor({"LambdaArn": arn, "NumberOfRetries": "0", "BufferSizeInMBs": "0.2"})
    )
    assert p is not None and (p.retries, p.chunk_bytes) == (0, int(0.2 * fb.MB))
    assert fb.Processor.from_config(_processor({"LambdaArn": arn}, enabled=False)) is None
    assert fb.Processor.from_config({}) is None


def test_chunks_respect_the_processor_buffer_and_keep_a_big_record_alone():
    over = fb.RECORD_OVERHEAD
    assert fb.chunks([100, 100, 100], 2 * (100 + over)) == [range(0, 2), range(2, 3)]
    assert fb.chunks([10, 5000, 10], 1000) == [range(0, 1), range(1, 2), range(2, 3)]
    assert fb.chunks([], 1000) == []


def test_the_event_carries_kinesis_metadata_and_millisecond_arrivals():
    event = fb.transform_event([item(7)], "arn:ds", "eu-west-1", "arn:stream")
    (rec,) = event["records"]
    assert event["deliveryStreamArn"] == "arn:ds" and event["region"] == "eu-west-1"
    assert rec["approximateArrivalTimestamp"] == int((ARRIVAL + 7) * 1000)
    assert base64.b64decode(rec["data"]) == b'{"a":1}'
    meta = rec["kinesisRecordMetadata"]
    assert meta["shardId"] == "shardId-000000000000" and meta["sequenceNumber"] == "7"
    assert meta["partitionKey"] == "k7" and meta["subsequenceNumber"] == 0


def _reply(rid: str, result: str = "Ok", data: bytes = b"{}") -> dict[str, object]:
    return {"recordId": rid, "result": result, "data": base64.b64encode(data).decode()}


def test_a_valid_response_gives_each_record_its_result_and_partition_keys():
    ok = _reply("1") | {"metadata": {"partitionKeys": {"dt": "2025-12-01", "hour": "07"}}}
    got = fb.parse_response({"records": [ok, _reply("2", "Dropped")]}, ["1", "2"])
    assert got["1"].keys == {"dt": "2025-12-01", "hour": "07"} and got["1"].data == b"{}"
    assert got["2"].result == "Dropped"


@pytest.mark.parametrize(
    ("records", "code"),
    [
        ([_reply("1")], "Lambda.MissingRecordId"),
        ([_reply("1"), _reply("1"), _reply("2")], "Lambda.DuplicatedRecordId"),
        ([_reply("1"), _reply("3")], "Lambda.MissingRecordId"),
        ([_reply("1"), _reply("2", "Maybe")], "Lambda.InvalidRecordResult"),
        (
            [_reply("1"), {"recordId": "2", "result": "Ok", "data": "%%%"}],
            "Lambda.InvalidRecordData",
        ),
        (None, "Lambda.JsonProcessingException"),
        (
            [_reply("1", data=b"x" * 4 * fb.MB), _reply("2", data=b"x" * fb.MB)],
            "Lambda.ResponseSizeExceeded",
        ),
    ],
)
def test_a_response_firehose_rejects_fails_the_whole_invocation(records, code):
    with pytest.raises(fb.ResponseError) as e:
        fb.parse_response({"records": records}, ["1", "2"])
    assert e.value.code == code


def test_the_processing_failed_record_has_the_contract_shape():
    line = fb.processing_failed("eyJ9", 5, 4, "Lambda.FunctionError", "boom", "arn:fn", 9)
    assert json.loads(line) == {
        "attemptsMade": 4,
        "arrivalTimestamp": 5,
        "errorCode": "Lambda.FunctionError",
        "errorMessage": "boom",
        "attemptEndingTimestamp": 9,
        "rawData": "eyJ9",
        "lambdaArn": "arn:fn",
    }
