"""Firehose's record format conversion: JSON records + a Glue table -> one Parquet object.

What Firehose's OpenX JSON SerDe and Parquet serializer do, as far as the lake needs it:
keys are matched to columns case-insensitively, a key with no column is dropped, a
missing key is NULL, and a record that does not fit the schema (not a JSON object, a
value of the wrong type) becomes a ``format-conversion-failed`` error record instead of
failing the batch. Values are checked in Python (so a bad record is found alone) and the
file is written by DuckDB (SNAPPY) from checked values, so writing cannot fail on one.

A record's data may hold several concatenated JSON objects (``{"a":1}{"a":2}``), as
Firehose accepts; each is a row, and one bad object fails its whole record.
"""

from __future__ import annotations

import base64
import json
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb

# Glue type -> DuckDB type; anything else is refused when the schema is read.
DUCK_TYPES = {
    "string": "VARCHAR",
    "varchar": "VARCHAR",
    "double": "DOUBLE",
    "float": "FLOAT",
    "timestamp": "TIMESTAMP",
    "int": "INTEGER",
    "integer": "INTEGER",
    "bigint": "BIGINT",
    "smallint": "SMALLINT",
    "tinyint": "TINYINT",
    "boolean": "BOOLEAN",
    "date": "DATE",
}
_INT_BITS = {"INTEGER": 32, "BIGINT": 64, "SMALLINT": 16, "TINYINT": 8}
_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(\.\d{1,6})?")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DECODER = json.JSONDecoder()


class SchemaError(ValueError):
    """The Glue table has a column type this writer does not know (a delivery problem)."""


class BadValue(ValueError):
    """One value does not fit its column."""


@dataclass
class Converted:
    """The Parquet bytes (None if no row converted), rows written, and failed record indexes."""

    data: bytes | None
    rows: int
    failures: list[tuple[int, str]] = field(default_factory=list)


def duck_columns(columns: list[tuple[str, str]]) -> list[tuple[str, str]]:
    if not columns:
        raise SchemaError("the Glue table has no columns")
    out = []
    for name, glue_type in columns:
        duck = DUCK_TYPES.get(glue_type.strip().lower())
        if duck is None:
            raise SchemaError(f"column {name}: Glue type {glue_type!r} is not supported here")
        out.append((name.lower(), duck))
    return out


def _value(value: Any, duck: str) -> Any:
    if value is None:
        return None
    if duck == "VARCHAR":
        if isinstance(value, (dict, list)):
            return json.dumps(value, separators=(",", ":"))
        return str(value).lower() if isinstance(value, bool) else str(value)
    if duck in ("DOUBLE", "FLOAT"):
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise BadValue(f"{value!r} is not a number")
        try:
            number = float(value)
        except ValueError:
            raise BadValue(f"{value!r} is not a number") from None
        return number
    if duck in _INT_BITS:
        return _integer(value, _INT_BITS[duck])
    if duck == "BOOLEAN":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise BadValue(f"{value!r} is not a boolean")
    pattern = _TIMESTAMP if duck == "TIMESTAMP" else _DATE
    text = value.strip() if isinstance(value, str) else ""
    try:
        if pattern.fullmatch(text):
            return (datetime if duck == "TIMESTAMP" else date).fromisoformat(text)
    except ValueError:
        pass  # the right shape, not a real date (month 13)
    raise BadValue(f"{value!r} is not a {duck.lower()} (yyyy-MM-dd HH:mm:ss.SSS)")


def _integer(value: Any, bits: int) -> int:
    if isinstance(value, bool):
        raise BadValue(f"{value!r} is not an integer")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str) and re.fullmatch(r"[+-]?\d+", value.strip()):
        value = int(value)
    if not isinstance(value, int):
        raise BadValue(f"{value!r} is not an integer")
    if not -(2 ** (bits - 1)) <= value < 2 ** (bits - 1):
        raise BadValue(f"{value} is out of range for a {bits}-bit integer")
    return value


def objects(data: bytes) -> list[dict[str, Any]]:
    """The JSON objects in one record's data (concatenated or newline separated)."""
    text = data.decode("utf-8")
    out: list[dict[str, Any]] = []
    pos = 0
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos >= len(text):
            break
        obj, pos = _DECODER.raw_decode(text, pos)
        if not isinstance(obj, dict):
            raise BadValue("a record must hold JSON objects")
        out.append(obj)
    if not out:
        raise BadValue("the record is empty")
    return out


def record_rows(data: bytes, columns: list[tuple[str, str]]) -> list[tuple[Any, ...]]:
    """One record as rows in column order; raises ValueError on anything that does not fit."""
    rows = []
    for obj in objects(data):
        lowered = {str(k).lower(): v for k, v in obj.items()}  # CaseInsensitive (default true)
        row = []
        for name, duck in columns:
            try:
                row.append(_value(lowered.get(name), duck))
            except BadValue as e:
                raise BadValue(f"column {name}: {e}") from None
        rows.append(tuple(row))
    return rows


def convert(records: list[bytes], glue_columns: list[tuple[str, str]]) -> Converted:
    """Every record that fits becomes rows of one Parquet object; the others are reported."""
    columns = duck_columns(glue_columns)
    rows: list[tuple[Any, ...]] = []
    failures: list[tuple[int, str]] = []
    for i, data in enumerate(records):
        try:
            rows.extend(record_rows(data, columns))
        except (ValueError, UnicodeDecodeError) as e:
            failures.append((i, f"{type(e).__name__}: {e}"))
    if not rows:
        return Converted(None, 0, failures)
    return Converted(write(rows, columns), len(rows), failures)


def write(rows: list[tuple[Any, ...]], columns: list[tuple[str, str]]) -> bytes:
    """Rows (already checked) -> Parquet bytes, SNAPPY, columns typed as the table says.

    Columns travel as one list parameter each and are zipped back with ``unnest``: one
    statement for the whole object instead of an INSERT per row.
    """
    con = duckdb.connect(":memory:")
    try:
        params, selects = [], []
        for i, (name, duck) in enumerate(columns):
            values = [row[i] for row in rows]
            params.append(values)
            selects.append(f'unnest($p{i}::{duck}[]) AS "{name}"')
        sql = "SELECT " + ", ".join(selects)
        with tempfile.TemporaryDirectory(prefix="iotpipe-parquet-") as tmp:
            target = Path(tmp) / "object.parquet"
            named = {f"p{i}": p for i, p in enumerate(params)}
            con.execute(
                f"COPY ({sql}) TO '{target}' (FORMAT PARQUET, COMPRESSION SNAPPY)",
                named,
            )
            return target.read_bytes()
    finally:
        con.close()


# -- where a record that does not convert goes ----------------------------------------------
def db_table(schema: Mapping[str, Any]) -> tuple[str, str]:
    return str(schema.get("DatabaseName") or ""), str(schema.get("TableName") or "")


def catalog_table(schema: Mapping[str, Any], account: str, region: str) -> dict[str, str]:
    """SchemaConfiguration as the error record's ``dataCatalogTable``."""
    catalog = str(schema.get("CatalogId") or account)
    where = str(schema.get("Region") or region)
    db, table = db_table(schema)
    return {
        "catalogId": catalog,
        "databaseName": db,
        "tableName": table,
        "region": where,
        "versionId": str(schema.get("VersionId") or "LATEST"),
        "catalogArn": f"arn:aws:glue:{where}:{catalog}:catalog",
    }


def conversion_failed(
    raw: bytes, arrival_ms: int, message: str, seq: str, table: Mapping[str, str], now_ms: int
) -> str:
    """One line under errors/format-conversion-failed/ (record-format-conversion-error-handling)."""
    return json.dumps(
        {
            "attemptsMade": 1,
            "arrivalTimestamp": arrival_ms,
            "ErrorCode": "DataFormatConversion.MalformedData",
            "ErrorMessage": message,
            "attemptEndingTimestamp": now_ms,
            "rawData": base64.b64encode(raw).decode(),
            "sequenceNumber": seq,
            "subSequenceNumber": 0,
            "dataCatalogTable": dict(table),
        }
    )
