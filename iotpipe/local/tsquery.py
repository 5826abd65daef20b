"""Timestream queries answered by DuckDB, in Timestream's exact response shape.

Three jobs, kept as pure functions where possible so they are unit-tested without a
server: `rewrite` (Timestream dialect -> DuckDB), `column_info`/`datum` (DuckDB values ->
ColumnInfo and Datum), and `QueryEngine` (run, page with NextToken, cache pages).

Rewrites, applied outside string literals and quoted identifiers only:
``measure_value::double`` -> ``"measure_value::double"`` (a column, not a cast);
duration literals ``15m``/``1h``/``7d``/``100ms``/``10s``/``5us``/``3ns`` -> INTERVAL;
``ago(x)``, ``now()``, ``bin(t, x)``, ``to_milliseconds(t)`` -> the ``ts_*`` macros
(DuckDB's own ``bin`` and ``to_milliseconds`` mean something else).
Only one SELECT/WITH statement is accepted; DuckDB runs with file access disabled.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import threading
import time
import uuid
from collections import OrderedDict
from decimal import Decimal
from typing import Any

import duckdb

from iotpipe.local.tsstore import TimestreamStore


class QueryValidation(Exception):
    """A query Timestream would refuse: answered as ValidationException, never HTTP 500."""


_SEGMENTS = re.compile(r"('(?:[^']|'')*'?|\"(?:[^\"]|\"\")*\"?|--[^\n]*|/\*.*?\*/)", re.S)
_MEASURE = re.compile(r"\bmeasure_value::(double|bigint|varchar|boolean|timestamp)\b", re.I)
_DURATION = re.compile(r"(?<![\w.])(\d+)(ns|us|ms|s|m|h|d)\b")
_FUNCS = re.compile(r"(?<![\w.\"])(ago|now|bin|to_milliseconds)\s*\(", re.I)
_UNITS = {
    "ns": "microseconds",
    "us": "microseconds",
    "ms": "milliseconds",
    "s": "seconds",
    "m": "minutes",
    "h": "hours",
    "d": "days",
}


def _rewrite_code(code: str) -> str:
    code = _MEASURE.sub(lambda m: f'"measure_value::{m.group(1).lower()}"', code)

    def duration(m: re.Match[str]) -> str:
        n, unit = int(m.group(1)), m.group(2)
        if unit == "ns":
            n //= 1000
        return f"INTERVAL '{n} {_UNITS[unit]}'"

    code = _DURATION.sub(duration, code)
    return _FUNCS.sub(lambda m: f"ts_{m.group(1).lower()}(", code)


def rewrite(sql: str) -> str:
    """Translate one Timestream query to DuckDB SQL (raises QueryValidation)."""
    parts = _SEGMENTS.split(sql.strip())
    if parts and parts[-1].rstrip().endswith(";"):
        parts[-1] = parts[-1].rstrip()[:-1]
    out: list[str] = []
    for i, part in enumerate(parts):
        if i % 2:  # string literal, quoted identifier or comment: untouched
            out.append(part)
            continue
        if ";" in part:
            raise QueryValidation("Only one statement is allowed in a query.")
        out.append(_rewrite_code(part))
    text = "".join(out).strip()
    first = text.lstrip("( \n\t").split(None, 1)[0].upper() if text.strip("( ") else ""
    if first not in ("SELECT", "WITH"):
        raise QueryValidation("Only SELECT queries are supported.")
    return text


# -- response shaping -------------------------------------------------------------------
_INTS = {"TINYINT", "SMALLINT", "INTEGER", "UTINYINT", "USMALLINT"}
_BIGINTS = {"BIGINT", "HUGEINT", "UBIGINT", "UINTEGER", "UHUGEINT"}


def scalar_type(duck_type: str) -> dict[str, Any]:
    """DuckDB type name -> Timestream ``Type`` (ScalarType or ArrayColumnInfo)."""
    t = duck_type.upper()
    if t.endswith("[]"):
        return {"ArrayColumnInfo": {"Type": scalar_type(duck_type[:-2])}}
    if t == "VARCHAR":
        s = "VARCHAR"
    elif t in ("DOUBLE", "FLOAT", "REAL") or t.startswith("DECIMAL"):
        s = "DOUBLE"
    elif t in _BIGINTS:
        s = "BIGINT"
    elif t in _INTS:
        s = "INTEGER"
    elif t == "BOOLEAN":
        s = "BOOLEAN"
    elif t.startswith("TIMESTAMP"):
        s = "TIMESTAMP"
    elif t == "DATE":
        s = "DATE"
    elif t.startswith("TIME"):
        s = "TIME"
    elif t == "INTERVAL":
        s = "INTERVAL_DAY_TO_SECOND"
    elif t == '"NULL"' or t == "NULL":
        s = "UNKNOWN"
    else:
        s = "VARCHAR"
    return {"ScalarType": s}


_NAME_OK = re.compile(r"^(measure_value::\w+|[A-Za-z_][\w.\-:]*)$")


def column_info(description: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    """ColumnInfo from a DuckDB cursor description; unaliased expressions become _colN."""
    cols = []
    for i, d in enumerate(description):
        name = str(d[0])
        if not _NAME_OK.match(name):
            name = f"_col{i}"
        cols.append({"Name": name, "Type": scalar_type(str(d[1]))})
    return cols


def _fmt_timestamp(v: dt.datetime) -> str:
    if v.tzinfo is not None:
        v = v.astimezone(dt.UTC).replace(tzinfo=None)
    return v.strftime("%Y-%m-%d %H:%M:%S.") + f"{v.microsecond:06d}000"


def _fmt_interval(v: dt.timedelta) -> str:
    total_us = v // dt.timedelta(microseconds=1)
    sign = "-" if total_us < 0 else ""
    total_us = abs(total_us)
    days, rem = divmod(total_us, 86_400_000_000)
    secs, us = divmod(rem, 1_000_000)
    return f"{sign}{days} {secs // 3600:02d}:{secs % 3600 // 60:02d}:{secs % 60:02d}.{us:06d}000"


def datum(value: Any, typ: dict[str, Any]) -> dict[str, Any]:
    """One Timestream Datum: ScalarValue (always a string), NullValue or ArrayValue."""
    if value is None:
        return {"NullValue": True}
    if "ArrayColumnInfo" in typ:
        inner = typ["ArrayColumnInfo"]["Type"]
        return {"ArrayValue": [datum(v, inner) for v in value]}
    s = typ.get("ScalarType")
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, dt.datetime):
        text = _fmt_timestamp(value)
    elif isinstance(value, dt.date):
        text = value.isoformat()
    elif isinstance(value, dt.time):
        text = value.strftime("%H:%M:%S.") + f"{value.microsecond:06d}000"
    elif isinstance(value, dt.timedelta):
        text = _fmt_interval(value)
    elif s == "DOUBLE" and isinstance(value, (float, int, Decimal)):
        text = repr(float(value))
        text = {"inf": "Infinity", "-inf": "-Infinity", "nan": "NaN"}.get(text, text)
    elif isinstance(value, (dict, list)):
        text = json.dumps(value, default=str)
    else:
        text = str(value)
    return {"ScalarValue": text}


def shape_rows(rows: list[tuple[Any, ...]], cols: list[dict[str, Any]]) -> list[dict[str, Any]]:
    types = [c["Type"] for c in cols]
    return [{"Data": [datum(v, t) for v, t in zip(row, types, strict=True)]} for row in rows]


class QueryEngine:
    """Runs queries on the store and serves their pages (NextToken) from a small cache."""

    PAGE_ROWS = 1000
    PAGE_BYTES = 1_000_000
    CACHE_SIZE = 32
    CACHE_TTL_S = 600

    def __init__(self, store: TimestreamStore) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._pages: OrderedDict[str, tuple[float, dict[str, Any]]] = OrderedDict()

    def query(
        self,
        account: str,
        region: str,
        query_string: str,
        next_token: str | None = None,
        max_rows: int | None = None,
    ) -> dict[str, Any]:
        if next_token:
            return self._resume(next_token, max_rows)
        sql = rewrite(query_string)
        self._store.flush()
        cur = self._store.cursor(account, region)
        try:
            cur.execute(sql)
            cols = column_info(cur.description or [])
            rows = cur.fetchall()
        except duckdb.Error as e:
            raise QueryValidation(_clean_error(e)) from None
        finally:
            cur.close()
        state = {"id": str(uuid.uuid4()), "cols": cols, "rows": rows, "pos": 0}
        return self._page(state, max_rows)

    def _page(self, state: dict[str, Any], max_rows: int | None) -> dict[str, Any]:
        limit = min(max_rows or self.PAGE_ROWS, self.PAGE_ROWS)
        start = state["pos"]
        chunk = state["rows"][start : start + limit]
        shaped = shape_rows(chunk, state["cols"])
        size = 0
        for i, row in enumerate(shaped):
            size += len(json.dumps(row))
            if size > self.PAGE_BYTES and i > 0:
                shaped = shaped[:i]
                break
        state["pos"] = start + len(shaped)
        total_bytes = sum(len(repr(r)) for r in chunk)
        result: dict[str, Any] = {
            "QueryId": state["id"],
            "Rows": shaped,
            "ColumnInfo": state["cols"],
            "QueryStatus": {
                "ProgressPercentage": 100.0,
                "CumulativeBytesScanned": total_bytes,
                "CumulativeBytesMetered": max(total_bytes, 10_000_000),
            },
        }
        if state["pos"] < len(state["rows"]):
            token = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
            with self._lock:
                self._pages[token] = (time.monotonic(), state)
                self._evict()
            result["NextToken"] = token
        return result

    def _resume(self, token: str, max_rows: int | None) -> dict[str, Any]:
        with self._lock:
            entry = self._pages.pop(token, None)
        if entry is None:
            raise QueryValidation("The NextToken is invalid or has expired.")
        return self._page(entry[1], max_rows)

    def _evict(self) -> None:
        now = time.monotonic()
        for token, (created, _) in list(self._pages.items()):
            if now - created > self.CACHE_TTL_S or len(self._pages) > self.CACHE_SIZE:
                del self._pages[token]


def _clean_error(e: Exception) -> str:
    """DuckDB's message, first lines only (no caret diagram), with our macro names undone."""
    text = str(e).split("\n\nLINE")[0].strip()
    return re.sub(r"\bts_(ago|now|bin|to_milliseconds)\b", r"\1", text)
