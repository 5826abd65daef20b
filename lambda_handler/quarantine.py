"""The quarantine: what was not written, why, and the original bytes to replay it.

Why a queue and not a log line: quarantined messages are data someone will want back
(a fixed range, a registered device). The body keeps the original payload - as text
when it is UTF-8, as base64 when not - plus where it came from (shard, sequence number),
so it can be inspected, counted by reason and re-sent. Bodies are ASCII-only JSON
(`ensure_ascii`), which SQS always accepts, and never exceed its 256 KB limit: an
oversized payload is cut and marked `truncated`.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .decode import Item
from .reasons import Problem
from .text import clip
from .validate import iso

SOURCE = "iotpipe-handler"
MAX_BODY_BYTES = 262_144  # SQS message size limit (256 KiB)
MAX_BATCH_ENTRIES = 10  # SendMessageBatch limits: 10 entries, 256 KiB in total
MAX_BATCH_BYTES = 262_144
_HEADROOM = 200  # for the payload key, quotes and the `truncated` flag
_MAX_DETAIL = 1000
_MAX_DEVICE_ID = 256
_MAX_KEY = 256  # partition keys and shard ids: Kinesis' are shorter; direct invokes may not be


@dataclass(slots=True)
class Entry:
    """One quarantine message: the item it is about, its JSON body, and the problems
    it was built from (the log line names each refused measure)."""

    item: Item
    reason: str
    doc: dict[str, Any]
    body: str
    problem: Problem
    rejected: Mapping[str, Problem]


def make_entry(
    item: Item,
    problem: Problem,
    device_id: str | None,
    rejected: Mapping[str, Problem],
    partial: bool,
    now_ms: int,
) -> Entry:
    """Build the quarantine body for `item`.

    `partial` is true when the message itself was written and only the measures in
    `rejected` were refused; `problem` is then the first of those.
    """
    partition_key = item.partition_key
    doc: dict[str, Any] = {
        "source": SOURCE,
        "reason": problem.reason,
        "detail": clip(problem.detail, _MAX_DETAIL),
        "partial": partial,
        "deviceId": clip(device_id, _MAX_DEVICE_ID) if device_id else None,
        "shardId": clip(item.shard_id, _MAX_KEY) if item.shard_id else None,
        "sequenceNumber": item.sequence_number,
        "partitionKey": (clip(partition_key, _MAX_KEY) if isinstance(partition_key, str) else None),
        "approximateArrivalTimestamp": item.arrival,
        "quarantinedAt": iso(now_ms),
    }
    if rejected:
        doc["rejectedMeasures"] = {
            name: clip(p.text(), _MAX_DETAIL) for name, p in rejected.items()
        }
    size = len(item.raw) if item.raw is not None else len(item.data)
    if size < MAX_BODY_BYTES // 8:  # the usual small payload: try it whole, one dump
        whole = {**doc, **payload_fields(item, MAX_BODY_BYTES)}
        body = _dumps(whole)
        if len(body) <= MAX_BODY_BYTES:
            return Entry(item, problem.reason, whole, body, problem, rejected)
    envelope = len(_dumps(doc))
    doc.update(payload_fields(item, MAX_BODY_BYTES - envelope - _HEADROOM))
    body = _dumps(doc)
    if len(body) > MAX_BODY_BYTES:  # cannot happen with the clips above; never send it
        for key in ("payload", "payloadBase64"):
            doc.pop(key, None)
        doc["truncated"] = True
        body = _dumps(doc)
    return Entry(item, problem.reason, doc, body, problem, rejected)


def payload_fields(item: Item, budget: int) -> dict[str, Any]:
    """`payload` (UTF-8 text) or `payloadBase64`, cut to `budget` encoded bytes."""
    budget = max(budget, 0)
    if item.raw is None:  # not base64: keep the data field exactly as received
        size = len(item.data.encode("utf-8", errors="replace"))
        text, truncated = _fit_text(item.data, budget)
        return {"payloadBytes": size, "truncated": truncated, "payload": text}
    raw = item.raw
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        keep = (budget // 4) * 3
        encoded = base64.b64encode(raw[:keep]).decode("ascii")
        return {"payloadBytes": len(raw), "truncated": keep < len(raw), "payloadBase64": encoded}
    cut, truncated = _fit_text(text, budget)
    return {"payloadBytes": len(raw), "truncated": truncated, "payload": cut}


def pack(entries: list[Entry]) -> list[list[int]]:
    """Positions of `entries` grouped into SendMessageBatch calls (<= 10, <= 256 KiB)."""
    batches: list[list[int]] = []
    current: list[int] = []
    size = 0
    for position, entry in enumerate(entries):
        length = len(entry.body)
        if current and (len(current) == MAX_BATCH_ENTRIES or size + length > MAX_BATCH_BYTES):
            batches.append(current)
            current, size = [], 0
        current.append(position)
        size += length
    if current:
        batches.append(current)
    return batches


def send(client: Any, queue_url: str, entries: list[Entry], positions: list[int]) -> set[int]:
    """Send one batch; return the positions that did NOT reach the queue."""
    try:
        response = client.send_message_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": str(p), "MessageBody": entries[p].body} for p in positions],
        )
    except Exception:  # botocore retried already; the caller reports these for retry
        return set(positions)
    failed = set()
    for failure in response.get("Failed") or ():
        entry_id = failure.get("Id", "")
        if entry_id.isdigit() and int(entry_id) in positions:
            failed.add(int(entry_id))
    return failed


def _fit_text(text: str, budget: int) -> tuple[str, bool]:
    """The longest prefix of `text` whose JSON encoding fits `budget` bytes."""
    encoded = len(_dumps(text))
    if encoded <= budget:
        return text, False
    keep = len(text)
    while encoded > budget and keep > 0:
        keep = max(0, int(keep * budget / encoded) - 1)
        encoded = len(_dumps(text[:keep]))
    return text[:keep], True


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=True, separators=(",", ":"))
