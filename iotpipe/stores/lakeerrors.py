"""The lake's ``quality``: what Firehose wrote under the error prefix, counted by reason.

Why recompute the reason: a record the transform marks ``ProcessingFailed`` reaches S3 as
Firehose's error record, which carries only the original bytes (``rawData``, base64) and
the generic ``errorCode`` ``Lambda.ProcessingFailedStatus``. The reason is in the
function's log, but logs are slow and costly to search; running
``lambda_handler.validate.evaluate`` on ``rawData`` with the deployment's settings re-runs
the very code the transform ran, at the time the transform ran it (the record's
``attemptEndingTimestamp``), so the answer is the transform's.

What else lands there gets its own code: a failed invocation sends its whole batch with
another errorCode (``transform_error``), Parquet conversion failures have their own prefix
(``format_conversion_failed``), and a record today's settings accept was refused under
other settings (``not_reproduced``). A message written with some of its measures refused is
a row (its valid measures), not an error record, so it is not counted here.

The work is bounded (objects, records): newest objects first, and the notes say when a cap
cut the count short.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from iotpipe.errors import IotpipeError
from iotpipe.failurequeue import by_reason
from iotpipe.lakeschema import ERROR_PREFIX, FORMAT_CONVERSION_FAILED, PROCESSING_FAILED
from iotpipe.stores.base import Result
from lambda_handler.decode import Item
from lambda_handler.enrich import PROBE_DEVICE_PREFIX
from lambda_handler.model import Rejection
from lambda_handler.settings import Settings
from lambda_handler.validate import evaluate

ERROR_TYPES = (PROCESSING_FAILED, FORMAT_CONVERSION_FAILED)
PROCESSING_FAILED_CODE = "Lambda.ProcessingFailedStatus"
MAX_OBJECTS = 200
MAX_RECORDS = 20_000
MAX_LISTED = 10_000  # keys listed per error type before giving up on the rest
LAKE_REASONS = {
    "transform_error": "Firehose could not run the transform on the record's batch "
    "(invocation error, timeout, throttling)",
    "format_conversion_failed": "Firehose could not convert the transform's row to Parquet",
    "not_reproduced": "the transform refused it, but today's settings accept it "
    "(the config changed since?)",
    "unreadable": "a line under the error prefix that is not a Firehose error record",
}


@dataclass(frozen=True)
class Refusal:
    """One error record, with the reason the transform gave it."""

    reason: str
    device: str | None
    detail: str
    arrival_ms: int
    raw: bytes = b""


@dataclass
class Scan:
    """What a bounded read of the error prefix found, and whether a cap cut it short."""

    refusals: list[Refusal]
    objects: int = 0
    capped: bool = False


def error_objects(s3: Any, bucket: str, oldest: datetime | None) -> tuple[list[str], bool]:
    """Error objects written since ``oldest``, newest first; True when listing was capped.

    Keys are ``errors/<type>/dt=YYYY-MM-DD/...`` (the day Firehose wrote them), so listing
    starts at the day before ``oldest`` (a margin for the day boundary); an object last
    written before ``oldest`` can only hold older records."""
    found: list[tuple[datetime, str]] = []
    capped = False
    for kind in ERROR_TYPES:
        prefix = f"{ERROR_PREFIX}{kind}/"
        kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
        if oldest is not None:
            kwargs["StartAfter"] = f"{prefix}dt={(oldest - timedelta(days=1)):%Y-%m-%d}"
        listed = 0
        for page in s3.get_paginator("list_objects_v2").paginate(**kwargs):
            for obj in page.get("Contents", []):
                listed += 1
                if oldest is None or obj["LastModified"] >= oldest:
                    found.append((obj["LastModified"], obj["Key"]))
            if listed >= MAX_LISTED:
                capped = True
                break
    found.sort(reverse=True)
    return [key for _, key in found], capped


def records(s3: Any, bucket: str, key: str) -> Iterator[dict[str, Any] | None]:
    """The JSON lines of one error object (None for a line that is not an object)."""
    body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    try:
        for line in body.iter_lines():
            if not line.strip():
                continue
            try:
                doc = json.loads(line)
            except ValueError:
                yield None
                continue
            yield doc if isinstance(doc, dict) else None
    finally:
        body.close()


def raw_bytes(record: dict[str, Any]) -> bytes:
    try:
        return base64.b64decode(str(record.get("rawData", "")), validate=True)
    except (binascii.Error, ValueError):
        return b""


def classify(record: dict[str, Any] | None, key: str, settings: Settings) -> Refusal:
    """The reason one error record stands for (see the module's docstring)."""
    if record is None:
        return Refusal("unreadable", None, f"a line of {key}", 0)
    arrival = _int(record.get("arrivalTimestamp"))
    raw = raw_bytes(record)
    if f"/{FORMAT_CONVERSION_FAILED}/" in key:
        message = str(record.get("ErrorMessage") or record.get("ErrorCode") or "")
        return Refusal("format_conversion_failed", _row_device(raw), message, arrival, raw)
    code = str(record.get("errorCode", ""))
    if code != PROCESSING_FAILED_CODE:
        detail = f"{code}: {record.get('errorMessage', '')}".strip(": ")
        return Refusal("transform_error", None, detail, arrival, raw)
    item = Item(0, "0", str(record.get("rawData", "")), arrival / 1000 if arrival else None)
    ran_at = _int(record.get("attemptEndingTimestamp")) or arrival
    outcome = evaluate(item, settings, ran_at)
    if type(outcome) is Rejection:
        problem = outcome.problem
        return Refusal(problem.reason, outcome.device_id, problem.detail, arrival, raw)
    shown = "accepted by the current settings"
    return Refusal("not_reproduced", outcome.device_id, shown, arrival, raw)


def _int(value: Any) -> int:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0


def _row_device(raw: bytes) -> str | None:
    """A format-conversion failure's rawData is the transform's row: its device_id."""
    try:
        row = json.loads(raw)
    except ValueError:
        return None
    dev = row.get("device_id") if isinstance(row, dict) else None
    return dev if isinstance(dev, str) else None


def scan(
    s3: Any,
    bucket: str,
    settings: Settings,
    oldest: datetime | None,
    *,
    max_objects: int = MAX_OBJECTS,
    max_records: int = MAX_RECORDS,
) -> Scan:
    """Classify the error records that arrived since ``oldest``, within the caps."""
    try:
        keys, capped = error_objects(s3, bucket, oldest)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "NoSuchBucket":
            raise IotpipeError(
                f"The lake's bucket {bucket} does not exist: run 'iotpipe up' with "
                "lake.enabled: true (or pick the deployment with -c/--config)."
            ) from exc
        raise
    oldest_ms = int(oldest.timestamp() * 1000) if oldest else 0
    result = Scan([], capped=capped or len(keys) > max_objects)
    read = 0
    for key in keys[:max_objects]:
        result.objects += 1
        for record in records(s3, bucket, key):
            read += 1
            refusal = classify(record, key, settings)
            if refusal.reason == "unreadable" or refusal.arrival_ms >= oldest_ms:
                result.refusals.append(refusal)
            if read >= max_records:
                result.capped = True
                return result
    return result


def report(found: Scan, device: str | None) -> Result:
    """Refusals by reason, in the queue's ``quality`` table (probe records are hidden)."""
    return by_reason([r for r in found.refusals if _shown(r, device)], LAKE_REASONS)


def _shown(r: Refusal, device: str | None) -> bool:
    if device is not None:
        return r.device == device
    return not (r.device or "").startswith(PROBE_DEVICE_PREFIX)  # verify's probe


def find_marked(
    s3: Any, bucket: str, settings: Settings, token: str, oldest: datetime
) -> Refusal | None:
    """The error record whose original bytes carry ``token`` (``verify --probe``)."""
    found = scan(s3, bucket, settings, oldest)
    marker = token.encode()
    return next((r for r in found.refusals if marker in r.raw), None)


def now_utc() -> datetime:
    return datetime.now(UTC)
