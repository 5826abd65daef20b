"""Field checkers for the config: each returns the cleaned value or raises :class:`Bad`
with what is allowed, which the config loader turns into "file:line: key: message".

Kept apart from ``config.py`` so the dataclasses there read as the schema they are.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

TOPIC_SEGMENT_RE = re.compile(r"^[A-Za-z0-9_.-]+$")


class Bad(Exception):
    """A value that is not allowed; the message says what is."""


Check = Callable[[Any], Any]


def integer(lo: int, hi: int, also: tuple[int, ...] = ()) -> Check:
    def check(v: Any) -> int:
        allowed = f"an integer from {lo} to {hi}" + "".join(f" or {a}" for a in also)
        if isinstance(v, bool) or not isinstance(v, int):
            raise Bad(f"{v!r} is not an integer; allowed: {allowed}")
        if not (lo <= v <= hi or v in also):
            raise Bad(f"{v} is out of range; allowed: {allowed}")
        return v

    return check


def integer_in(*options: int) -> Check:
    def check(v: Any) -> int:
        if isinstance(v, bool) or v not in options:
            raise Bad(f"{v!r} is not allowed; allowed: {', '.join(map(str, options))}")
        return v

    return check


def number(v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise Bad(f"{v!r} is not a finite number")
    return float(v)


def boolean(v: Any) -> bool:
    if not isinstance(v, bool):
        raise Bad(f"{v!r} is not a boolean; allowed: true or false")
    return v


def choice(*options: str) -> Check:
    def check(v: Any) -> str:
        if v not in options:
            raise Bad(f"{v!r} is not allowed; allowed: {', '.join(options)}")
        return v

    return check


def text(pattern: re.Pattern[str], allowed: str) -> Check:
    def check(v: Any) -> str:
        if not isinstance(v, str) or not pattern.fullmatch(v):
            raise Bad(f"{v!r} is not allowed; allowed: {allowed}")
        return v

    return check


def topic(v: Any) -> str:
    """An MQTT topic filter that is safe inside the rule's single-quoted FROM clause."""
    if not isinstance(v, str) or not v or len(v.encode()) > 256:
        raise Bad(f"{v!r} is not a topic filter of 1-256 bytes")
    segments = v.split("/")
    if len(segments) > 8:
        raise Bad(f"{v!r} has more than 8 levels (AWS IoT allows 7 slashes)")
    for i, seg in enumerate(segments):
        if seg == "#" and i == len(segments) - 1:
            continue
        if seg == "+" or TOPIC_SEGMENT_RE.fullmatch(seg):
            continue
        raise Bad(
            f"{v!r}: level {seg!r} is not allowed; allowed per level: letters, digits, _ . - "
            "or a whole-level + wildcard, and # as the last level"
        )
    if v.startswith("$"):
        raise Bad(f"{v!r}: topics starting with $ are reserved by AWS IoT")
    return v
