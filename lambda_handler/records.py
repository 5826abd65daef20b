"""Timestream records and WriteRecords requests for a batch of readings.

Layouts (both keep the event's own time, in milliseconds):
- `single`: one record per measure, MeasureName = the measure, MeasureValueType DOUBLE -
  the recipe's layout, so its queries (`measure_value::double`) keep working.
- `multi`: one record per message, MeasureName "metrics", MeasureValueType MULTI, one
  DOUBLE MeasureValue per valid measure - half the records and far fewer bytes.

Why the grouping: Timestream meters writes by bytes and lets `CommonAttributes` carry
what every record of a request shares. Readings are sorted so that records with the same
location and type sit together; whatever a whole request shares moves into
CommonAttributes and out of the records (overlap would be a ValidationException).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .contract import MULTI_MEASURE_NAME, RecordModel
from .model import Dimensions, Reading

MAX_RECORDS_PER_REQUEST = 100  # WriteRecords' limit

Owner = tuple[int, str | None]  # (index into readings, measure name or None for multi)


@dataclass(slots=True)
class Request:
    """One WriteRecords call: its shared attributes, records and who owns each record."""

    common: dict[str, Any]
    records: list[dict[str, Any]]
    owners: list[Owner]

    def params(self, database: str, table: str) -> dict[str, Any]:
        """Keyword arguments for `client.write_records`."""
        return {
            "DatabaseName": database,
            "TableName": table,
            "CommonAttributes": self.common,
            "Records": self.records,
        }

    def only(self, position: int) -> Request:
        """A request holding just one of this request's records (to isolate a bad one)."""
        return Request(dict(self.common), [self.records[position]], [self.owners[position]])


def plan_requests(readings: Sequence[Reading], model: RecordModel) -> list[Request]:
    """All WriteRecords requests for `readings`, at most 100 records each."""
    order = sorted(range(len(readings)), key=lambda i: readings[i].identity.group)
    if model == "multi":
        units: list[Owner] = [(i, None) for i in order]
    else:
        units = [(i, name) for i in order for name in readings[i].measures]
    return [
        build_request(readings, units[start : start + MAX_RECORDS_PER_REQUEST], model)
        for start in range(0, len(units), MAX_RECORDS_PER_REQUEST)
    ]


def build_request(
    readings: Sequence[Reading], chunk: Sequence[Owner], model: RecordModel
) -> Request:
    """One request; attributes shared by every record of `chunk` go to CommonAttributes."""
    first = readings[chunk[0][0]]
    shared = _shared_dimensions(readings, chunk)
    same_time = all(readings[i].time_ms == first.time_ms for i, _ in chunk)
    common: dict[str, Any] = {"TimeUnit": "MILLISECONDS"}
    if shared:
        common["Dimensions"] = [{"Name": n, "Value": v} for n, v in first.dims if (n, v) in shared]
    if same_time:
        common["Time"] = str(first.time_ms)
    names = {name for _, name in chunk}
    if model == "multi":
        common["MeasureName"] = MULTI_MEASURE_NAME
        common["MeasureValueType"] = "MULTI"
    else:
        common["MeasureValueType"] = "DOUBLE"
        if len(names) == 1:
            common["MeasureName"] = next(iter(names))
    # Usually every dimension but DeviceId is shared: then each record carries only its
    # identity's ready-made DeviceId list. Otherwise build the list once per identity.
    device_only = len(shared) == len(first.dims) - 1 and first.dims[0] not in shared
    own_cache: dict[Dimensions, list[dict[str, str]]] = {}
    own: list[dict[str, str]] | None
    records = []
    for index, name in chunk:
        reading = readings[index]
        identity = reading.identity
        if device_only and len(identity.dims) == len(first.dims):
            own = identity.device_dimension
        else:
            own = own_cache.get(identity.dims)
            if own is None:
                own = [{"Name": n, "Value": v} for n, v in identity.dims if (n, v) not in shared]
                own_cache[identity.dims] = own
        record: dict[str, Any] = {"Dimensions": own} if own else {}
        if not same_time:
            record["Time"] = str(reading.time_ms)
        if name is None:
            record["MeasureValues"] = [
                {"Name": measure, "Value": repr(value), "Type": "DOUBLE"}
                for measure, value in reading.measures.items()
            ]
        else:
            if len(names) > 1:
                record["MeasureName"] = name
            record["MeasureValue"] = repr(reading.measures[name])
        records.append(record)
    return Request(common, records, list(chunk))


def _shared_dimensions(readings: Sequence[Reading], chunk: Sequence[Owner]) -> set[tuple[str, str]]:
    """The (name, value) pairs present in every reading of the chunk."""
    previous = readings[chunk[0][0]].dims
    shared = set(previous)
    for index, _ in chunk:
        dims = readings[index].dims
        if dims is not previous and dims != previous:
            shared.intersection_update(dims)
            previous = dims
            if not shared:
                break
    return shared
