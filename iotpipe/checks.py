"""Field checkers for the config: each returns the cleaned value or raises :class:`Bad`
with what is allowed, which the config loader turns into "file:line: key: message".

Kept apart from ``config.py`` so the dataclasses there read as the schema they are.
"""

from __future__ import annotations

import math
import re
import reprlib
from collections.abc import Callable
from typing import Any

from lambda_handler.contract import (
    BASE_DIMENSIONS,
    MAX_DIMENSION_NAME_BYTES,
    MULTI_MEASURE_NAME,
    RESERVED_NAMES,
    RESERVED_PREFIXES,
    reserved_by_timestream,
)

TOPIC_SEGMENT_RE = re.compile(r"^[A-Za-z0-9_.-]+$")
MEASURE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,255}$")
TAG_KEY_RE = re.compile(r"^[A-Za-z0-9 _.:/=+@-]{1,128}$")
TAG_VALUE_RE = re.compile(r"^[A-Za-z0-9 _.:/=+@-]{0,256}$")
# Names a measure may not take whatever their case: Timestream's columns and the name the
# multi-measure records carry. The function's own rules (the contract) apply on top.
RESERVED_MEASURES = frozenset({*RESERVED_NAMES, MULTI_MEASURE_NAME})
_NOT_RESERVED = (
    f"not starting with {' or '.join(RESERVED_PREFIXES)} "
    f"and not a dimension name ({', '.join(BASE_DIMENSIONS)})"
)
SHOWN_CHARS = 60

_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = SHOWN_CHARS
_REPR.maxlist = _REPR.maxdict = _REPR.maxtuple = _REPR.maxset = 5
_REPR.maxlevel = 2


def shown(v: Any) -> str:
    """A value as it may appear in an error: cut to a line (a 50 MB value, say from an
    environment variable, is not echoed back) and safe for integers too long to print."""
    if isinstance(v, int) and not isinstance(v, bool) and v.bit_length() > 200:
        return f"an integer of about {int(v.bit_length() * 0.30103):,} digits"
    if isinstance(v, str) and len(v) > SHOWN_CHARS:
        return f"{v[: SHOWN_CHARS - 5]!r}... ({len(v):,} characters)"
    return _REPR.repr(v)


def cut(text: str, limit: int = SHOWN_CHARS) -> str:
    """Plain text (a key, say) cut to ``limit`` characters."""
    return text if len(text) <= limit else f"{text[: limit - 3]}... ({len(text):,} characters)"


class Bad(Exception):
    """A value that is not allowed; the message says what is."""


Checker = Callable[[Any], Any]


def integer(lo: int, hi: int, also: tuple[int, ...] = ()) -> Checker:
    def check(v: Any) -> int:
        allowed = f"an integer from {lo} to {hi}" + "".join(f" or {a}" for a in also)
        if isinstance(v, bool) or not isinstance(v, int):
            raise Bad(f"{shown(v)} is not an integer; allowed: {allowed}")
        if not (lo <= v <= hi or v in also):
            raise Bad(f"{shown(v)} is out of range; allowed: {allowed}")
        return v

    return check


def integer_in(*options: int) -> Checker:
    def check(v: Any) -> int:
        if isinstance(v, bool) or not isinstance(v, int) or v not in options:
            raise Bad(f"{shown(v)} is not allowed; allowed: {', '.join(map(str, options))}")
        return v

    return check


def number(v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise Bad(f"{shown(v)} is not a finite number")
    try:
        value = float(v)
    except OverflowError:  # an integer beyond 1.8e308
        value = math.inf
    if not math.isfinite(value):
        raise Bad(f"{shown(v)} is not a finite number")
    return value


def boolean(v: Any) -> bool:
    if not isinstance(v, bool):
        raise Bad(f"{shown(v)} is not a boolean; allowed: true or false")
    return v


def choice(*options: str) -> Checker:
    def check(v: Any) -> str:
        if not isinstance(v, str) or v not in options:
            raise Bad(f"{shown(v)} is not allowed; allowed: {', '.join(options)}")
        return v

    return check


def text(pattern: re.Pattern[str], allowed: str) -> Checker:
    def check(v: Any) -> str:
        if not isinstance(v, str) or not pattern.fullmatch(v):
            raise Bad(f"{shown(v)} is not allowed; allowed: {allowed}")
        return v

    return check


def topic(v: Any) -> str:
    """An MQTT topic filter that is safe inside the rule's single-quoted FROM clause."""
    if not isinstance(v, str) or not v or len(v.encode()) > 256:
        raise Bad(f"{shown(v)} is not a topic filter of 1-256 bytes")
    segments = v.split("/")
    if len(segments) > 8:
        raise Bad(f"{shown(v)} has more than 8 levels (AWS IoT allows 7 slashes)")
    for i, seg in enumerate(segments):
        if seg == "#" and i == len(segments) - 1:
            continue
        if seg == "+" or TOPIC_SEGMENT_RE.fullmatch(seg):
            continue
        raise Bad(
            f"{shown(v)}: level {shown(seg)} is not allowed; allowed per level: letters, digits, _ . - "
            "or a whole-level + wildcard, and # as the last level"
        )
    if v.startswith("$"):
        raise Bad(f"{shown(v)}: topics starting with $ are reserved by AWS IoT")
    return v


def measure_name(v: Any) -> str:
    """A sensor's name: a Timestream measure name that the function's settings accept."""
    if not isinstance(v, str) or not MEASURE_RE.fullmatch(v) or v.lower() in RESERVED_MEASURES:
        raise Bad(
            "not a usable Timestream measure name; allowed: letters, digits, _ "
            "(not starting with a digit), not time/measure_value/measure_name/metrics"
        )
    if reserved_by_timestream(v) or v in BASE_DIMENSIONS:
        raise Bad(f"reserved name; allowed: a name {_NOT_RESERVED}")
    return v


def attribute_name(v: Any) -> str:
    """A device attribute's name: it becomes a dimension, so Timestream's dimension rules."""
    if not isinstance(v, str) or not MEASURE_RE.fullmatch(v) or v in RESERVED_MEASURES:
        raise Bad("attribute names allow A-Z a-z 0-9 _")
    if reserved_by_timestream(v) or v in BASE_DIMENSIONS:
        raise Bad(f"reserved name; allowed: a name {_NOT_RESERVED}")
    if len(v) > MAX_DIMENSION_NAME_BYTES:  # ASCII: characters are bytes
        raise Bad(f"attribute names allow at most {MAX_DIMENSION_NAME_BYTES} characters")
    return v


def tag(key: Any, value: Any) -> str:
    """A tag's value as AWS takes it; the key is checked too (``aws:`` and ours are reserved)."""
    text = "" if value is None else str(value)
    if (
        not isinstance(key, str)
        or not TAG_KEY_RE.fullmatch(key)
        or key.lower().startswith(("aws:", "iotpipe:"))
    ):
        raise Bad(
            "tag keys allow 1-128 of letters, digits, space "
            "and _ . : / = + @ -; aws: and iotpipe: are reserved"
        )
    if not TAG_VALUE_RE.fullmatch(text):
        raise Bad("tag values allow 0-256 of letters, digits, space and _ . : / = + @ -")
    return text
