"""Validation rules: identity, time and measures, each a small pure function.

Why per measure: one broken humidity probe must not discard the temperature that came
in the same message. Valid measures are written; invalid ones are quarantined with a
reason, so both the data and the defect stay visible.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from . import decode, enrich, reasons
from .contract import MAX_MAGNETIC_RETENTION_DAYS
from .decode import Item
from .model import Identity, Reading, Rejection, make_identity
from .reasons import Problem
from .settings import SensorRule, Settings
from .text import clip

DEVICE_ID = re.compile(r"[A-Za-z0-9_.:@-]{1,128}", re.ASCII)  # IoT thing names, plus . @
# One way to match each string (no nested quantifiers): linear even when it fails.
NUMERIC = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)
MAX_NUMERIC_STRING = 100  # characters; longer strings are not numeric readings
EPOCH = re.compile(r"\d{1,15}(?:\.\d+)?", re.ASCII)
FUTURE_LIMIT_MS = 15 * 60 * 1000  # Timestream rejects records > 15 min in the future
SECONDS_BELOW = 1e11  # epoch numbers below this are seconds (1e11 s is the year 5138)
MILLIS_BELOW = 1e14  # ... below this milliseconds; larger is not a timestamp we accept
_MAX_SHOWN = 64  # characters of a bad value echoed in a problem's detail
HOUR_MS, DAY_MS = 3_600_000, 86_400_000
_EPOCH0 = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


MAX_CACHE = 50_000  # memo entries per container before the memo is cleared
MAX_MEMO_KEY = 256  # characters per key part; longer identities are checked, not memoised


def evaluate(item: Item, settings: Settings, now_ms: int) -> Reading | Rejection:
    """Decode and check one record; the first failing rule decides the reason."""
    body = decode.decode(item)
    if type(body) is Problem:
        return Rejection(item, body)
    identity = identify(body, settings)
    if type(identity) is Problem:
        shown = body.get("deviceId")
        return Rejection(item, identity, shown if type(shown) is str else None)
    device_id = identity.device_id
    time_ms = choose_time(body.get("timestamp"), item.arrival, settings, now_ms)
    if type(time_ms) is Problem:
        return Rejection(item, time_ms, device_id)
    valid, rejected = check_measures(body, settings)
    if not valid:
        if rejected:
            first = next(iter(rejected.values()))
            return Rejection(item, first, device_id, rejected)
        names = ", ".join(rule.name for rule in settings.sensors)
        problem = Problem(reasons.NO_VALID_MEASURES, f"none of the measures {names}")
        return Rejection(item, problem, device_id)
    return Reading(item, identity, time_ms, valid, rejected)


def identify(body: dict[str, Any], settings: Settings) -> Identity | Problem:
    """deviceId check plus enrichment, memoised per (deviceId, location, deviceType).

    A fleet repeats the same few thousand identities in every batch; remembering the
    answer saves the regex and the registry lookup on all but the first message.
    """
    device, location, kind = body.get("deviceId"), body.get("location"), body.get("deviceType")
    key = (
        device,
        location if type(location) is str else None,
        kind if type(kind) is str else None,
    )
    cache = settings.cache
    try:
        return cache[key]
    except KeyError:
        pass
    except TypeError:  # an unhashable deviceId (list, object): no memo
        return check_device_id(device)  # type: ignore[return-value]
    device_id = check_device_id(device)
    if type(device_id) is Problem:
        answer: Identity | Problem = device_id
    else:
        dims = enrich.dimensions(body, device_id, settings)
        answer = dims if type(dims) is Problem else make_identity(dims)
    if len(cache) >= MAX_CACHE:
        cache.clear()
    if all(type(part) is not str or len(part) <= MAX_MEMO_KEY for part in key):
        cache[key] = answer  # never a 1 MiB deviceId: 50,000 of them would not fit
    return answer


def check_device_id(value: Any) -> str | Problem:
    """`deviceId` must be a short printable ASCII identifier: it becomes a dimension,
    a partition key and a log field, where control characters and look-alike unicode
    would split one device into several series."""
    if value is None or value == "":
        return Problem(reasons.MISSING_DEVICE_ID, "deviceId is missing or empty")
    if not isinstance(value, str):
        kind = "boolean" if isinstance(value, bool) else type(value).__name__
        return Problem(reasons.INVALID_DEVICE_ID, f"deviceId must be a string, not {kind}")
    if DEVICE_ID.fullmatch(value) is None:
        shown = value if len(value) <= 64 else value[:61] + "..."
        return Problem(
            reasons.INVALID_DEVICE_ID,
            f"deviceId {shown!r} is not 1-128 characters of A-Z a-z 0-9 _ . : @ -",
        )
    return value


def check_measures(
    body: dict[str, Any], settings: Settings
) -> tuple[dict[str, float], dict[str, Problem]]:
    """Split the configured measures present in `body` into valid values and problems.

    A measure that is absent or JSON null is not a reading; fields that are not
    configured measures are ignored (the IoT rule adds some, e.g. processing_time).
    """
    valid: dict[str, float] = {}
    rejected: dict[str, Problem] = {}
    for rule in settings.sensors:
        value = body.get(rule.name)
        if value is None:
            continue
        # Fast path for the common case, a float inside the range (NaN compares False).
        if type(value) is float and (
            rule.lo <= value <= rule.hi if rule.inclusive else rule.lo < value < rule.hi
        ):
            valid[rule.name] = value
            continue
        checked = check_value(rule, value, settings.numeric_strings)
        if type(checked) is Problem:
            rejected[rule.name] = checked
        else:
            valid[rule.name] = checked
    return valid, rejected


def check_value(rule: SensorRule, value: Any, numeric_strings: bool) -> float | Problem:
    """A finite number inside the rule's range; bool and NaN/Infinity are not numbers.

    Every detail starts with the measure's name: the quarantine's `detail` (shown by
    `iotpipe query quality`) and the log line must say which measure was refused.
    """
    name = rule.name
    kind = type(value)
    if kind is float:
        number = value
    elif kind is int:
        try:
            number = float(value)
        except OverflowError:
            return _nan(name, "integer too large for a double")
    elif kind is bool:
        return _nan(name, f"boolean {str(value).lower()} is not a number")
    elif kind is str:
        if not numeric_strings:
            return _nan(
                name, f"string {clip(value, _MAX_SHOWN)!r} (numeric strings are not accepted)"
            )
        # Length first: no sensor writes a 100-digit number, and a bound keeps the
        # regex and float() linear on a 1 MiB string.
        if len(value) > MAX_NUMERIC_STRING or NUMERIC.fullmatch(value) is None:
            return _nan(name, f"string {clip(value, _MAX_SHOWN)!r} is not numeric")
        number = float(value)
    else:
        return _nan(name, f"a JSON {decode.json_type(value)} is not a number")
    if not math.isfinite(number):
        return _nan(name, f"{number!r} is not a finite number")
    violation = rule.violation(number)
    if violation is not None:
        return Problem(reasons.OUT_OF_RANGE, f"{name} {violation}", name)
    return number


def _nan(name: str, why: str) -> Problem:
    return Problem(reasons.NOT_A_NUMBER, f"{name}: {why}", name)


def parse_timestamp(value: Any) -> int | Problem:
    """ISO-8601 with `Z` or an offset, or epoch seconds / milliseconds -> epoch ms.

    A time without an offset is refused: guessing UTC for a device in another zone
    would silently shift its readings by hours.
    """
    if type(value) is not str:
        if isinstance(value, bool):
            return Problem(reasons.INVALID_TIMESTAMP, "timestamp is a boolean")
        if isinstance(value, int | float):
            try:
                return _epoch_ms(float(value))
            except OverflowError:  # an int of more than 308 digits
                return Problem(
                    reasons.INVALID_TIMESTAMP, "epoch integer too large for a double (>= 1.8e308)"
                )
        kind = decode.json_type(value)
        return Problem(reasons.INVALID_TIMESTAMP, f"timestamp is a JSON {kind}")
    if "-" not in value and EPOCH.fullmatch(value):  # ISO dates always contain "-"
        return _epoch_ms(float(value))
    try:
        if "\x00" in value:  # CPython's parser stops at a NUL and ignores what follows
            raise ValueError(value)
        moment = datetime.fromisoformat(value)
    except ValueError:
        return Problem(reasons.INVALID_TIMESTAMP, f"{clip(value, _MAX_SHOWN)!r} is not ISO-8601")
    if moment.tzinfo is None:
        return Problem(
            reasons.INVALID_TIMESTAMP,
            f"{clip(value, _MAX_SHOWN)!r} has no UTC offset (add Z or +hh:mm)",
        )
    return (moment - _EPOCH0) // _MS


def choose_time(
    timestamp: Any, arrival: float | None, settings: Settings, now_ms: int
) -> int | Problem:
    """The message's own time, else Kinesis' arrival time; never the processing time,
    so a retried batch writes identical records (Timestream accepts identical rewrites)."""
    if timestamp is None:
        if arrival is None:
            return Problem(reasons.INVALID_TIMESTAMP, "no timestamp and no arrival time")
        time_ms = round(arrival * 1000)
    else:
        parsed = parse_timestamp(timestamp)
        if isinstance(parsed, Problem):
            return parsed
        time_ms = parsed
    return check_window(time_ms, settings, now_ms)


def check_window(time_ms: int, settings: Settings, now_ms: int) -> int | Problem:
    """Timestream's window: not over 15 min ahead, not older than the store that would
    take the record (memory retention, or magnetic retention when magnetic writes are
    on), never before 1970 (its Time counts from the Unix epoch). A record outside it
    would be rejected for good: quarantining it keeps the reason and the payload."""
    if time_ms > now_ms + FUTURE_LIMIT_MS:
        return Problem(
            reasons.TIMESTAMP_IN_FUTURE,
            f"{iso(time_ms)} is more than 15 min after now ({iso(now_ms)})",
        )
    if settings.magnetic_writes:
        oldest = now_ms - (settings.magnetic_retention_days or MAX_MAGNETIC_RETENTION_DAYS) * DAY_MS
    else:
        oldest = now_ms - settings.memory_retention_hours * HOUR_MS
    if time_ms >= oldest and time_ms >= 0:
        return time_ms
    if time_ms < oldest:
        return Problem(
            reasons.TIMESTAMP_TOO_OLD, f"{iso(time_ms)} is older than {_retention(settings)}"
        )
    return Problem(
        reasons.TIMESTAMP_TOO_OLD,
        f"{iso(time_ms)} is before 1970-01-01T00:00:00.000Z (Timestream's time starts there)",
    )


def _retention(settings: Settings) -> str:
    if not settings.magnetic_writes:
        hours = settings.memory_retention_hours
        return f"the memory store's {hours} h and magnetic writes are off"
    days = settings.magnetic_retention_days
    if days is None:
        return f"Timestream's longest magnetic retention ({MAX_MAGNETIC_RETENTION_DAYS} days)"
    return f"the magnetic store's {days} days"


def iso(epoch_ms: int) -> str:
    """Epoch ms as ISO-8601 UTC for messages; the raw number when out of datetime's range."""
    try:
        return (_EPOCH0 + epoch_ms * _MS).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    except OverflowError:
        return f"epoch ms {epoch_ms}"


def _epoch_ms(value: float) -> int | Problem:
    if not math.isfinite(value) or value <= 0:
        return Problem(reasons.INVALID_TIMESTAMP, f"epoch {value!r} is not a positive number")
    if value < SECONDS_BELOW:
        return round(value * 1000)
    if value < MILLIS_BELOW:
        return round(value)
    return Problem(reasons.INVALID_TIMESTAMP, f"epoch {value!r} is neither seconds nor ms")
