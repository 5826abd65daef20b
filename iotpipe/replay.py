"""``send-test --file``: captured messages, one per line, read so that no file can hurt.

A line is read with a bound (the largest record the destination takes: 1 MiB for a Kinesis
record, 128 KiB for an MQTT message to AWS IoT Core), so ``/dev/zero`` or a file without
newlines is an error after one bounded read, not a MemoryError; a line that is not UTF-8 is
an error naming its line, not a UnicodeDecodeError. A regular file is checked whole before
anything is sent (:func:`check_file`), so a bad line late in the file touches nothing; a
pipe can only be read once, so its lines are checked as they are sent.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from iotpipe.errors import UsageError

KINESIS_RECORD_BYTES = 1024 * 1024
IOT_MESSAGE_BYTES = 128 * 1024


class BadLine(UsageError):
    """A line of ``--file`` that cannot be sent; the message names the file and line."""


def line_limit(via: str) -> tuple[int, str]:
    """The largest line ``via`` can carry, and what sets that limit."""
    if via in ("iot", "mqtt"):
        return IOT_MESSAGE_BYTES, "128 KiB, the most an MQTT message to AWS IoT Core holds"
    return KINESIS_RECORD_BYTES, "1 MiB, the most a Kinesis record holds"


def lines(fh: BinaryIO, name: str, via: str) -> Iterator[tuple[int, str]]:
    """(line number, text without its line end) for each line; :class:`BadLine` at the first
    line that is too long or not UTF-8."""
    limit, why = line_limit(via)
    number = 0
    while True:
        raw = fh.readline(limit + 2)  # room for the limit plus "\r\n"
        if not raw:
            return
        number += 1
        text = raw.rstrip(b"\r\n") if raw.endswith(b"\n") else raw
        if len(text) > limit:
            raise BadLine(
                f"{name}:{number}: the line is longer than {why}; nothing of it was sent. "
                "--file replays one JSON message per line."
            )
        try:
            yield number, text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BadLine(
                f"{name}:{number}: not UTF-8 text (byte 0x{text[exc.start]:02x} at column "
                f"{exc.start + 1}); --file replays UTF-8 JSON lines (convert a Latin-1 "
                "capture with: iconv -f latin1 -t utf-8)"
            ) from None


def replay(numbered: Iterator[tuple[int, str]]) -> Iterator[tuple[str, bytes, str]]:
    """(partition key, data, timestamp) per non-blank line, the data byte for byte.

    The partition key is the line's ``deviceId`` when it has one, so each device keeps its
    order on one shard; lines that are not JSON objects are sent as captured, under the key
    ``replay``.
    """
    for _, text in numbered:
        if not text.strip():
            continue
        device = "replay"
        try:
            obj = json.loads(text)
        except (ValueError, RecursionError):  # not JSON, too deeply nested, 5,000 digits
            obj = None
        if isinstance(obj, dict) and isinstance(obj.get("deviceId"), str) and obj["deviceId"]:
            device = obj["deviceId"][:256]
        ts = str(obj.get("timestamp", ""))[:64] if isinstance(obj, dict) else ""
        yield device, text.encode(), ts


def is_regular(path: Path) -> bool:
    try:
        return path.is_file() and not path.is_fifo()
    except OSError:
        return False


def check_file(path: Path, via: str, limit: int | None) -> int | None:
    """Read a regular file once, before sending: the number of messages it holds (at most
    ``limit``), or :class:`BadLine`. None for a pipe or device, checked as it is sent."""
    if not is_regular(path):
        return None
    count = 0
    with path.open("rb") as fh:
        for _, text in lines(fh, str(path), via):
            if text.strip():
                count += 1
                if limit is not None and count >= limit:
                    break
    return count
