"""Kinesis record -> JSON object, or the reason it is not one.

Why so strict: a message that is not unambiguously one JSON object cannot be trusted to
mean what a device meant (a repeated key has two values; an array has no deviceId), so
it is quarantined with its reason instead of being guessed at or dropped.
"""

from __future__ import annotations

import binascii
import json
import re
from dataclasses import dataclass
from typing import Any

from . import reasons
from .reasons import Problem

MAX_PAYLOAD_BYTES = 1_048_576  # Kinesis' default maximum record size (1 MiB)
# Every object key in JSON text is followed by `"`, optional whitespace, `:`. Counting
# these is an upper bound on the number of keys at all depths (see _has_duplicate_keys).
_KEY_END = re.compile(r'"\s*:')


@dataclass(slots=True)
class Item:
    """One Kinesis record as received, with what the quarantine and the retry need."""

    index: int
    sequence_number: str
    seq_key: int
    shard_id: str | None
    partition_key: str | None
    arrival: float | None
    data: str
    raw: bytes | None = None  # the decoded bytes; None while undecoded or not base64


def item_from_record(index: int, record: Any) -> Item:
    """Pull the fields we use out of one `event["Records"][i]` entry.

    Tolerant on purpose: a malformed event entry must still become an Item that can be
    quarantined (with reason `not_base64` or `empty`), never an exception that fails the
    whole batch.
    """
    record = record if isinstance(record, dict) else {}
    kinesis = record.get("kinesis")
    kinesis = kinesis if isinstance(kinesis, dict) else {}
    seq = kinesis.get("sequenceNumber")
    seq = seq if isinstance(seq, str) else ""
    event_id = record.get("eventID")
    shard = event_id.split(":", 1)[0] if isinstance(event_id, str) and ":" in event_id else None
    arrival = kinesis.get("approximateArrivalTimestamp")
    if isinstance(arrival, bool) or not isinstance(arrival, int | float):
        arrival = None
    data = kinesis.get("data")
    key = kinesis.get("partitionKey")
    return Item(
        index=index,
        sequence_number=seq,
        seq_key=int(seq) if seq.isdigit() else index,
        shard_id=shard,
        partition_key=key if isinstance(key, str) else None,
        arrival=float(arrival) if arrival is not None else None,
        data=data if isinstance(data, str) else "",
    )


def decode(item: Item) -> dict[str, Any] | Problem:
    """base64 -> bytes -> UTF-8 -> JSON object. Sets `item.raw` for the quarantine."""
    try:
        raw = binascii.a2b_base64(item.data, strict_mode=True)
    except (binascii.Error, ValueError) as exc:
        return Problem(reasons.NOT_BASE64, f"data is not valid base64 ({exc})")
    item.raw = raw
    if len(raw) > MAX_PAYLOAD_BYTES:
        return Problem(reasons.TOO_LARGE, f"{len(raw)} bytes > {MAX_PAYLOAD_BYTES}")
    try:
        # utf-8-sig: a leading byte-order mark is legal UTF-8 that json.loads refuses.
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return Problem(reasons.NOT_UTF8, f"byte {exc.start} is not UTF-8 ({exc.reason})")
    return parse_json(text)


def parse_json(text: str) -> dict[str, Any] | Problem:
    """JSON text -> object; NaN/Infinity parse (and fail later, per measure)."""
    if not text.strip():
        return Problem(reasons.EMPTY, "the payload is empty")
    try:
        body = json.loads(text)
    except (ValueError, RecursionError) as exc:
        return Problem(reasons.MALFORMED_JSON, _short(str(exc)))
    if not isinstance(body, dict):
        return Problem(reasons.NOT_AN_OBJECT, f"the payload is a JSON {_json_type(body)}")
    duplicate = _has_duplicate_keys(text, body)
    if duplicate is not None:
        return Problem(reasons.DUPLICATE_KEYS, f"key {_short(repr(duplicate))} appears twice")
    return body


def _has_duplicate_keys(text: str, body: dict[str, Any]) -> str | None:
    """The first repeated key at any depth, or None.

    json.loads keeps the last of two equal keys silently. Re-parsing every message with
    an object_pairs_hook would double the parse cost, so do it only when needed: the
    count of `"<ws>:` sequences is >= the number of keys written in the text (a string
    value can add matches, never remove them), which is >= len(body). Equality therefore
    proves every key in the text is a distinct top-level key.
    """
    if len(_KEY_END.findall(text)) == len(body):
        return None
    found: list[str] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        obj: dict[str, Any] = {}
        for key, value in items:
            if key in obj and not found:
                found.append(key)
            obj[key] = value
        return obj

    json.loads(text, object_pairs_hook=pairs)
    return found[0] if found else None


def _json_type(value: Any) -> str:
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if value is None:
        return "null"
    return "number"


def _short(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
