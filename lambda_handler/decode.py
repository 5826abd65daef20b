"""Kinesis record -> JSON object, or the reason it is not one.

Why so strict: a message that is not unambiguously one JSON object cannot be trusted to
mean what a device meant (a repeated key has two values; an array has no deviceId), so
it is quarantined with its reason instead of being guessed at or dropped.
"""

from __future__ import annotations

import binascii
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from . import reasons
from .reasons import Problem
from .text import clip

MAX_PAYLOAD_BYTES = 1_048_576  # Kinesis' default maximum record size (1 MiB)
MAX_SEQUENCE_CHARS = 129  # Kinesis sequence numbers: 1-129 digits
_MAX_DETAIL = 200  # characters of a parser's message echoed in a problem's detail


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
        seq = self.sequence_number  # Kinesis' are 1-129 ASCII digits; others sort by index
        return int(seq) if seq.isascii() and seq.isdigit() and len(seq) < 4000 else self.index

    @property
    def shard_id(self) -> str | None:
        """From the event's `eventID`, `shardId-000000000000:<sequence number>`."""
        event_id = self.event_id
        if isinstance(event_id, str) and ":" in event_id:
            return event_id.split(":", 1)[0]
        return None


class MalformedEvent(ValueError):
    """The invocation event is not what a Kinesis event source mapping sends.

    Raised, not quarantined: a Kinesis mapping always sends `Records[].kinesis.data`
    and `.sequenceNumber`, so an event without them comes from a direct invoke or from
    another trigger (SQS, SNS, ...). Raising makes the caller see the error and makes
    any event source retry and then route the batch to its failure destination;
    answering "success" would let it delete or skip records this function never read.
    """


def items_of(event: Any) -> list[Item]:
    """`event["Records"]` as Items; MalformedEvent (naming what is wrong) otherwise."""
    if not isinstance(event, Mapping):
        raise MalformedEvent(f"the event is {_kind(event)}, not an object with Records")
    if "Records" not in event:
        raise MalformedEvent("the event has no Records")
    records = event["Records"]
    if not isinstance(records, list):
        raise MalformedEvent(f"Records is {_kind(records)}, not an array")
    return [item_from_record(i, r) for i, r in enumerate(records)]


def item_from_record(index: int, record: Any) -> Item:
    """Pull the fields we use out of one `event["Records"][i]` entry.

    Strict about what identifies the record (its data and sequence number: without
    them it can be neither decoded nor reported for retry), tolerant about the rest.
    """
    try:
        kinesis = record["kinesis"]
        seq, data = kinesis["sequenceNumber"], kinesis["data"]
        arrival = kinesis.get("approximateArrivalTimestamp")
        if (
            type(seq) is str
            and 0 < len(seq) <= MAX_SEQUENCE_CHARS
            and type(data) is str
            and type(arrival) is float
            and math.isfinite(arrival)
        ):
            return Item(
                index, seq, data, arrival, kinesis.get("partitionKey"), record.get("eventID")
            )
    except (KeyError, TypeError, AttributeError):
        pass
    return _checked_item(index, record)


def _checked_item(index: int, record: Any) -> Item:
    """The slow path: say what is missing, or accept odd types for the optional fields."""
    where = f"Records[{index}]"
    if not isinstance(record, Mapping):
        raise MalformedEvent(f"{where} is {_kind(record)}, not an object")
    kinesis = record.get("kinesis")
    if not isinstance(kinesis, Mapping):
        source = record.get("eventSource")
        hint = f" (eventSource {clip(source, 40)!r})" if isinstance(source, str) else ""
        raise MalformedEvent(f"{where}.kinesis is missing or not an object{hint}")
    seq, data = kinesis.get("sequenceNumber"), kinesis.get("data")
    if not isinstance(data, str):
        raise MalformedEvent(f"{where}.kinesis.data is {_kind(data)}, not a base64 string")
    if not isinstance(seq, str) or not seq:
        raise MalformedEvent(f"{where}.kinesis.sequenceNumber is {_kind(seq)}, not a string")
    if len(seq) > MAX_SEQUENCE_CHARS:
        raise MalformedEvent(f"{where}.kinesis.sequenceNumber is longer than Kinesis' 129 digits")
    key, event_id = kinesis.get("partitionKey"), record.get("eventID")
    return Item(
        index=index,
        sequence_number=seq,
        data=data,
        arrival=_seconds(kinesis.get("approximateArrivalTimestamp")),
        partition_key=key if isinstance(key, str) else None,
        event_id=event_id if isinstance(event_id, str) else None,
    )


def _seconds(value: Any) -> float | None:
    """An arrival time in epoch seconds, or None when absent or not a finite number."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        seconds = float(value)
    except OverflowError:  # an int of more than 308 digits
        return None
    return seconds if math.isfinite(seconds) else None


def _kind(value: Any) -> str:
    """How an event part is described in MalformedEvent messages (never its content)."""
    if value is None:
        return "missing or null"
    if isinstance(value, str):
        return "an empty string" if not value else "a string"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    return {dict: "an object", list: "an array", int: "a number", float: "a number"}.get(
        type(value), f"a {type(value).__name__}"
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
        return Problem(
            reasons.DUPLICATE_KEYS, f"key {clip(repr(dup.key), _MAX_DETAIL)} appears twice"
        )
    except (ValueError, RecursionError) as exc:
        if not text.strip():
            return Problem(reasons.EMPTY, "the payload is only whitespace")
        return Problem(reasons.MALFORMED_JSON, clip(str(exc), _MAX_DETAIL))
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
# typeshed does not declare scan_once, the attribute JSONDecoder.__init__ sets (the C
# scanner when available): a gap in the standard library's stubs, not in this code.
_SCAN: Callable[[str, int], tuple[Any, int]] = _DECODER.scan_once  # type: ignore[attr-defined]


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
