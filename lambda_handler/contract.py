"""What the config and the function must agree on: record layout, Timestream's name rules.

Declared once, here, because both sides need it: the function (`settings`, `records`)
enforces it at run time, and iotpipe's config imports it to refuse the same names up front,
with a file and a line, instead of deploying a function that fails every invocation.
Standard library only, like the rest of the function.
"""

from __future__ import annotations

from typing import Literal, get_args

# Multi-measure records carry this MeasureName; single-measure records the sensor's name.
MULTI_MEASURE_NAME = "metrics"
# Every record's dimensions; device attributes from the registry are added after them.
BASE_DIMENSIONS = ("DeviceId", "Location", "DeviceType")

# Timestream: reserved column names and prefixes; name length limits in UTF-8 bytes.
RESERVED_NAMES = frozenset({"measure_value", "time", "ts_non_existent_col", "measure_name"})
RESERVED_PREFIXES = ("ts_", "measure_name")
MAX_DIMENSION_NAME_BYTES = 60
MAX_MEASURE_NAME_BYTES = 256

# Timestream's limits for a table's retention.
MAX_MEMORY_RETENTION_HOURS = 8766
MAX_MAGNETIC_RETENTION_DAYS = 73_000

RecordModel = Literal["multi", "single"]
UnknownDevicePolicy = Literal["accept", "quarantine"]
RECORD_MODELS: tuple[RecordModel, ...] = get_args(RecordModel)
UNKNOWN_DEVICE_POLICIES: tuple[UnknownDevicePolicy, ...] = get_args(UnknownDevicePolicy)


def reserved_by_timestream(name: str) -> bool:
    """Whether Timestream refuses `name` as a measure or dimension name."""
    return name in RESERVED_NAMES or name.startswith(RESERVED_PREFIXES)
