"""Firehose's delivery rules, pure: buffering, prefixes, object keys, the Lambda contract.

Kept apart from the delivery threads (`firehose`) so every rule a lake depends on is
tested without a clock, a thread or moto: when a buffer flushes (BufferingHints, the first
condition met wins), what an S3 key is (Prefix expressions evaluated as Firehose does:
``!{partitionKeyFromLambda:k}``, ``!{firehose:error-output-type}``, ``!{timestamp:<Java
pattern>}`` at the arrival time of the object's oldest record, then
``<stream>-<version>-YYYY-MM-DD-HH-MM-SS-<uuid>``), how records are chunked for the
processor and whether its response is acceptable, and the error records' JSON shape.
"""

from __future__ import annotations

import base64
import json
import random
import re
import string
import time
import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

MB = 1024 * 1024
DEFAULT_INTERVAL_S = 300  # BufferingHints defaults (API_BufferingHints)
DEFAULT_SIZE_MB = 5
DEFAULT_PROCESSOR_MB = 1.0  # Lambda processor BufferSizeInMBs default
DEFAULT_RETRIES = 3
MAX_INVOKE_BYTES = 6 * MB  # Lambda's synchronous payload cap, request and response
RECORD_OVERHEAD = 400  # JSON around one record's data in the event (ids, metadata)
RESULTS = frozenset(("Ok", "Dropped", "ProcessingFailed"))
DEFAULT_TIME_PREFIX = "!{timestamp:yyyy/MM/dd/HH/}"
DEFAULT_ERROR_PREFIX = "!{firehose:error-output-type}/!{timestamp:yyyy/MM/dd/HH/}"

PROCESSING_FAILED = "processing-failed"  # !{firehose:error-output-type} values
FORMAT_CONVERSION_FAILED = "format-conversion-failed"
PARTITIONING_FAILED = "partitioning-failed"  # a prefix expression had no value
FAILED_STATUS_MESSAGE = "The record was marked ProcessingFailed by the Lambda function."
# What each delivery counts (status JSON, in this order).
STAT_NAMES = ("received", "delivered_records", "delivered_rows", "processing_failed",
              "conversion_failed", "partitioning_failed", "dropped", "objects", "error_objects",
              "bytes", "flushes", "invocations", "invocation_failures", "delivery_retries")  # fmt: skip


class PrefixError(ValueError):
    """A prefix that cannot be evaluated for these records (unknown or missing key)."""


# -- records -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Item:
    """One Kinesis record as Firehose buffers it (data still base64, as moto stores it)."""

    shard_id: str
    seq: int
    data: str
    partition_key: str
    arrival: float  # epoch seconds (ApproximateArrivalTimestamp)

    @property
    def record_id(self) -> str:
        """Unique within a stream: the sequence number (unique across shards) + subsequence."""
        return f"{self.seq}{0:012d}"

    @property
    def arrival_ms(self) -> int:
        return int(self.arrival * 1000)

    def raw(self) -> bytes:
        return base64.b64decode(self.data)


def transform_event(
    items: list[Item], delivery_arn: str, region: str, source_arn: str
) -> dict[str, Any]:
    """The processor's event for a Kinesis source (kinesisRecordMetadata per record)."""
    return {
        "invocationId": str(uuid.uuid4()),
        "deliveryStreamArn": delivery_arn,
        "sourceKinesisStreamArn": source_arn,
        "region": region,
        "records": [
            {
                "recordId": it.record_id,
                "approximateArrivalTimestamp": it.arrival_ms,
                "data": it.data,
                "kinesisRecordMetadata": {
                    "shardId": it.shard_id,
                    "partitionKey": it.partition_key,
                    "approximateArrivalTimestamp": it.arrival_ms,
                    "sequenceNumber": str(it.seq),
                    "subsequenceNumber": 0,
                },
            }
            for it in items
        ],
    }


def partitions(
    ok: list[tuple[Item, bytes, dict[str, str]]],
) -> dict[tuple[tuple[str, str], ...], list[tuple[Item, bytes]]]:
    """Ok records grouped by their partition keys, in arrival order within each group."""
    out: dict[tuple[tuple[str, str], ...], list[tuple[Item, bytes]]] = {}
    for it, data, keys in ok:
        out.setdefault(tuple(sorted(keys.items())), []).append((it, data))
    return out


def arn_account_region(arn: str, account: str, region: str) -> tuple[str, str]:
    """(account, region) of an ARN; the defaults for a bare name."""
    parts = arn.split(":")
    if len(parts) >= 5 and parts[0] == "arn":
        return parts[4] or account, parts[3] or region
    return account, region


def bucket_name(bucket_arn: str) -> str:
    return bucket_arn.split(":::", 1)[-1]


@dataclass
class Output:
    """One S3 object of a flush, computed once so a retry writes the same key and bytes."""

    key: str
    body: bytes
    stats: Counter[str]
    written: bool = False


@dataclass
class Outbox:
    """A flush waiting to be in S3; the read positions it covers become the checkpoint."""

    outputs: list[Output]
    covers: dict[str, int]
    records: int
    stats: Counter[str] = field(default_factory=Counter)


# -- buffering -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Hints:
    """BufferingHints, as numbers: any value the API accepts is honoured (0 = no wait)."""

    interval_s: float = DEFAULT_INTERVAL_S
    size_bytes: int = DEFAULT_SIZE_MB * MB

    @classmethod
    def from_config(cls, destination: Mapping[str, Any]) -> Hints:
        hints = destination.get("BufferingHints") or {}
        interval = hints.get("IntervalInSeconds", DEFAULT_INTERVAL_S)
        size = hints.get("SizeInMBs", DEFAULT_SIZE_MB)
        return cls(float(interval), int(float(size) * MB))


@dataclass
class Buffer:
    """Records waiting for delivery; opened (timed) by its first record."""

    items: list[Any] = field(default_factory=list)
    size: int = 0
    opened_at: float | None = None

    def add(self, item: Any, size: int, now: float) -> None:
        if self.opened_at is None:
            self.opened_at = now
        self.items.append(item)
        self.size += size

    def full(self, hints: Hints) -> bool:
        return bool(self.items) and self.size >= hints.size_bytes

    def wait(self, hints: Hints, now: float) -> float | None:
        """Seconds until this buffer is due (0: flush now); None while it is empty."""
        if not self.items or self.opened_at is None:
            return None
        if self.full(hints):
            return 0.0
        return max(0.0, self.opened_at + hints.interval_s - now)

    def due(self, hints: Hints, now: float) -> bool:
        return self.wait(hints, now) == 0.0

    def take(self) -> list[Any]:
        items, self.items, self.size, self.opened_at = self.items, [], 0, None
        return items


def b64_size(data: str) -> int:
    """Decoded length of base64 text, without decoding it."""
    return len(data) * 3 // 4 - data[-2:].count("=")


# -- prefixes and keys -------------------------------------------------------------------------
_EXPR = re.compile(r"!\{([A-Za-z]+):([^}]*)\}")
_JAVA_FIELDS = {
    "yyyy": "%Y",
    "yy": "%y",
    "MM": "%m",
    "dd": "%d",
    "HH": "%H",
    "mm": "%M",
    "ss": "%S",
}
_JAVA_TOKEN = re.compile(r"'([^']*)'|([A-Za-z])\2*|[^A-Za-z']+")


def java_time(pattern: str, epoch_s: float) -> str:
    """A Java DateTimeFormatter pattern (the subset Firehose prefixes use) in UTC."""
    tm = time.gmtime(epoch_s)
    out = []
    pos = 0
    for m in _JAVA_TOKEN.finditer(pattern):
        if m.start() != pos:
            raise PrefixError(f"unsupported timestamp pattern {pattern!r}")
        pos = m.end()
        text = m.group(0)
        if m.group(1) is not None:
            out.append(m.group(1) or "'")  # '' is a literal quote
        elif m.group(2) is not None:
            spec = _JAVA_FIELDS.get(text)
            if spec is None:
                raise PrefixError(f"unsupported field {text!r} in timestamp pattern {pattern!r}")
            out.append(time.strftime(spec, tm))
        else:
            out.append(text)
    if pos != len(pattern):
        raise PrefixError(f"unsupported timestamp pattern {pattern!r}")
    return "".join(out)


def evaluate(
    prefix: str,
    arrival_s: float,
    keys: Mapping[str, str] | None = None,
    error_type: str | None = None,
    rng: random.Random | None = None,
) -> str:
    """A Prefix or ErrorOutputPrefix for one object: every expression at the same instant."""

    def one(m: re.Match[str]) -> str:
        ns, arg = m.group(1), m.group(2).strip()
        if ns == "timestamp":
            return java_time(arg, arrival_s)
        if ns == "partitionKeyFromLambda":
            value = (keys or {}).get(arg)
            if value is None:
                raise PrefixError(f"partition key {arg!r} is missing")
            return str(value)
        if ns == "firehose" and arg == "error-output-type" and error_type is not None:
            return error_type
        if ns == "firehose" and arg == "random-string":
            chars = string.ascii_lowercase + string.digits
            return "".join((rng or random).choice(chars) for _ in range(11))
        raise PrefixError(f"unsupported expression !{{{ns}:{arg}}}")

    return _EXPR.sub(one, prefix)


def data_prefix(prefix: str, dynamic: bool) -> str:
    """Firehose appends ``yyyy/MM/dd/HH/`` to a Prefix with no timestamp (not when partitioning)."""
    if dynamic or "!{timestamp:" in prefix:
        return prefix
    return prefix + DEFAULT_TIME_PREFIX


def object_name(stream: str, version: str, epoch_s: float, unique: str, ext: str = "") -> str:
    """``<stream>-<version>-YYYY-MM-DD-HH-MM-SS-<uuid><ext>`` (basic-deliver.html)."""
    return f"{stream}-{version}-{time.strftime('%Y-%m-%d-%H-%M-%S', time.gmtime(epoch_s))}-{unique}{ext}"


# -- the Lambda processor --------------------------------------------------------------------
@dataclass(frozen=True)
class Processor:
    """ProcessingConfiguration's Lambda processor (every parameter value is a string)."""

    arn: str
    retries: int = DEFAULT_RETRIES
    chunk_bytes: int = int(DEFAULT_PROCESSOR_MB * MB)

    @classmethod
    def from_config(cls, destination: Mapping[str, Any]) -> Processor | None:
        conf = destination.get("ProcessingConfiguration") or {}
        if not conf.get("Enabled", False):
            return None
        for proc in conf.get("Processors") or []:
            if proc.get("Type") != "Lambda":
                continue
            params = {p["ParameterName"]: p["ParameterValue"] for p in proc.get("Parameters", [])}
            if "LambdaArn" not in params:
                continue
            mb = float(params.get("BufferSizeInMBs", DEFAULT_PROCESSOR_MB))
            return cls(
                arn=params["LambdaArn"],
                retries=int(params.get("NumberOfRetries", DEFAULT_RETRIES)),
                chunk_bytes=min(int(mb * MB), MAX_INVOKE_BYTES),
            )
        return None


def chunks(sizes: list[int], limit: int) -> list[range]:
    """Index ranges whose data (base64 length plus overhead) fits `limit`; >= 1 record each."""
    out: list[range] = []
    start, total = 0, 0
    for i, size in enumerate(sizes):
        cost = size + RECORD_OVERHEAD
        if i > start and total + cost > limit:
            out.append(range(start, i))
            start, total = i, 0
        total += cost
    if start < len(sizes):
        out.append(range(start, len(sizes)))
    return out


@dataclass(frozen=True)
class Transformed:
    """One record's result from the processor."""

    record_id: str
    result: str
    data: bytes
    keys: dict[str, str]


class ResponseError(ValueError):
    """A response Firehose rejects as a whole (the invocation counts as failed)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def parse_response(payload: Any, record_ids: list[str]) -> dict[str, Transformed]:
    """recordId -> result; every id exactly once, a known result, base64 data for Ok."""
    records = payload.get("records") if isinstance(payload, dict) else None
    if not isinstance(records, list):
        raise ResponseError("Lambda.JsonProcessingException", "response has no records list")
    expected = set(record_ids)
    out: dict[str, Transformed] = {}
    size = sum(len(str(rec.get("data") or "")) for rec in records if isinstance(rec, dict))
    if size > MAX_INVOKE_BYTES:
        raise ResponseError("Lambda.ResponseSizeExceeded", f"response data is {size} bytes")
    for rec in records:
        rid = rec.get("recordId") if isinstance(rec, dict) else None
        if rid not in expected:
            raise ResponseError("Lambda.MissingRecordId", f"unknown recordId {rid!r} in response")
        if rid in out:
            raise ResponseError("Lambda.DuplicatedRecordId", f"recordId {rid!r} returned twice")
        result = rec.get("result")
        if result not in RESULTS:
            raise ResponseError("Lambda.InvalidRecordResult", f"invalid result {result!r}")
        try:
            data = base64.b64decode(rec.get("data") or "", validate=True)
        except (ValueError, TypeError):
            msg = f"record {rid}: data is not base64"
            raise ResponseError("Lambda.InvalidRecordData", msg) from None
        keys = ((rec.get("metadata") or {}).get("partitionKeys")) or {}
        out[rid] = Transformed(rid, result, data, {str(k): str(v) for k, v in keys.items()})
    missing = expected - set(out)
    if missing:
        raise ResponseError("Lambda.MissingRecordId", f"{len(missing)} recordId(s) missing")
    return out


# -- error records ----------------------------------------------------------------------------
def processing_failed(
    raw_b64: str, arrival_ms: int, attempts: int, code: str, message: str, arn: str, now_ms: int
) -> str:
    """One line under errors/processing-failed/ (data-transformation-failure-handling)."""
    return json.dumps(
        {
            "attemptsMade": attempts,
            "arrivalTimestamp": arrival_ms,
            "errorCode": code,
            "errorMessage": message,
            "attemptEndingTimestamp": now_ms,
            "rawData": raw_b64,
            "lambdaArn": arn,
        }
    )


def partitioning_failed(data: bytes, arrival_ms: int, message: str, now_ms: int) -> str:
    """A record whose partition keys do not fill the Prefix (error type partitioning-failed)."""
    return json.dumps(
        {
            "attemptsMade": 1,
            "arrivalTimestamp": arrival_ms,
            "errorCode": "DynamicPartitioning.PartitionKeyMissing",
            "errorMessage": message,
            "attemptEndingTimestamp": now_ms,
            "rawData": base64.b64encode(data).decode(),
        }
    )
