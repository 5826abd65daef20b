"""A corpus and a seeded generator of nasty messages: the function never raises for any
message content, and every message is counted exactly once - written, or quarantined
with a reason from the closed list - while what it writes is what Timestream accepts.

Property-style without a property library (the function's tests use only what the
project depends on): a fixed corpus of the known-dangerous inputs, then thousands of
messages built from random combinations of hostile field values and byte mutations,
from a fixed seed so a failure replays.
"""

from __future__ import annotations

import base64
import json
import math
import random
from typing import Any

import boto3
import pytest
from botocore.validate import validate_parameters
from handler_helpers import NOW, FakeQueue, iso, kinesis_record, ms, multi_settings, run, seq

from lambda_handler import reasons, settings, validate
from lambda_handler.quarantine import MAX_BODY_BYTES

NOW_MS = round(NOW * 1000)
HUGE_INT = "1" * 400
WRITE_SHAPE = (
    boto3.client("timestream-write", region_name="us-east-1")
    .meta.service_model.operation_model("WriteRecords")
    .input_shape
)


def raw(text: str) -> bytes:
    return text.encode("utf-8", errors="surrogatepass")


# Every entry is one Kinesis payload (bytes) - the issue's list, and then some.
CORPUS: list[bytes] = [
    raw(f'{{"deviceId": "sensor001", "temperature": 21.0, "timestamp": {HUGE_INT}}}'),
    raw(f'{{"deviceId": "sensor001", "temperature": 21.0, "timestamp": -{HUGE_INT}}}'),
    raw('{"deviceId": "sensor001", "temperature": 21.0, "timestamp": 1e999}'),
    raw('{"deviceId": "sensor001", "temperature": 21.0, "timestamp": -1e999}'),
    raw('{"deviceId": "sensor001", "temperature": 21.0, "timestamp": NaN}'),
    raw('{"deviceId": "sensor001", "temperature": 21.0, "timestamp": "0001-01-01T00:00:00+14:00"}'),
    raw('{"deviceId": "sensor001", "temperature": 21.0, "timestamp": "9999-12-31T23:59:59-14:00"}'),
    raw('{"deviceId": "sensor001", "temperature": 21.0, "timestamp": "' + "9" * 5000 + '"}'),
    raw('{"deviceId": "sensor001", "temperature": 21.0, "timestamp": "' + ms() + '"}'),
    raw('{"deviceId": "sensor001", "temperature": 21.0, "timestamp": "' + ms()[:10] + '"}'),
    raw('{"deviceId": "sensor001", "temperature": 21.0, "timestamp": "0000000000000001"}'),
    raw('{"deviceId": "sensor001", "temperature": 21.0, "timestamp": -0.0}'),
    raw('{"deviceId": "sensor001", "temperature": 21.0, "timestamp": "2026-11-27T08:00Z\\u0000x"}'),
    raw(f'{{"deviceId": "sensor001", "temperature": {HUGE_INT}}}'),
    raw('{"deviceId": "sensor001", "temperature": ' + "9" * 5000 + "}"),  # > int digit limit
    raw('{"deviceId": "sensor001", "temperature": 1e999, "humidity": -1e999}'),
    raw('{"deviceId": "sensor001", "temperature": NaN, "humidity": Infinity}'),
    raw('{"deviceId": "sensor001", "temperature": -Infinity}'),
    raw('{"deviceId": "sensor001", "temperature": -0.0, "humidity": -0}'),
    raw('{"deviceId": "sensor001", "temperature": 5e-324, "humidity": 1e-400}'),
    raw('{"deviceId": "sensor001", "temperature": true, "humidity": false}'),
    raw('{"deviceId": "sensor001", "temperature": "21.5", "humidity": "1e999"}'),
    raw('{"deviceId": "sensor001", "temperature": "' + "1" * 100_000 + 'x"}'),
    raw('{"deviceId": "sensor001", "temperature": [21.0], "humidity": {"v": 1}}'),
    raw('{"deviceId": "sensor001", "temperature": 1, "temperature": 2}'),
    raw('{"deviceId": "sensor001", "x": {"a": 1, "a": 2}, "temperature": 1}'),
    raw('{"deviceId": "sensor001", "\\u0000": 1, "temp\\u0000erature": 2, "temperature": 3}'),
    raw('{"deviceId": "sensor\\u0000001", "temperature": 1}'),
    raw('{"deviceId": "\\ud800", "temperature": 1}'),
    raw('{"deviceId": "sensor001", "location": "\\ud800\\udfff\\u0000", "temperature": 1}'),
    raw('{"deviceId": "sensor001", "location": "' + "é" * 5000 + '", "temperature": 1}'),
    raw('{"deviceId": "sensor001", "deviceType": " \\t\\n ", "temperature": 1}'),
    raw('{"deviceId": ' + HUGE_INT + ', "temperature": 1}'),
    raw('{"deviceId": ["sensor001"], "temperature": 1}'),
    raw('{"deviceId": {"id": 1}, "temperature": 1}'),
    raw('{"deviceId": "' + "x" * 1_000_000 + '", "temperature": 1}'),
    raw('{"deviceId": "sensor001", "pad": "' + "x" * 1_048_000 + '", "temperature": 1}'),
    raw('{"deviceId": "sensor001", "deep": ' + "[" * 900 + "]" * 900 + ', "temperature": 1}'),
    raw('{"deviceId": "sensor001", "deep": ' + "[" * 100_000 + "]" * 100_000 + "}"),
    raw('{"a":' * 50_000 + "1" + "}" * 50_000),
    b'{"deviceId": "sensor001", "temperature": 1, "x": "\xff\xfe"}',
    b"\xef\xbb\xbf" + raw('{"deviceId": "sensor001", "temperature": 1}'),
    raw('{"deviceId": "sensor001", "temperature": 1} {"deviceId": "sensor002"}'),
    raw("[]"),
    raw('"a string"'),
    raw("null"),
    raw("1e999"),
    raw(HUGE_INT),
    raw("NaN"),
    b"",
    b"   \n\t ",
    b"\x00" * 64,
    raw("{}"),
]


def check_written(request: dict[str, Any], conf: settings.Settings) -> int:
    """What Timestream would refuse, checked on every WriteRecords request."""
    validate_parameters(request, WRITE_SHAPE)  # the service model's types and shapes
    common = request.get("CommonAttributes", {})
    assert 1 <= len(request["Records"]) <= 100
    for record in request["Records"]:
        merged = {**common, **record}
        time_ms = int(merged["Time"])
        assert validate.check_window(time_ms, conf, NOW_MS) == time_ms
        dims = common.get("Dimensions", []) + record.get("Dimensions", [])
        names = [d["Name"] for d in dims]
        assert len(names) == len(set(names))  # no overlap between common and record
        for dim in dims:
            assert 0 < len(dim["Value"].encode("utf-8")) <= 2048  # strict UTF-8, not empty
        values = merged.get("MeasureValues") or [{"Value": merged["MeasureValue"]}]
        for value in values:
            assert math.isfinite(float(value["Value"]))
    return len(request["Records"])


class CheckingTimestream:
    """Accepts every write, after checking it as Timestream would."""

    def __init__(self, conf: settings.Settings) -> None:
        self.conf = conf
        self.records = 0

    def write_records(self, **params: Any) -> dict[str, Any]:
        self.records += check_written(params, self.conf)
        return {"RecordsIngested": {"Total": len(params["Records"])}}


def assert_accounted(payloads: list[bytes], conf: settings.Settings) -> None:
    """Run one batch; every message exactly once written or quarantined with a reason."""
    records = [kinesis_record(p, n) for n, p in enumerate(payloads)]
    timestream, queue = CheckingTimestream(conf), FakeQueue()
    outcome, logs = run({"Records": records}, conf, timestream=timestream, sqs=queue)

    assert outcome.response() == {"batchItemFailures": []}
    summary = logs.summary
    assert summary["balanced"] and summary["received"] == len(payloads)
    assert summary["written"] + summary["quarantined"] == len(payloads)
    assert summary["records_written"] == timestream.records
    bodies = [json.loads(e["MessageBody"]) for call in queue.calls for e in call]
    whole = [b["sequenceNumber"] for b in bodies if not b["partial"]]
    assert len(whole) == len(set(whole)) == summary["quarantined"]
    partial = {b["sequenceNumber"] for b in bodies if b["partial"]}
    assert not partial & set(whole)  # a partial entry belongs to a written message
    if conf.record_model == "multi":
        assert timestream.records == summary["written"]
    for call in queue.calls:
        for entry in call:
            assert len(entry["MessageBody"].encode()) <= MAX_BODY_BYTES
            assert entry["MessageBody"].isascii()
    for body in bodies:
        assert body["reason"] in reasons.REASONS and body["detail"]
        original = payloads[int(body["sequenceNumber"]) - int(seq(0))]
        assert body["payloadBytes"] == len(original)
        if not body["truncated"]:
            kept = body.get("payload")
            got = raw(kept) if kept is not None else base64.b64decode(body["payloadBase64"])
            assert got in (original, original[3:])  # a BOM may be stripped from text
    for line in logs.lines:  # one JSON line each, bounded, never a whole payload
        assert len(line) < 4000 and "\n" not in line
        json.loads(line)


SETTINGS = {
    "recipe": settings.Settings(),
    "multi": multi_settings(unknown_devices="quarantine"),
    "magnetic-unbounded": multi_settings(magnetic_writes=True, numeric_strings=True),
    "magnetic-365": multi_settings(magnetic_writes=True, magnetic_retention_days=365),
    "open-ranges": settings.from_dict(
        {
            "version": 1,
            "record_model": "single",
            "numeric_strings": True,
            "sensors": {"temperature": {"min": None, "max": None}, "humidity": {}},
        }
    ),
}


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_the_nasty_corpus_is_accounted_for_under_every_setting(name):
    assert_accounted(CORPUS, SETTINGS[name])


def test_the_corpus_gets_the_expected_reasons_for_the_issues_examples():
    records = [kinesis_record(p, n) for n, p in enumerate(CORPUS[:5])]
    queue = FakeQueue()
    conf = SETTINGS["magnetic-unbounded"]
    run({"Records": records}, conf, timestream=CheckingTimestream(conf), sqs=queue)
    assert [b["reason"] for b in queue.bodies] == ["invalid_timestamp"] * 5


# --- the generator ---------------------------------------------------------------------

DEVICE_IDS: list[Any] = [
    "sensor001",
    "sensor002",
    "sensor404",
    "",
    None,
    0,
    True,
    [],
    {},
    "x" * 200,
    "a\x00b",
    "\ud800",
    "sensör",
    "dev 1",
    10**40,
]
TIMES: list[Any] = [
    None,
    iso(),
    iso(-60),
    iso(-2 * 86400),
    iso(-400 * 86400),
    iso(3600),
    "0001-01-01T00:00:00+14:00",
    "1969-12-31T23:59:59Z",
    10**400,
    1e308,
    -0.0,
    0,
    -1,
    True,
    "",
    "1" * 16,
    ms(),
    ms()[:10],
    "2026-11-27T08:00:00",
    "9999-12-31T23:59:59-14:00",
    [],
    {"t": 1},
    math.nan,
    "2026-02-30T00:00:00Z",
]
VALUES: list[Any] = [
    21.5,
    -0.0,
    0,
    150,
    -50,
    149.99999999999997,
    10**400,
    1e308,
    math.nan,
    math.inf,
    -math.inf,
    True,
    False,
    "21.5",
    "1e999",
    "1" * 300,
    "",
    None,
    [],
    {},
    5e-324,
    -1e-320,
    "NaN",
    " 1",
]
TEXTS: list[Any] = [None, "", "floor 2", "x" * 5000, "\x00\x01", "\ud800", 5, "é" * 2000, [1]]
EXTRA: list[tuple[str, Any]] = [
    ("\x00", 1),
    ("", 2),
    ("processing_time", 1),
    ("deep", [[[[[[]]]]]]),
    ("big", "y" * 20_000),
    ("Time", "x"),
]


def message(rng: random.Random) -> bytes:
    """One random hostile message, as bytes (some then mutated at the byte level)."""
    body: dict[str, Any] = {}
    fields = [
        ("deviceId", DEVICE_IDS),
        ("timestamp", TIMES),
        ("temperature", VALUES),
        ("humidity", VALUES),
        ("pressure", VALUES),
        ("location", TEXTS),
        ("deviceType", TEXTS),
    ]
    for key, pool in fields:
        if rng.random() < 0.85:
            body[key] = rng.choice(pool)
    for key, value in rng.sample(EXTRA, rng.randint(0, 2)):
        body[key] = value
    text = json.dumps(body, ensure_ascii=rng.random() < 0.5)  # NaN/Infinity literals too
    data = raw(text)
    roll = rng.random()
    if roll < 0.05:  # a repeated key
        data = data[:-1] + b', "deviceId": "sensor001"}'
    elif roll < 0.10:  # cut short
        data = data[: rng.randrange(len(data) + 1)]
    elif roll < 0.15:  # one byte changed
        at = rng.randrange(len(data))
        data = data[:at] + bytes([rng.randrange(256)]) + data[at + 1 :]
    elif roll < 0.18:  # wrapped in an array or surrounded by whitespace and a BOM
        data = rng.choice([b"[" + data + b"]", b"\xef\xbb\xbf \n" + data + b"\t"])
    return data


@pytest.mark.parametrize("seed", range(6))
def test_random_hostile_messages_never_raise_and_are_each_counted_once(seed):
    rng = random.Random(seed)
    conf = SETTINGS[sorted(SETTINGS)[seed % len(SETTINGS)]]
    for _ in range(5):  # 5 batches of 100 per seed
        assert_accounted([message(rng) for _ in range(100)], conf)
