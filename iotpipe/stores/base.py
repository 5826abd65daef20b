"""What every store's read side shares: typed results, durations, the presets' names, and
the :class:`Store` interface the commands talk to.

Why an interface: ``query``, ``quality`` and ``verify --probe`` ask the same questions of
every store (the latest rows, averages per device, per-minute statistics, what was
refused, where the probe's row is); only the SQL dialect, the client and where refusals
are counted differ. A store answers in :class:`Result`, so rendering never knows which
store it was.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from iotpipe.errors import UsageError
from lambda_handler.enrich import PROBE_DEVICE_PREFIX

DURATION_RE = re.compile(r"^(\d+)(ns|us|ms|s|m|h|d)$")
_SECONDS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600, "d": 86400}
SQL_PRESET_NAMES = ("recent", "by-device", "per-minute")
PRESETS = (*SQL_PRESET_NAMES, "quality")


def seconds(duration: str) -> float:
    """``15m`` -> 900.0; the Timestream duration literal forms only."""
    m = DURATION_RE.fullmatch(duration)
    if not m:
        raise UsageError(f"{duration!r} is not a duration like 30s, 15m, 1h or 7d.")
    return int(m.group(1)) * _SECONDS[m.group(2)]


def literal(text: str) -> str:
    """A SQL string literal (quotes doubled), for values that come from the command line."""
    return "'" + text.replace("'", "''") + "'"


def device_filters(column: str, device: str | None) -> list[str]:
    """A preset's device conditions on ``column``: the one device asked for, and never
    ``verify --probe``'s rows unless a probe device is what was asked for."""
    parts = []
    if device is not None:
        parts.append(f"{column} = {literal(device)}")
    if not (device or "").startswith(PROBE_DEVICE_PREFIX):
        parts.append(f"{column} NOT LIKE '{PROBE_DEVICE_PREFIX}%'")  # verify's probe rows
    return parts


# A column of a Timestream or Athena answer (both say ``{"Name": ..., "Type": ...}``).
ColumnInfo = Mapping[str, Any]


@dataclass
class Result:
    """Typed rows as objects (column order kept), plus notes for people."""

    columns: list[str] = field(default_factory=list)
    types: list[str] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def set_columns(self, info: Sequence[ColumnInfo], type_name: Callable[[Any], str]) -> None:
        """Names and types from an answer's ColumnInfo, in the store's type names."""
        self.columns = [c["Name"] for c in info]
        self.types = [type_name(c["Type"]) for c in info]

    def add_rows(
        self,
        info: Sequence[ColumnInfo],
        rows: Iterable[Sequence[Any]],
        value: Callable[[Any, Any], Any],
    ) -> None:
        """Append one page's rows (each a row's ``Data``), every datum typed by the store's
        ``value`` from its column's type: Timestream and Athena answer in the same shape."""
        for data in rows:
            self.rows.append(
                {c["Name"]: value(d, c["Type"]) for c, d in zip(info, data, strict=True)}
            )

    def drop_empty(self, prefix: str) -> Result:
        """Without ``prefix*`` columns that are null in every row (absent measures)."""
        keep = [
            i
            for i, c in enumerate(self.columns)
            if not c.startswith(prefix) or any(r.get(c) is not None for r in self.rows)
        ]
        cols = [self.columns[i] for i in keep]
        return Result(
            cols,
            [self.types[i] for i in keep],
            [{c: r[c] for c in cols} for r in self.rows],
            self.notes,
        )


class Store(Protocol):
    """One deployment's store, as the exercise commands read it.

    Every method answers for this deployment only (its table, its queue, its metrics)
    and leaves ``verify --probe``'s rows out unless asked for a probe device.
    """

    def run(self, sql: str) -> Result:
        """One query in the store's own SQL, every page, values typed from its schema."""
        ...

    def user_sql(self, sql: str) -> Result:
        """``query --sql``: :meth:`run`, with a hint for the store's usual mistakes and a
        note when nothing came back."""
        ...

    def preset(self, name: str, *, since: str, device: str | None, limit: int) -> Result:
        """One of :data:`SQL_PRESET_NAMES`; ``notes`` say so when there is nothing to show."""
        ...

    def quality(self, *, since: str | None, device: str | None) -> Result:
        """What the pipeline refused, by reason: exact counts, with examples."""
        ...

    def count(self, since: str) -> int:
        """Rows of the last ``since`` (a duration), probe rows included: how the demo and
        the tests know the pipeline has caught up."""
        ...

    def probe_rows(self, device: str, measure: str) -> list[dict[str, Any]]:
        """The probe device's rows of the last hour: ``time`` and ``v`` (the measure)."""
        ...
