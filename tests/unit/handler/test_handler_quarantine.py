"""Quarantine bodies, their size limits, batching, and the queue's answers."""

from __future__ import annotations

import base64
import json

from botocore.stub import Stubber
from handler_helpers import NOW, QUEUE_URL, FakeQueue, kinesis_record, seq, sqs_client

from lambda_handler import decode, quarantine
from lambda_handler.reasons import Problem

NOW_MS = round(NOW * 1000)
OUT = Problem("out_of_range", "150.0 not in [0, 100]")


def item(payload, n=0):
    it = decode.item_from_record(n, kinesis_record(payload, n))
    decode.decode(it)
    return it


def entry(payload, problem=OUT, device="sensor001", rejected=None, partial=False):
    return quarantine.make_entry(item(payload), problem, device, rejected or {}, partial, NOW_MS)


def test_body_shape():
    payload = {"deviceId": "sensor001", "temperature": 21.0, "humidity": 150}
    e = entry(payload, rejected={"humidity": OUT}, partial=True)
    body = json.loads(e.body)
    assert body == {
        "source": "iotpipe-handler",
        "reason": "out_of_range",
        "detail": "150.0 not in [0, 100]",
        "partial": True,
        "deviceId": "sensor001",
        "shardId": "shardId-000000000000",
        "sequenceNumber": seq(0),
        "partitionKey": "sensor001",
        "approximateArrivalTimestamp": NOW - 1.0,
        "quarantinedAt": "2026-11-27T08:00:00.000Z",
        "rejectedMeasures": {"humidity": "out_of_range: 150.0 not in [0, 100]"},
        "payloadBytes": len(json.dumps(payload)),
        "truncated": False,
        "payload": json.dumps(payload),
    }
    assert e.doc == body
    assert e.reason == "out_of_range"
    assert e.body.isascii()


def test_binary_payload_goes_as_base64():
    body = json.loads(entry(b"\x00\xff\x80binary", Problem("not_utf8", "x"), None).body)
    assert "payload" not in body
    assert base64.b64decode(body["payloadBase64"]) == b"\x00\xff\x80binary"
    assert body["truncated"] is False
    assert body["deviceId"] is None


def test_undecodable_base64_keeps_the_data_as_received():
    record = kinesis_record({}, 0)
    record["kinesis"]["data"] = "%%not base64%%"
    it = decode.item_from_record(0, record)
    decode.decode(it)
    e = quarantine.make_entry(it, Problem("not_base64", "x"), None, {}, False, NOW_MS)
    assert json.loads(e.body)["payload"] == "%%not base64%%"


def test_large_text_payload_is_truncated_and_marked():
    payload = '{"deviceId": "s1", "pad": "' + "\u00e9" * 600_000 + '"}'
    e = entry(payload.encode(), Problem("too_large", "big"))
    body = json.loads(e.body)
    assert len(e.body) <= quarantine.MAX_BODY_BYTES
    assert body["truncated"] is True
    assert body["payloadBytes"] == len(payload.encode())
    assert payload.startswith(body["payload"])
    assert len(body["payload"]) > 10_000


def test_large_binary_payload_is_truncated_and_marked():
    raw = bytes(range(256)) * 4096  # 1 MiB, not UTF-8
    body = json.loads(entry(raw, Problem("too_large", "big")).body)
    assert body["truncated"] is True
    assert raw.startswith(base64.b64decode(body["payloadBase64"]))


def test_control_characters_and_bad_ids_stay_inside_the_limit():
    device = "\x00\u202e" * 10_000
    e = entry({"deviceId": device}, Problem("invalid_device_id", "x" * 50_000), device)
    body = json.loads(e.body)
    assert len(body["deviceId"]) <= 256 and len(body["detail"]) <= 1000
    assert e.body.isascii()


def test_an_oversized_partition_key_or_event_id_cannot_push_the_body_over_the_limit():
    """A direct invoke can send anything there; Kinesis never more than 256 characters."""
    record = kinesis_record(b"x" * 300_000, 0)
    record["kinesis"]["partitionKey"] = "k" * 300_000
    record["eventID"] = "s" * 300_000 + ":1"
    item = decode.item_from_record(0, record)
    decode.decode(item)
    e = quarantine.make_entry(item, Problem("malformed_json", "x"), None, {}, False, NOW_MS)
    body = json.loads(e.body)
    assert len(e.body) <= quarantine.MAX_BODY_BYTES
    assert len(body["partitionKey"]) <= 256 and len(body["shardId"]) <= 256
    assert body["truncated"] is True and body["payload"].startswith("xxx")


def test_pack_respects_ten_entries_and_the_batch_size():
    small = [entry({"deviceId": f"d{n}"}) for n in range(23)]
    assert [len(b) for b in quarantine.pack(small)] == [10, 10, 3]
    big = [entry(b"\xff" * 150_000, Problem("not_utf8", "x")) for _ in range(3)]
    batches = quarantine.pack(big)
    assert batches == [[0], [1], [2]]
    for batch in batches:
        assert sum(len(big[p].body) for p in batch) <= quarantine.MAX_BATCH_BYTES


def test_send_reports_failed_entries_by_position():
    entries = [entry({"deviceId": f"d{n}"}) for n in range(4)]
    queue = FakeQueue(fail={1, 3})
    assert quarantine.send(queue, QUEUE_URL, entries, [0, 1, 2, 3]) == {1, 3}
    assert [e["Id"] for e in queue.calls[0]] == ["0", "1", "2", "3"]


def test_send_treats_an_exception_as_all_lost():
    entries = [entry({"deviceId": "d"}) for _ in range(2)]
    assert quarantine.send(FakeQueue(fail="all"), QUEUE_URL, entries, [0, 1]) == {0, 1}


def test_send_message_batch_parameters_pass_botocore_validation():
    entries = [entry({"deviceId": f"d{n}"}) for n in range(2)]
    client = sqs_client()
    expected = {
        "QueueUrl": QUEUE_URL,
        "Entries": [
            {"Id": "0", "MessageBody": entries[0].body},
            {"Id": "1", "MessageBody": entries[1].body},
        ],
    }
    with Stubber(client) as stub:
        stub.add_response(
            "send_message_batch",
            {
                "Successful": [{"Id": "0", "MessageId": "a", "MD5OfMessageBody": "x"}],
                "Failed": [{"Id": "1", "SenderFault": False, "Code": "InternalError"}],
            },
            expected,
        )
        assert quarantine.send(client, QUEUE_URL, entries, [0, 1]) == {1}
