"""Shared helpers for the Lambda function's unit tests: events, clients, fakes.

No sleeps and no wall clock: every test passes the fixed NOW as the function's clock
and runs AWS calls inline (writer.InlineExecutor), so call order is deterministic.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from lambda_handler import handler, report, settings, writer

NOW = datetime(2026, 11, 27, 8, 0, tzinfo=UTC).timestamp()
SHARD = "shardId-000000000000"
FIRST_SEQ = 49_650_000_000_000_000_000_000_000_000_000_000_000_000_000_000_000
QUEUE_URL = "https://sqs.us-east-1.amazonaws.com/123456789012/iotpipe-failures"


def iso(offset_s: float = 0.0) -> str:
    """NOW + offset as the recipe's devices write it: `2026-11-27T08:00:00.000Z`."""
    moment = datetime.fromtimestamp(NOW, UTC) + timedelta(seconds=offset_s)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def ms(offset_s: float = 0.0) -> str:
    """NOW + offset as Timestream's Time string (epoch milliseconds)."""
    return str(round((NOW + offset_s) * 1000))


def seq(n: int) -> str:
    return str(FIRST_SEQ + n)


def kinesis_record(payload: Any, n: int, *, arrival: float = NOW - 1.0) -> dict[str, Any]:
    """One Lambda Kinesis event record; dict/list payloads are JSON-encoded, str is
    UTF-8 encoded, bytes are sent as they are."""
    if isinstance(payload, bytes):
        data = payload
    elif isinstance(payload, str):
        data = payload.encode()
    else:
        data = json.dumps(payload).encode()
    key = payload.get("deviceId") if isinstance(payload, dict) else None
    return {
        "eventSource": "aws:kinesis",
        "eventVersion": "1.0",
        "eventID": f"{SHARD}:{seq(n)}",
        "eventName": "aws:kinesis:record",
        "awsRegion": "us-east-1",
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": str(key or "pk"),
            "sequenceNumber": seq(n),
            "data": base64.b64encode(data).decode(),
            "approximateArrivalTimestamp": arrival,
        },
    }


def event(*payloads: Any) -> dict[str, Any]:
    return {"Records": [kinesis_record(p, n) for n, p in enumerate(payloads)]}


MEASURES = ("temperature", "humidity", "pressure", "vibration")


def reading(device: str = "sensor001", offset_s: float = 0.0, **fields: Any) -> dict:
    """A valid message like the recipe's test data (default measures unless given)."""
    body: dict[str, Any] = {"timestamp": iso(offset_s), "deviceId": device}
    if not any(name in fields for name in MEASURES):
        body.update(temperature=22.5, humidity=55.0)
    body.update(fields)
    return body


def ts_client() -> Any:
    """A real timestream-write client (fake credentials come from tests/conftest.py)."""
    return boto3.client("timestream-write", region_name="us-east-1")


def sqs_client() -> Any:
    return boto3.client("sqs", region_name="us-east-1")


def client_error(
    code: str, message: str = "", operation: str = "WriteRecords", **extra
) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}, **extra}, operation)


class FakeTimestream:
    """Answers WriteRecords from a script: one entry per call, each None (success), an
    exception to raise, or a callable(params) returning None or raising."""

    def __init__(self, *script: Any, default: Any = None) -> None:
        self.script = list(script)
        self.default = default
        self.calls: list[dict[str, Any]] = []

    def write_records(self, **params: Any) -> dict[str, Any]:
        self.calls.append(params)
        step = self.script.pop(0) if self.script else self.default
        if callable(step) and not isinstance(step, BaseException):
            step = step(params)
        if isinstance(step, BaseException):
            raise step
        return {"RecordsIngested": {"Total": len(params["Records"])}}


class FakeQueue:
    """SendMessageBatch that records bodies; `fail` = "all" raises, or a set of entry
    positions (by order within the call) to return as Failed."""

    def __init__(self, fail: Any = None) -> None:
        self.fail = fail
        self.calls: list[list[dict[str, Any]]] = []

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict:
        assert QueueUrl == QUEUE_URL
        self.calls.append(Entries)
        if self.fail == "all":
            raise client_error(
                "AWS.SimpleQueueService.NonExistentQueue", "gone", "SendMessageBatch"
            )
        failed = [
            {"Id": e["Id"], "SenderFault": False, "Code": "InternalError"}
            for position, e in enumerate(Entries)
            if self.fail and position in self.fail
        ]
        ok = [{"Id": e["Id"], "MessageId": "m", "MD5OfMessageBody": "x"} for e in Entries]
        return {"Successful": ok, "Failed": failed}

    @property
    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(e["MessageBody"]) for call in self.calls for e in call]


class Captured:
    """Log lines written by the function, parsed."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.log = report.Log(emit=self.lines.append, level="DEBUG")

    @property
    def docs(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.lines]

    def find(self, msg: str) -> list[dict[str, Any]]:
        return [d for d in self.docs if d.get("msg") == msg]

    @property
    def summary(self) -> dict[str, Any]:
        (line,) = self.find("batch_summary")
        return line

    @property
    def emf(self) -> dict[str, Any]:
        (doc,) = [d for d in self.docs if "_aws" in d and "Reason" not in d]
        return doc

    @property
    def reason_emf(self) -> dict[str, int]:
        return {d["Reason"]: d["QuarantinedByReason"] for d in self.docs if "Reason" in d}


def run(
    evt: dict[str, Any],
    conf: settings.Settings | None = None,
    *,
    timestream: Any,
    sqs: Any = None,
    queue_url: str | None = QUEUE_URL,
    clock: Callable[[], float] = lambda: NOW,
) -> tuple[handler.InvocationResult, Captured]:
    """process() with inline AWS calls and captured logs."""
    captured = Captured()
    outcome = handler.process(
        evt,
        conf or settings.Settings(),
        timestream=timestream,
        sqs=sqs,
        target=handler.Target("iot-sensor-db", "sensor-data", queue_url if sqs else None),
        clock=clock,
        executor=writer.InlineExecutor(),
        log=captured.log,
    )
    return outcome, captured


def failures(outcome: handler.InvocationResult) -> list[str]:
    return [f["itemIdentifier"] for f in outcome.response()["batchItemFailures"]]


def stubbed(client: Any) -> Stubber:
    stub = Stubber(client)
    stub.activate()
    return stub


def multi_settings(**overrides: Any) -> settings.Settings:
    doc = {
        "version": 1,
        "record_model": "multi",
        "sensors": {
            "temperature": {"min": -50, "max": 150, "inclusive": False},
            "humidity": {"min": 0, "max": 100},
            "pressure": {"min": 300, "max": 1100},
            "vibration": {"min": 0, "max": 100},
        },
        "devices": {
            "sensor001": {
                "location": "factory_floor_1",
                "device_type": "temperature_sensor",
                "last_maintenance": "2026-09-01",
            },
            "sensor002": {"location": "factory_floor_2", "device_type": "env_sensor"},
        },
        "defaults": {"location": "unknown", "device_type": "unknown"},
        "memory_retention_hours": 24,
        "magnetic_writes": False,
    }
    doc.update(overrides)
    return settings.from_dict(doc)
