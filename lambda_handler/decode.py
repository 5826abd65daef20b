"""Kinesis record -> JSON object, or the reason it is not one.

Why so strict: a message that is not unambiguously one JSON object cannot be trusted to
mean what a device meant (a repeated key has two values; an array has no deviceId), so
it is quarantined with its reason instead of being guessed at or dropped.
"""

from __future__ import annotations

import binascii
import json
from dataclasses import dataclass
from typing import Any

from . import reasons
from .reasons import Problem

MAX_PAYLOAD_BYTES = 1_048_576  # Kinesis' default maximum record size (1 MiB)


@dataclass(slots=True)
class Item:
    """One Kinesis record as received, with what the quarantine and the retry need."""

    index: int
    sequence_number: str
    data: str
    arrival: float | None = None
    partition_key: str | None = None
    event_id: str | None = None
    raw: bytes | None = None  # the decoded bytes; None while undecoded or not base64

    @property
    def seq_key(self) -> int:
        """Sequence numbers are decimal strings: compare them as integers."""
        seq = self.sequence_number
        return int(seq) if seq.isdigit() else self.index

    @property
    def shard_id(self) -> str | None:
        """From the event's `eventID`, `shardId-000000000000:<sequence number>`."""
        event_id = self.event_id
        if isinstance(event_id, str) and ":" in event_id:
            return event_id.split(":", 1)[0]
        return None


def item_from_record(index: int, record: Any) -> Item:
    """Pull the fields we use out of one `event["Records"][i]` entry.

    Tolerant on purpose: a malformed event entry must still become an Item that can be
    quarantined (with reason `not_base64` or `empty`), never an exception that fails the
    whole batch.
    """
    try:
        kinesis = record["kinesis"]
        seq, data = kinesis["sequenceNumber"], kinesis["data"]
        arrival = kinesis.get("approximateArrivalTimestamp")
        if type(seq) is str and type(data) is str and type(arrival) is float:
            return Item(
                index, seq, data, arrival, kinesis.get("partitionKey"), record.get("eventID")
            )
    except (KeyError, TypeError, AttributeError):
        pass
    return _tolerant_item(index, record)


def _tolerant_item(index: int, record: Any) -> Item:
    """The slow path for entries that are not shaped like Lambda's Kinesis records."""
    record = record if isinstance(record, dict) else {}
    kinesis = record.get("kinesis")
    kinesis = kinesis if isinstance(kinesis, dict) else {}
    seq, data = kinesis.get("sequenceNumber"), kinesis.get("data")
    arrival = kinesis.get("approximateArrivalTimestamp")
    if isinstance(arrival, bool) or not isinstance(arrival, int | float):
        arrival = None
    key, event_id = kinesis.get("partitionKey"), record.get("eventID")
    return Item(
        index=index,
        sequence_number=seq if isinstance(seq, str) else "",
        data=data if isinstance(data, str) else "",
        arrival=float(arrival) if arrival is not None else None,
        partition_key=key if isinstance(key, str) else None,
        event_id=event_id if isinstance(event_id, str) else None,
    )


def decode(item: Item) -> dict[str, Any] | Problem:
    """base64 -> bytes -> UTF-8 -> JSON object. Sets `item.raw` for the quarantine."""
    try:
        raw = binascii.a2b_base64(item.data, strict_mode=True)
    except (binascii.Error, ValueError) as exc:
        return Problem(reasons.NOT_BASE64, f"data is not valid base64 ({exc})")
    item.raw = raw
    if not raw:
        return Problem(reasons.EMPTY, "the payload is empty")
    if len(raw) > MAX_PAYLOAD_BYTES:
        return Problem(reasons.TOO_LARGE, f"{len(raw)} bytes > {MAX_PAYLOAD_BYTES}")
    try:
        # A leading byte-order mark is legal UTF-8 that json refuses: skip it.
        text = (raw[3:] if raw[:3] == b"\xef\xbb\xbf" else raw).decode("utf-8")
    except UnicodeDecodeError as exc:
        return Problem(reasons.NOT_UTF8, f"byte {exc.start} is not UTF-8 ({exc.reason})")
    return parse_json(text)


def parse_json(text: str) -> dict[str, Any] | Problem:
    """JSON text -> object; NaN/Infinity parse (and fail later, per measure)."""
    try:
        body = _loads(text)
    except DuplicateKey as dup:
        return Problem(reasons.DUPLICATE_KEYS, f"key {_short(repr(dup.key))} appears twice")
    except (ValueError, RecursionError) as exc:
        if not text.strip():
            return Problem(reasons.EMPTY, "the payload is only whitespace")
        return Problem(reasons.MALFORMED_JSON, _short(str(exc)))
    if type(body) is not dict:
        return Problem(reasons.NOT_AN_OBJECT, f"the payload is a JSON {json_type(body)}")
    return body


class DuplicateKey(Exception):
    """A JSON object repeats `key`: json.loads would silently keep the last value."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """object_pairs_hook that refuses repeated keys at any depth (costs ~5 % of a parse)."""
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise DuplicateKey(key)
            seen.add(key)
    return obj


_DECODER = json.JSONDecoder(object_pairs_hook=_unique_pairs)
_SCAN = _DECODER.scan_once


def _loads(text: str) -> Any:
    """_DECODER.decode without its two whitespace regex passes when there is no
    surrounding whitespace (the usual device payload); otherwise the full decode, which
    also produces the standard error messages."""
    try:
        value, end = _SCAN(text, 0)
    except StopIteration:
        return _DECODER.decode(text)
    if end != len(text):
        return _DECODER.decode(text)
    return value


def json_type(value: Any) -> str:
    """The JSON name of a parsed value's type, for error details."""
    if isinstance(value, dict):
        return "object"
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
