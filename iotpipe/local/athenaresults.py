"""Athena's result shapes, from DuckDB values: ColumnInfo, VarCharValue text, CSV, pages.

Pure. Athena answers GetQueryResults from the CSV it wrote, so every value is text
(``{"VarCharValue": "..."}``, NULL is ``{}``) in Trino's formatting (timestamps with
milliseconds, doubles as Java prints them), and for a SELECT the first row of the first
page is the header row, counted in MaxResults like any other row of that CSV.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
import re
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from iotpipe.local.athenasql import AthenaQueryError

_NAMES = {
    "VARCHAR": "varchar", "BIGINT": "bigint", "INTEGER": "integer", "SMALLINT": "smallint",
    "TINYINT": "tinyint", "DOUBLE": "double", "FLOAT": "real", "BOOLEAN": "boolean",
    "DATE": "date", "BLOB": "varbinary", "INTERVAL": "interval day to second", "TIME": "time",
    "HUGEINT": "decimal", "UBIGINT": "decimal", "UINTEGER": "bigint", "USMALLINT": "integer",
    "UTINYINT": "smallint", "UUID": "uuid", "JSON": "json", '"NULL"': "unknown", "NULL": "unknown",
}  # fmt: skip
_PRECISION = {
    "varchar": 2147483647, "bigint": 19, "integer": 10, "smallint": 5, "tinyint": 3,
    "double": 17, "real": 7, "timestamp": 3, "timestamp with time zone": 3, "date": 0,
    "boolean": 0, "varbinary": 1073741824,
}  # fmt: skip


def athena_type(duck_type: str) -> tuple[str, int, int]:
    """(Athena type name, Precision, Scale) for a DuckDB type."""
    t = duck_type.upper()
    if m := re.fullmatch(r"DECIMAL\((\d+),\s*(\d+)\)", t):
        return "decimal", int(m.group(1)), int(m.group(2))
    if t.endswith("[]") or t.startswith("LIST"):
        name = "array"
    elif t.startswith("MAP"):
        name = "map"
    elif t.startswith("STRUCT"):
        name = "row"
    elif t.startswith("TIMESTAMP WITH TIME ZONE") or t == "TIMESTAMPTZ":
        name = "timestamp with time zone"
    elif t.startswith("TIMESTAMP"):
        name = "timestamp"
    else:
        name = _NAMES.get(t, "varchar")
    return name, _PRECISION.get(name, 0), 0


def column_info(names: list[str], duck_types: list[str]) -> list[dict[str, Any]]:
    cols = []
    for name, duck in zip(names, duck_types, strict=True):
        typ, precision, scale = athena_type(duck)
        cols.append(
            {
                "CatalogName": "hive",
                "SchemaName": "",
                "TableName": "",
                "Name": name,
                "Label": name,
                "Type": typ,
                "Precision": precision,
                "Scale": scale,
                "Nullable": "UNKNOWN",
                "CaseSensitive": typ == "varchar",
            }
        )
    return cols


def _double(v: float) -> str:
    """Java's Double.toString, which is how Trino prints a double."""
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "Infinity" if v > 0 else "-Infinity"
    if v == 0 or 1e-3 <= abs(v) < 1e7:
        return repr(float(v))
    sign, digits, exponent = Decimal(repr(v)).normalize().as_tuple()
    assert isinstance(exponent, int)
    text = "".join(map(str, digits))
    mantissa = text[0] + "." + (text[1:] or "0")
    return f"{'-' if sign else ''}{mantissa}E{len(text) - 1 + exponent}"


def _timestamp(v: dt.datetime) -> str:
    if v.tzinfo is not None:
        v = v.astimezone(dt.UTC).replace(tzinfo=None)
        return v.strftime("%Y-%m-%d %H:%M:%S.") + f"{v.microsecond // 1000:03d} UTC"
    return v.strftime("%Y-%m-%d %H:%M:%S.") + f"{v.microsecond // 1000:03d}"


def text(value: Any) -> str | None:
    """One value as Athena's CSV holds it (None: NULL)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return _double(value)
    if isinstance(value, dt.datetime):
        return _timestamp(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dt.time):
        return value.strftime("%H:%M:%S.") + f"{value.microsecond // 1000:03d}"
    if isinstance(value, dt.timedelta):
        us = value // dt.timedelta(microseconds=1)
        sign, us = ("-" if us < 0 else ""), abs(us)
        days, rem = divmod(us, 86_400_000_000)
        s, us = divmod(rem, 1_000_000)
        return f"{sign}{days} {s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}.{us // 1000:03d}"
    if isinstance(value, (bytes, bytearray)):
        return " ".join(f"{b:02x}" for b in value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join("null" if (t := text(v)) is None else t for v in value) + "]"
    if isinstance(value, dict):
        pairs = (
            "{}={}".format(text(k), "null" if text(v) is None else text(v))
            for k, v in value.items()
        )
        return "{" + ", ".join(pairs) + "}"
    if isinstance(value, Decimal):
        return str(value)
    return str(value)


def csv_bytes(names: list[str], rows: Iterable[list[str | None]]) -> bytes:
    """The result file Athena writes: header, then rows; values quoted, NULL empty."""

    def line(values: Iterable[str | None]) -> str:
        return ",".join("" if v is None else '"' + v.replace('"', '""') + '"' for v in values)

    header: list[str | None] = list(names)
    return "".join(line(r) + "\n" for r in [header, *rows]).encode()


def metadata_bytes(cols: list[dict[str, Any]]) -> bytes:
    """``<id>.csv.metadata``: Athena's is a binary encoding; this holds the same ColumnInfo."""
    return json.dumps({"ColumnInfo": cols}, indent=1).encode()


def page_token(execution_id: str, offset: int) -> str:
    raw = json.dumps({"q": execution_id, "o": offset}).encode()
    return base64.urlsafe_b64encode(raw).decode()


def page_offset(execution_id: str, token: str | None) -> int:
    """Where a NextToken resumes; a token of another execution is refused."""
    if not token:
        return 0
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        if data["q"] == execution_id and int(data["o"]) >= 0:
            return int(data["o"])
    except (ValueError, KeyError, TypeError):
        pass
    raise ValueError("The NextToken is not valid for this query execution.")


def page(
    names: list[str], rows: list[list[str | None]], offset: int, max_results: int
) -> tuple[list[dict[str, Any]], int | None]:
    """Rows ``offset``.. of header + data, at most `max_results`; the next offset or None."""
    total = len(rows) + 1
    out = []
    for i in range(offset, min(total, offset + max_results)):
        values = names if i == 0 else rows[i - 1]
        out.append({"Data": [{} if v is None else {"VarCharValue": v} for v in values]})
    end = offset + len(out)
    return out, (end if end < total else None)


# -- DuckDB errors in Athena's words -----------------------------------------------------
def _find(sql: str, name: str) -> str:
    m = re.search(rf"(?<![\w.]){re.escape(name)}(?!\w)", sql, re.IGNORECASE)
    off = m.start() if m else 0
    return f"line {sql.count(chr(10), 0, off) + 1}:{off - (sql.rfind(chr(10), 0, off) + 1) + 1}"


# DuckDB's words for a bad column, and Athena's error for it, located at the column.
_COLUMN_ERRORS = (
    (
        r'Referenced column "(.+?)" not found',
        "COLUMN_NOT_FOUND",
        "Column '{}' cannot be resolved or requester is not authorized to access requested "
        "resources",
        1004,
    ),
    (
        r'column "(.+?)" must appear in the GROUP BY',
        "EXPRESSION_NOT_AGGREGATE",
        "'{}' must be an aggregate expression or appear in GROUP BY clause",
        1100,
    ),
)


def athena_error(sql: str, message: str, hidden: Iterable[str] = ()) -> AthenaQueryError:
    """A DuckDB error as Athena would word it; paths in `hidden` never leak."""
    text = message.split("\n")[0].strip()
    for h in hidden:
        text = text.replace(h, "")
    body = text.partition(" Error: ")[2] or text
    for pattern, code, words, number in _COLUMN_ERRORS:
        if m := re.search(pattern, body):
            col = m.group(1)
            return AthenaQueryError(code, f"{_find(sql, col)}: {words.format(col)}", number)
    if m := re.search(
        r"No function matches the given name and argument types '(\w+)\((.*?)\)'", body
    ):
        fn = m.group(1)
        return AthenaQueryError(
            "FUNCTION_NOT_FOUND",
            f"{_find(sql, fn)}: Unexpected parameters ({m.group(2).lower()}) for function {fn.lower()}",
            1303,
        )
    if m := re.search(r"Function with name (\w+) does not exist", body):
        fn = m.group(1).lower()
        return AthenaQueryError(
            "FUNCTION_NOT_FOUND", f"{_find(sql, fn)}: Function '{fn}' not registered", 1303
        )
    if text.startswith("Conversion Error"):
        return AthenaQueryError("INVALID_CAST_ARGUMENT", body, 1106)
    if text.startswith(("Invalid Input Error", "IO Error")) and "parquet" in body.lower():
        return AthenaQueryError("HIVE_BAD_DATA", body, 1001)
    body = re.split(r"\s*(Candidate bindings|Did you mean)", body)[0].rstrip(" !")
    return AthenaQueryError("GENERIC_USER_ERROR", body, 1000)
