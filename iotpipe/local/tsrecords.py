"""Timestream records as storage rows: validation, CommonAttributes, typed values.

Pure functions (no DuckDB) used by `tsstore`'s write path; every reason a record is
refused is worded like Timestream's RejectedRecords reasons.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lambda_handler.contract import RESERVED_NAMES as _RESERVED  # Timestream's, shared

_SINGLE_TYPES = {
    "DOUBLE": "DOUBLE",
    "BIGINT": "BIGINT",
    "VARCHAR": "VARCHAR",
    "BOOLEAN": "BOOLEAN",
    "TIMESTAMP": "TIMESTAMP",
}
_UNIT_TO_US = {"MILLISECONDS": 1000, "SECONDS": 1_000_000, "MICROSECONDS": 1, "NANOSECONDS": 0}


class WriteValidation(Exception):
    """The whole request is invalid (Timestream's ValidationException)."""


class Reject(Exception):
    def __init__(self, reason: str, **extra: Any) -> None:
        super().__init__(reason)
        self.extra = extra


def check_shape(records: Any, common: Any) -> None:
    """What AWS refuses before reading any record (its request deserialisation): records
    and CommonAttributes that are not objects, lists of dimensions or measure values that
    are not lists of objects. Raises WriteValidation."""
    if not isinstance(records, list) or not isinstance(common, dict):
        raise WriteValidation("Records must be a list and CommonAttributes an object.")
    for where, rec in [("CommonAttributes", common)] + [
        (f"Records[{i}]", r) for i, r in enumerate(records)
    ]:
        if not isinstance(rec, dict):
            raise WriteValidation(f"{where} must be an object.")
        _strings(where, rec, _RECORD_STRINGS)
        if rec.get("Version") is not None and type(rec["Version"]) is not int:
            raise WriteValidation(f"{where}.Version must be a number.")
        for field, names in (("Dimensions", _DIM_STRINGS), ("MeasureValues", _MV_STRINGS)):
            items = rec.get(field)
            if items is None:
                continue
            if not isinstance(items, list) or not all(isinstance(d, dict) for d in items):
                raise WriteValidation(f"{where}.{field} must be a list of objects.")
            for j, item in enumerate(items):
                _strings(f"{where}.{field}[{j}]", item, names)


_RECORD_STRINGS = ("MeasureName", "MeasureValue", "MeasureValueType", "Time", "TimeUnit")
_DIM_STRINGS = ("Name", "Value", "DimensionValueType")
_MV_STRINGS = ("Name", "Value", "Type")


def _strings(where: str, obj: dict[str, Any], names: tuple[str, ...]) -> None:
    for name in names:
        if obj.get(name) is not None and not isinstance(obj[name], str):
            raise WriteValidation(f"{where}.{name} must be a string.")


def merge_common(records: list[dict[str, Any]], common: dict[str, Any]) -> list[dict[str, Any]]:
    """Apply CommonAttributes the way Timestream does (record fields win; dimensions add)."""
    if not common:
        return records
    common_dims = common.get("Dimensions") or []
    names = {d["Name"] for d in common_dims}
    merged = []
    for record in records:
        one = {**common, **record}
        if common_dims:
            own = record.get("Dimensions") or []
            clash = names.intersection(d["Name"] for d in own)
            if clash:
                raise WriteValidation(
                    f"Dimension(s) {sorted(clash)} appear both in CommonAttributes and in a record."
                )
            one["Dimensions"] = [*common_dims, *own]
        merged.append(one)
    return merged


def _parse_value(value: Any, typ: str) -> Any:
    if typ == "DOUBLE":
        return float(value)
    if typ == "BIGINT":
        return int(value)
    if typ == "BOOLEAN":
        text = str(value).lower()
        if text not in ("true", "false"):
            raise ValueError(value)
        return text == "true"
    if typ == "TIMESTAMP":
        return np.datetime64(int(value) * 1000, "us").astype(object)
    return str(value)


def to_row(
    rec: dict[str, Any], now_us: int, retention_hours: float | None, magnetic: bool
) -> dict[str, Any]:
    """A Timestream record as a storage row (raises _Reject with Timestream-like reasons)."""
    measure = rec.get("MeasureName")
    vtype = (rec.get("MeasureValueType") or "DOUBLE").upper()
    if not measure:
        raise Reject("MeasureName is required.")
    try:
        unit = (rec.get("TimeUnit") or "MILLISECONDS").upper()
        raw = int(rec["Time"])
        t_us = raw // 1000 if unit == "NANOSECONDS" else raw * _UNIT_TO_US[unit]
    except (KeyError, ValueError, TypeError):
        raise Reject(
            f"Invalid Time {rec.get('Time')!r} / TimeUnit {rec.get('TimeUnit')!r}."
        ) from None
    if t_us > now_us + 15 * 60 * 1_000_000:
        raise Reject("The record timestamp is more than 15 minutes in the future.")
    if retention_hours and not magnetic and t_us < now_us - int(retention_hours * 3.6e9):
        raise Reject("The record timestamp is outside the time range of the memory store.")
    row: dict[str, Any] = {"time": t_us, "measure_name": measure, "__dims__": [], "__vals__": {}}
    for dim in rec.get("Dimensions") or []:
        name, value = dim.get("Name"), dim.get("Value")
        if not name or value is None or name in _RESERVED or name.startswith("ts_"):
            raise Reject(f"Invalid dimension {dim!r}.")
        row[name] = str(value)
        row["__dims__"].append(name)
    try:
        if vtype == "MULTI":
            for mv in rec.get("MeasureValues") or []:
                mtype = (mv.get("Type") or "").upper()
                name = mv.get("Name")
                if mtype not in _SINGLE_TYPES or not name or name in row or name in _RESERVED:
                    raise Reject(f"Invalid multi-measure value {mv!r}.")
                row[name] = _parse_value(mv.get("Value"), mtype)
                row["__vals__"][name] = _SINGLE_TYPES[mtype]
            if not row["__vals__"]:
                raise Reject("MeasureValues is required for MULTI records.")
        elif vtype in _SINGLE_TYPES:
            col = f"measure_value::{vtype.lower()}"
            row[col] = _parse_value(rec.get("MeasureValue"), vtype)
            row["__vals__"][col] = _SINGLE_TYPES[vtype]
        else:
            raise Reject(f"Unsupported MeasureValueType {vtype}.")
    except (ValueError, TypeError) as e:
        raise Reject(f"Measure value does not match type {vtype}: {e}") from None
    return row
