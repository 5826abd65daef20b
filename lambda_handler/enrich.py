"""Enrichment: the dimensions of a reading, from the message, the registry or defaults.

Why this order: a device that reports its own `location`/`deviceType` knows best (it
may have been moved since the registry was packaged); the registry fills what the
device does not say; defaults guarantee that no dimension is ever empty, which
Timestream would reject.
"""

from __future__ import annotations

from typing import Any

from . import reasons
from .model import Dimensions
from .reasons import Problem
from .settings import Settings

MAX_DIMENSION_VALUE_BYTES = 2048  # Timestream's limit for one dimension value
# `iotpipe verify --probe` sends as a device of this prefix. Its rows must be findable and
# kept out of the query presets, so the prefix is the marker (a DeviceId, a dimension that
# always exists); and the probe must get through a registry that quarantines unknown
# devices, so these ids count as known. Defined here because the function is what the CLI
# may import, never the other way round.
PROBE_DEVICE_PREFIX = "iotpipe-probe-"


def dimensions(body: dict[str, Any], device_id: str, settings: Settings) -> Dimensions | Problem:
    """DeviceId, Location, DeviceType, then the registry's extra attributes (sorted).

    The order is fixed so that a retried message produces byte-identical records.
    """
    device = settings.devices.get(device_id)
    if (
        device is None
        and settings.unknown_devices == "quarantine"
        and not device_id.startswith(PROBE_DEVICE_PREFIX)
    ):
        return Problem(reasons.UNKNOWN_DEVICE, f"deviceId {device_id!r} is not in the registry")
    location = clean(body.get("location"))
    device_type = clean(body.get("deviceType"))
    if device is not None:
        location = location or device.location
        device_type = device_type or device.device_type
    dims: Dimensions = (
        ("DeviceId", device_id),
        ("Location", trim(location or settings.default_location)),
        ("DeviceType", trim(device_type or settings.default_device_type)),
    )
    if device is not None and device.extra:
        dims += tuple((name, trim(value)) for name, value in device.extra)
    return dims


def clean(value: Any) -> str | None:
    """A message-supplied dimension value: printable characters only, trimmed, or None.

    Non-strings are ignored (the registry or the default applies) rather than
    stringified: `"location": 3` is more likely a bug than a place called "3".
    """
    if type(value) is not str:
        return None
    if not value.isprintable():
        value = "".join(ch for ch in value if ch.isprintable())
    value = value.strip()
    return trim(value) if value else None


def trim(value: str) -> str:
    """Cut to Timestream's byte limit on a character boundary."""
    if len(value) * 4 <= MAX_DIMENSION_VALUE_BYTES:
        return value
    encoded = value.encode("utf-8")
    if len(encoded) <= MAX_DIMENSION_VALUE_BYTES:
        return value
    return encoded[:MAX_DIMENSION_VALUE_BYTES].decode("utf-8", errors="ignore")
