"""Decoding: base64 -> UTF-8 -> one JSON object, or a reason."""

from __future__ import annotations

import base64

import pytest
from handler_helpers import kinesis_record, seq

from lambda_handler import decode
from lambda_handler.reasons import Problem


def _decode(payload):
    return decode.decode(decode.item_from_record(0, kinesis_record(payload, 0)))


def test_a_json_object_decodes():
    assert _decode({"deviceId": "sensor001", "temperature": 22.5}) == {
        "deviceId": "sensor001",
        "temperature": 22.5,
    }


def test_item_carries_what_quarantine_and_retry_need():
    record = kinesis_record({"deviceId": "s1"}, 3, arrival=1700000000.5)
    item = decode.item_from_record(7, record)
    assert item.index == 7
    assert item.sequence_number == seq(3)
    assert item.seq_key == int(seq(3))
    assert item.shard_id == "shardId-000000000000"
    assert item.partition_key == "s1"
    assert item.arrival == 1700000000.5


@pytest.mark.parametrize(
    ("event", "says"),
    [
        ({"Records": True}, "Records is the boolean true, not an array"),
        ({"Records": {"a": 1}}, "Records is an object, not an array"),
        ({"Records": None}, "Records is missing or null, not an array"),
        ({}, "the event has no Records"),
        ([], "the event is an array, not an object with Records"),
        (None, "the event is missing or null, not an object with Records"),
        ("Records", "the event is a string, not an object with Records"),
        ({"Records": [None]}, "Records[0] is missing or null, not an object"),
        ({"Records": ["x"]}, "Records[0] is a string, not an object"),
        ({"Records": [{"eventSource": "aws:sqs", "body": "{}"}]}, "(eventSource 'aws:sqs')"),
        ({"Records": [{"kinesis": []}]}, "Records[0].kinesis is missing or not an object"),
        ({"Records": [{"kinesis": {"sequenceNumber": "1"}}]}, "Records[0].kinesis.data is"),
        (
            {"Records": [{"kinesis": {"data": 5, "sequenceNumber": "1"}}]},
            "Records[0].kinesis.data is a number, not a base64 string",
        ),
        (
            {"Records": [{"kinesis": {"data": "e30=", "sequenceNumber": None}}]},
            "Records[0].kinesis.sequenceNumber is missing or null",
        ),
        (
            {"Records": [{"kinesis": {"data": "e30=", "sequenceNumber": ""}}]},
            "Records[0].kinesis.sequenceNumber is an empty string",
        ),
        (
            {"Records": [{"kinesis": {"data": "e30=", "sequenceNumber": "1" * 130}}]},
            "longer than Kinesis' 129 digits",
        ),
    ],
)
def test_an_event_no_kinesis_mapping_would_send_is_a_clear_value_error(event, says):
    with pytest.raises(ValueError) as raised:
        decode.items_of(event)
    assert isinstance(raised.value, decode.MalformedEvent)
    assert says in str(raised.value)


def test_optional_event_fields_of_odd_types_are_tolerated():
    odd = {
        "kinesis": {
            "data": "e30=",
            "sequenceNumber": "1",
            "approximateArrivalTimestamp": 5,
            "partitionKey": 7,
        },
        "eventID": ["x"],
    }
    item = decode.item_from_record(0, odd)
    assert (item.arrival, item.partition_key, item.event_id, item.shard_id) == (
        5.0,
        None,
        None,
        None,
    )
    for bad in (float("nan"), float("inf"), 10**400, True, "5"):
        odd["kinesis"]["approximateArrivalTimestamp"] = bad
        assert decode.item_from_record(0, odd).arrival is None


def test_sequence_numbers_that_are_not_plain_digits_sort_by_position():
    item = decode.item_from_record(3, {"kinesis": {"data": "e30=", "sequenceNumber": "\u00b2"}})
    assert item.seq_key == 3  # "²".isdigit() is true, int("²") raises
    item.sequence_number = "9" * 5000  # more digits than int() accepts
    assert item.seq_key == 3


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"", "empty"),
        (b"   \n", "empty"),
        (b"\xff\xfe\x00binary\x80", "not_utf8"),
        (b"{deviceId: sensor001}", "malformed_json"),
        (b'{"deviceId": "s1", "temperature": 2', "malformed_json"),
        (b'{"deviceId": "s1"} trailing', "malformed_json"),
        (b"[1, 2]", "not_an_object"),
        (b"42", "not_an_object"),
        (b'"a string"', "not_an_object"),
        (b"null", "not_an_object"),
        (b"true", "not_an_object"),
        (b'{"deviceId": "a", "deviceId": "b"}', "duplicate_keys"),
        (b'{"deviceId": "a", "meta": {"k": 1, "k": 2}}', "duplicate_keys"),
        (b"[" * 100_000, "malformed_json"),
    ],
)
def test_bad_payloads_get_their_reason(payload, reason):
    problem = _decode(payload)
    assert isinstance(problem, Problem)
    assert problem.reason == reason
    assert problem.detail


def test_not_base64():
    record = kinesis_record({}, 0)
    record["kinesis"]["data"] = "this is not base64!"
    assert _decode_record(record).reason == "not_base64"


def _decode_record(record):
    return decode.decode(decode.item_from_record(0, record))


def test_larger_than_one_mebibyte_is_too_large():
    payload = b'{"deviceId": "s1", "pad": "' + b"x" * (1 << 20) + b'"}'
    problem = _decode(payload)
    assert problem.reason == "too_large"
    assert "1048576" in problem.detail


def test_exactly_one_mebibyte_is_not_too_large():
    body = b'{"deviceId": "s1", "pad": "'
    payload = body + b"x" * ((1 << 20) - len(body) - 2) + b'"}'
    assert len(payload) == 1 << 20
    assert _decode(payload)["deviceId"] == "s1"


def test_whitespace_around_the_object_and_a_bom_are_fine():
    assert _decode(b'  {"deviceId": "s1"}\n') == {"deviceId": "s1"}
    assert _decode(b'\xef\xbb\xbf{"deviceId": "s1"}') == {"deviceId": "s1"}


def test_nan_and_infinity_parse_and_are_judged_per_measure():
    body = _decode(b'{"deviceId": "s1", "temperature": NaN, "humidity": -Infinity}')
    assert body["temperature"] != body["temperature"]
    assert body["humidity"] == float("-inf")


def test_duplicate_key_detail_names_the_key():
    assert "'deviceId'" in _decode(b'{"deviceId": "a", "deviceId": "a"}').detail


def test_decode_keeps_raw_bytes_for_the_quarantine():
    item = decode.item_from_record(0, kinesis_record(b"\x80\x81", 0))
    decode.decode(item)
    assert item.raw == b"\x80\x81"
    assert base64.b64encode(item.raw).decode() == item.data
