"""The lake's presets in Athena's SQL (Trino), pure: the same questions as Timestream's.

Each preset asks what its Timestream twin asks (``stores/timestream.py``): the latest rows,
averages per device, avg/min/max per device, measure and minute; each filters ``since``,
``device`` and ``limit`` the same way and leaves ``verify --probe``'s devices out unless
one is asked for. The lake holds one row per message (like Timestream's multi-measure
records), with lower-case columns (``lambda_handler.lakerow``).

Why two time filters: Athena bills the bytes it reads, and only a predicate on the
partition columns (``dt``, ``hour``) lets it skip objects; ``time`` alone would read every
partition the projection allows (``retention_days`` of them). The partition bound is
computed here from an injected clock, a little wider than ``since`` (``SKEW``) so a
client clock ahead of Athena's never cuts off an hour that ``time`` would keep.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from iotpipe.stores.base import device_filters, literal, seconds
from lambda_handler.lakerow import column

SKEW = timedelta(minutes=15)
# The lake's base columns as Timestream's presets name the same things (renderers and
# scripts read one vocabulary whichever store answered).
TIMESTREAM_NAMES = {"device_id": "DeviceId", "location": "Location", "device_type": "DeviceType"}


def source(database: str, table: str) -> str:
    """The FROM of every query; names come from validated config, so quoting cannot break."""
    return f'"{database}"."{table}"'


def interval(duration_s: float) -> str:
    """A Trino interval literal in the largest whole unit (sub-second rounds up to 1 s)."""
    for unit, size in (("DAY", 86400), ("HOUR", 3600), ("MINUTE", 60)):
        if duration_s >= size and duration_s % size == 0:
            return f"INTERVAL '{int(duration_s // size)}' {unit}"
    return f"INTERVAL '{max(1, math.ceil(duration_s))}' SECOND"


def partition_filter(oldest: datetime) -> str:
    """Partitions from ``oldest``'s hour on: ``dt >= day AND (dt > day OR hour >= h)``.

    The plain ``dt >=`` is there for engines that prune only simple comparisons."""
    at = oldest.astimezone(UTC)
    day = at.strftime("%Y-%m-%d")
    return f"dt >= '{day}' AND (dt > '{day}' OR hour >= {at.hour})"


def time_filter(duration_s: float, now: datetime) -> str:
    """Partitions (computed from ``now``) and rows (Athena's own clock) of the window."""
    oldest = now - timedelta(seconds=duration_s) - SKEW
    return f"{partition_filter(oldest)} AND time > current_timestamp - {interval(duration_s)}"


@dataclass(frozen=True)
class LakeScope:
    """What a preset is about; ``measures`` are config names (columns are lower case)."""

    database: str
    table: str
    measures: tuple[str, ...]
    now: datetime
    attributes: tuple[str, ...] = ()
    since: str = "1h"
    device: str | None = None
    limit: int = 10

    @property
    def source(self) -> str:
        return source(self.database, self.table)

    def where(self, *extra: str) -> str:
        window = time_filter(seconds(self.since), self.now)
        parts = [window, *extra, *device_filters("device_id", self.device)]
        return " AND ".join(parts)


def _col(measure: str) -> str:
    return f'"{column(measure)}"'


def recent_sql(s: LakeScope) -> str:
    """The latest messages, newest first: one row each, one column per measure."""
    cols = ["time", "device_id", "location", "device_type", *s.attributes]
    cols += [_col(m) for m in s.measures]
    return (
        f"SELECT {', '.join(cols)} FROM {s.source} WHERE {s.where()} "
        f"ORDER BY time DESC LIMIT {s.limit}"
    )


def by_device_sql(s: LakeScope) -> str:
    """Average of every measure per device, and the messages behind it."""
    avgs = [f"avg({_col(m)}) AS avg_{column(m)}" for m in s.measures]
    # count(DISTINCT time): Firehose delivers at least once, Timestream dedupes rewrites.
    cols = ", ".join(["device_id", *avgs, "count(DISTINCT time) AS messages"])
    return f"SELECT {cols} FROM {s.source} WHERE {s.where()} GROUP BY device_id ORDER BY device_id"


def per_minute_sql(s: LakeScope) -> str:
    """avg/min/max per device, measure and minute; one branch per measure column."""
    minute = "date_trunc('minute', time)"
    parts = []
    for m in s.measures:
        col = _col(m)
        parts.append(
            f"SELECT device_id, {literal(m)} AS measure, {minute} AS minute, "
            f"avg({col}) AS avg_value, min({col}) AS min_value, max({col}) AS max_value, "
            f"count({col}) AS samples FROM {s.source} "
            f"WHERE {s.where(f'{col} IS NOT NULL')} GROUP BY device_id, {minute}"
        )
    return (
        f"SELECT * FROM ({' UNION ALL '.join(parts)}) AS per_minute "
        "ORDER BY minute, device_id, measure"
    )


SQL_PRESETS: dict[str, Callable[[LakeScope], str]] = {
    "recent": recent_sql,
    "by-device": by_device_sql,
    "per-minute": per_minute_sql,
}


def count_sql(database: str, table: str, since: str, now: datetime) -> str:
    """Rows of the last ``since``, probe rows included (how the demo sees it caught up)."""
    where = time_filter(seconds(since), now)
    return f"SELECT count(*) AS n FROM {source(database, table)} WHERE {where}"


def probe_sql(database: str, table: str, device: str, measure: str, now: datetime) -> str:
    """The probe device's value of ``measure`` in the last hour, as ``time`` and ``v``."""
    return (
        f"SELECT time, {_col(measure)} AS v FROM {source(database, table)} "
        f"WHERE {time_filter(3600, now)} AND device_id = {literal(device)}"
    )


def renames(measures: tuple[str, ...]) -> dict[str, str]:
    """Lake column -> the Timestream preset's name for the same thing."""
    out = dict(TIMESTREAM_NAMES)
    for m in measures:
        if column(m) != m:  # a measure with capitals: Timestream keeps the config's name
            out[column(m)] = m
            out[f"avg_{column(m)}"] = f"avg_{m}"
    return out
