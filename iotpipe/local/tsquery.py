"""Timestream queries answered by DuckDB, in Timestream's exact response shape.

`QueryEngine` is what the patched Query and CancelQuery call: the query goes through the
gate (`tssql`: parsed, one read-only SELECT, Timestream's functions and tables only) or is
a SHOW/DESCRIBE (`tsmeta`), runs as a time-limited, cancellable job (`tsjobs`) on a
read-only DuckDB transaction, and is paged with NextToken. `column_info`/`datum` turn
DuckDB values into ColumnInfo and Datum (pure, unit-tested without a server).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from decimal import Decimal
from typing import Any

import duckdb

from iotpipe.local import tsmeta, tssql
from iotpipe.local.tsjobs import Job, Jobs, Limits, QueryCancelled, QueryFailed
from iotpipe.local.tssql import EmptyQuery, QueryValidation
from iotpipe.local.tsstore import TimestreamStore

__all__ = ["EmptyQuery", "QueryEngine", "QueryFailed", "QueryValidation", "column_info", "datum"]


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
    if "RowColumnInfo" in typ:
        fields = typ["RowColumnInfo"]
        values = list(value.values()) if isinstance(value, dict) else list(value)
        data = [datum(v, f["Type"]) for v, f in zip(values, fields, strict=True)]
        return {"RowValue": {"Data": data}}
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
    """Runs queries on the store and serves their pages (NextToken) from a bounded cache."""

    PAGE_ROWS = 1000
    PAGE_BYTES = 1_000_000
    FETCH_ROWS = 10_000

    def __init__(self, store: TimestreamStore, jobs: Jobs | None = None) -> None:
        self._store = store
        self.jobs = jobs or Jobs(Limits.from_env())

    def query(
        self,
        account: str,
        region: str,
        query_string: str,
        next_token: str | None = None,
        max_rows: int | None = None,
        client_token: str | None = None,
    ) -> dict[str, Any]:
        if next_token:
            resumed, pos = self.jobs.resume(next_token, query_string)
            return self._answer(resumed, pos, max_rows)
        if client_token and (job := self.jobs.for_client_token(client_token, query_string)):
            return self._answer(job, 0, max_rows)  # a retry joins the query already running
        work = self._work(account, region, query_string)
        return self._answer(self.jobs.start(query_string, work, client_token), 0, max_rows)

    def cancel(self, query_id: str) -> str | None:
        return self.jobs.cancel(query_id)

    def _work(self, account: str, region: str, query_string: str) -> Any:
        """Check the query now (errors answer at once); return what its job will run."""
        src = tssql.tokenize(query_string)
        meta = tsmeta.parse_meta(src)
        sql = None
        if meta is None:
            sql = tssql.checked(
                src,
                self._store.catalog_name(account, region),
                lambda db, t: self._store.has_table(account, region, db, t),
            )
        self._store.flush()  # read your writes

        def work(job: Job) -> tuple[list[dict[str, Any]], list[tuple[Any, ...]]]:
            cur = self._store.cursor(account, region)  # BEGIN TRANSACTION READ ONLY
            job.cursor = cur
            try:
                job.check()
                if meta is not None:
                    return tsmeta.answer(meta, self._store, account, region, cur)
                return self._select(job, cur, src, str(sql))
            except duckdb.InterruptException:
                raise
            except duckdb.Error as e:
                raise QueryValidation(tssql.timestream_error(src, str(e))) from None
            finally:
                job.cursor = None
                cur.close()

        return work

    def _select(
        self, job: Job, cur: Any, src: tssql.Source, sql: str
    ) -> tuple[list[dict[str, Any]], list[tuple[Any, ...]]]:
        statements = cur.extract_statements(sql)  # DuckDB's own parser: the second gate
        if len(statements) != 1 or statements[0].type != duckdb.StatementType.SELECT:
            raise QueryValidation("line 1:1: only SELECT queries are supported")
        cur.execute(sql)
        cols = column_info(cur.description or [])
        rows: list[tuple[Any, ...]] = []
        limit = self.jobs.limits.max_rows
        while chunk := cur.fetchmany(self.FETCH_ROWS):
            job.check()
            rows.extend(chunk)
            if len(rows) > limit:
                raise QueryFailed(
                    f"The result has more than {limit:,} rows, the embedded AWS's limit: "
                    "aggregate (GROUP BY, bin(time, 1m)), narrow the time range or add a LIMIT."
                )
        return cols, rows

    def _answer(self, job: Job, pos: int, max_rows: int | None) -> dict[str, Any]:
        self.jobs.wait(job)
        if job.state == "running":  # still running: no rows yet, poll with the token
            return {
                "QueryId": job.id,
                "Rows": [],
                "ColumnInfo": [],
                "NextToken": self.jobs.token(job, 0),
                "QueryStatus": _status(0.0, 0),
            }
        if job.error is not None:
            raise job.error
        if job.state == "timed_out":
            raise QueryFailed(
                f"Query timed out after {self.jobs.limits.timeout_s:g} seconds and was stopped: "
                "narrow the time range, aggregate (bin(time, 1m)) or add a LIMIT."
            )
        if job.state != "finished":
            raise QueryCancelled("Unable to poll results for a cancelled query.")
        return self._page(job, pos, max_rows)

    def _page(self, job: Job, start: int, max_rows: int | None) -> dict[str, Any]:
        limit = min(max_rows or self.PAGE_ROWS, self.PAGE_ROWS)
        chunk = job.rows[start : start + limit]
        shaped = shape_rows(chunk, job.cols)
        size = 0
        for i, row in enumerate(shaped):
            size += len(json.dumps(row))
            if size > self.PAGE_BYTES and i > 0:
                shaped = shaped[:i]
                break
        end = start + len(shaped)
        result: dict[str, Any] = {
            "QueryId": job.id,
            "Rows": shaped,
            "ColumnInfo": job.cols,
            "QueryStatus": _status(100.0, size),
        }
        if end < len(job.rows):
            result["NextToken"] = self.jobs.token(job, end)
        else:
            self.jobs.drop(job)  # last page served: free the result
        return result


def _status(progress: float, size: int) -> dict[str, Any]:
    return {
        "ProgressPercentage": progress,
        "CumulativeBytesScanned": size,
        "CumulativeBytesMetered": max(size, 10_000_000) if progress else 0,
    }
