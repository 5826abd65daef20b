"""A valid reading as the lake's row, and the hour it belongs to.

The Firehose transform (`transform.py`) returns these rows; iotpipe's Glue table
(`iotpipe/lakeschema.py`) declares the same columns from this module's names, so the two
cannot drift apart. Column names are lower case because Firehose's OpenX JSON SerDe
lower-cases keys before matching them to columns; a key with no column is dropped.
Standard library only, like the rest of the function.
"""

from __future__ import annotations

from typing import Any

from .model import Reading

# The base columns, in table order, and the registry dimension each one comes from.
BASE_COLUMNS = ("time", "device_id", "location", "device_type")
PARTITION_COLUMNS = ("dt", "hour")
# A measure or attribute may not take these names when the lake is on: they are columns.
LAKE_RESERVED = frozenset((*BASE_COLUMNS, *PARTITION_COLUMNS))
_DIMENSION_COLUMNS = {"DeviceId": "device_id", "Location": "location", "DeviceType": "device_type"}
_MS_PER_DAY = 86_400_000


def column(name: str) -> str:
    """A measure or attribute name as its column."""
    return _DIMENSION_COLUMNS.get(name) or name.lower()


def row(reading: Reading) -> dict[str, Any]:
    """The flattened JSON object Firehose converts to one Parquet row."""
    out: dict[str, Any] = {"time": timestamp_text(reading.time_ms)}
    for name, text in reading.dims:
        out[column(name)] = text
    for name, number in reading.measures.items():
        out[column(name)] = number
    return out


def partition_keys(epoch_ms: int) -> dict[str, str]:
    """``metadata.partitionKeys`` for an event time: ``dt`` (yyyy-mm-dd) and ``hour`` (00-23)."""
    days, ms = divmod(epoch_ms, _MS_PER_DAY)
    return {"dt": civil_date(days), "hour": f"{ms // 3_600_000:02d}"}


def timestamp_text(epoch_ms: int) -> str:
    """``yyyy-mm-dd hh:mm:ss.mmm`` UTC: what Hive's and the OpenX SerDe's parsers read."""
    days, ms = divmod(epoch_ms, _MS_PER_DAY)
    seconds, millis = divmod(ms, 1000)
    hours, rest = divmod(seconds, 3600)
    return f"{civil_date(days)} {hours:02d}:{rest // 60:02d}:{rest % 60:02d}.{millis:03d}"


def civil_date(days: int) -> str:
    """Days since 1970-01-01 -> ``yyyy-mm-dd``, without a datetime object per row
    (Howard Hinnant's civil_from_days; exact for every proleptic Gregorian date)."""
    z = days + 719_468
    era = z // 146_097
    doe = z - era * 146_097
    yoe = (doe - doe // 1460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    year = yoe + era * 400 + (month <= 2)
    return f"{year:04d}-{month:02d}-{day:02d}"
