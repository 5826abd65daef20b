"""Timestream's read side: its SQL, its pages and types, its presets, the probe's lookup.

Timestream pages are <= 1 MB and **can be empty while NextToken is present**, so we page
until the token is gone, and type every value from ``ColumnInfo`` (ScalarValue is always a
string). Presets exist for both record models: ``single`` (the recipe's, one record per
measure, value in ``measure_value::double``) and ``multi`` (one record per message, measure
name :data:`MULTI_MEASURE_NAME`, one column per measure). A multi-measure table only has
columns for measures it has seen, and naming another is an error, so multi presets first
ask which measure columns exist (a ``LIMIT 1`` query whose ColumnInfo is the table's schema).

``quality`` reads the failure queue and the metrics (``iotpipe.failurequeue``): quarantined
messages never reach the table.

``verify --probe`` rows stay in the table (Timestream cannot delete rows): their DeviceId
starts with :data:`PROBE_DEVICE_PREFIX`, and every preset leaves them out (unless
``--device`` names a probe device).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from botocore.exceptions import ClientError

from iotpipe import failurequeue
from iotpipe.aws import error_message, is_not_found
from iotpipe.errors import IotpipeError
from iotpipe.resources.timeseries import closed_service_guard
from iotpipe.stores.base import Result, device_filters, literal
from iotpipe.target import Deployment
from lambda_handler.contract import MULTI_MEASURE_NAME
from lambda_handler.enrich import PROBE_DEVICE_PREFIX as PROBE_DEVICE_PREFIX  # see there

_MISSING_TABLE = re.compile(r"\b(Table|Database)\b.*does not exist")
_NO_DEVICE_COLUMN = re.compile(r"Column '?\"?DeviceId\"?'? does not exist")


def source(database: str, table: str) -> str:
    """The FROM of every query: names come from validated config, so quoting cannot break."""
    return f'"{database}"."{table}"'


# --- running SQL ----------------------------------------------------------------------------


def value(datum: Mapping[str, Any], typ: Mapping[str, Any]) -> Any:
    """One Datum as Python: BIGINT/INTEGER int, DOUBLE float, BOOLEAN bool, NullValue None;
    timestamps and the rest stay the exact strings Timestream returns."""
    if datum.get("NullValue"):
        return None
    if "ArrayValue" in datum:
        inner = typ.get("ArrayColumnInfo", {}).get("Type", {})
        return [value(d, inner) for d in datum["ArrayValue"]]
    if "RowValue" in datum:
        cols = typ.get("RowColumnInfo", [])
        data = datum["RowValue"]["Data"]
        return {c["Name"]: value(d, c["Type"]) for c, d in zip(cols, data, strict=False)}
    if "TimeSeriesValue" in datum:
        inner = typ.get("TimeSeriesMeasureValueColumnInfo", {}).get("Type", {})
        points = datum["TimeSeriesValue"]
        return [{"time": p["Time"], "value": value(p["Value"], inner)} for p in points]
    text = datum.get("ScalarValue")
    if text is None:
        return None
    kind = typ.get("ScalarType")
    if kind in ("BIGINT", "INTEGER"):
        return int(text)
    if kind == "DOUBLE":
        return float(text)
    if kind == "BOOLEAN":
        return text.lower() == "true"
    return text


def _type_name(typ: Mapping[str, Any]) -> str:
    if "ScalarType" in typ:
        return str(typ["ScalarType"])
    if "ArrayColumnInfo" in typ:
        return "ARRAY"
    return "ROW" if "RowColumnInfo" in typ else "TIMESERIES"


def run(client: Any, sql: str) -> Result:
    """Run one query to its last page. Access refusals become the 'closed service' sentence;
    Ctrl-C while paging cancels the query (CancelQuery) before it propagates."""
    result = Result()
    info: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"QueryString": sql}
    query_id = None
    with closed_service_guard():
        while True:
            try:
                page = client.query(**kwargs)
            except KeyboardInterrupt:  # Ctrl-C: stop the query too, not only the client
                if query_id:
                    with contextlib.suppress(Exception):
                        client.cancel_query(QueryId=query_id)
                raise
            query_id = page.get("QueryId") or query_id
            if not info and page.get("ColumnInfo"):
                info = page["ColumnInfo"]
                result.set_columns(info, _type_name)
            result.add_rows(info, (row["Data"] for row in page.get("Rows", [])), value)
            token = page.get("NextToken")
            if not token:
                return result
            kwargs["NextToken"] = token


# --- presets --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scope:
    """What a preset is about. Names come from validated config, so quoting cannot break."""

    database: str
    table: str
    model: str
    measures: tuple[str, ...]
    since: str = "1h"
    device: str | None = None
    limit: int = 10

    @property
    def source(self) -> str:
        return source(self.database, self.table)

    def where(self, *extra: str) -> str:
        parts = [f"time > ago({self.since})", *extra, *device_filters("DeviceId", self.device)]
        return " AND ".join(parts)

    def measure_filter(self) -> str:
        if self.model == "multi":
            return f"measure_name = '{MULTI_MEASURE_NAME}'"
        return f"measure_name IN ({', '.join(literal(m) for m in self.measures)})"


def recent_sql(s: Scope) -> str:
    """The recipe's first query: the latest records."""
    return f"SELECT * FROM {s.source} WHERE {s.where()} ORDER BY time DESC LIMIT {s.limit}"


def by_device_sql(s: Scope) -> str:
    """The recipe's second query (average temperature per device), for every measure."""
    if s.model == "multi":
        avgs = [f'avg("{m}") AS avg_{m}' for m in s.measures]
    else:
        avgs = [
            f"avg(CASE WHEN measure_name = '{m}' THEN measure_value::double END) AS avg_{m}"
            for m in s.measures
        ]
    cols = ", ".join(["DeviceId", *avgs, "count(DISTINCT time) AS messages"])
    return (
        f"SELECT {cols} FROM {s.source} WHERE {s.where(s.measure_filter())} "
        "GROUP BY DeviceId ORDER BY DeviceId"
    )


def per_minute_sql(s: Scope) -> str:
    """avg/min/max per device, measure and minute (``bin(time, 1m)``)."""
    order = "ORDER BY minute, DeviceId, measure"
    if s.model == "single":
        v = "measure_value::double"
        return (
            f"SELECT DeviceId, measure_name AS measure, bin(time, 1m) AS minute, "
            f"avg({v}) AS avg_value, min({v}) AS min_value, max({v}) AS max_value, "
            f"count(*) AS samples FROM {s.source} WHERE {s.where(s.measure_filter())} "
            f"GROUP BY DeviceId, measure_name, bin(time, 1m) {order}"
        )
    parts = []
    for m in s.measures:
        col = f'"{m}"'
        parts.append(
            f"SELECT DeviceId, '{m}' AS measure, bin(time, 1m) AS minute, avg({col}) AS avg_value, "
            f"min({col}) AS min_value, max({col}) AS max_value, count({col}) AS samples "
            f"FROM {s.source} WHERE {s.where(s.measure_filter(), f'{col} IS NOT NULL')} "
            "GROUP BY DeviceId, bin(time, 1m)"
        )
    return f"SELECT * FROM ({' UNION ALL '.join(parts)}) AS per_minute {order}"


SQL_PRESETS: dict[str, Callable[[Scope], str]] = {
    "recent": recent_sql,
    "by-device": by_device_sql,
    "per-minute": per_minute_sql,
}


def probe_sql(database: str, table: str, model: str, device: str, measure: str) -> str:
    """The probe device's value of ``measure`` in the last hour, as ``time`` and ``v``."""
    dev = literal(device)
    if model == "multi":
        return (
            f'SELECT time, "{measure}" AS v FROM {source(database, table)} WHERE DeviceId = {dev} '
            f"AND measure_name = '{MULTI_MEASURE_NAME}' AND time > ago(1h)"
        )
    return (
        f"SELECT time, measure_value::double AS v FROM {source(database, table)} "
        f"WHERE DeviceId = {dev} AND measure_name = '{measure}' AND time > ago(1h)"
    )


def measure_columns(
    client: Any, database: str, table: str, wanted: tuple[str, ...]
) -> tuple[str, ...]:
    """The configured measures that exist as columns of a multi-measure table."""
    schema = run(client, f"SELECT * FROM {source(database, table)} LIMIT 1")
    return tuple(m for m in wanted if m in schema.columns)


def preset(client: Any, name: str, scope: Scope) -> Result:
    """Run a SQL preset; say so in ``notes`` when there is nothing to show."""
    try:
        return _preset(client, name, scope)
    except ClientError as exc:
        if _NO_DEVICE_COLUMN.search(error_message(exc)):  # no row was ever written
            return Result(notes=[empty_note(scope)])
        if is_not_found(exc) or _MISSING_TABLE.search(error_message(exc)):
            raise IotpipeError(
                f"The table {scope.database}.{scope.table} does not exist: run 'iotpipe up' "
                "(or pick the deployment with -c/--config)."
            ) from exc
        raise


def _preset(client: Any, name: str, scope: Scope) -> Result:
    if scope.model == "multi" and name != "recent":
        measures = measure_columns(client, scope.database, scope.table, scope.measures)
        if not measures:
            return Result(notes=[empty_note(scope)])
        scope = replace(scope, measures=measures)
    result = run(client, SQL_PRESETS[name](scope))
    if name == "by-device":
        result = result.drop_empty("avg_")
    if not result.rows:
        result.notes.append(empty_note(scope))
    return result


def empty_note(scope: Scope) -> str:
    who = f" for device {scope.device}" if scope.device else ""
    return (
        f"No rows in {scope.database}.{scope.table}{who} in the last {scope.since}: "
        "send data with 'iotpipe send-test' (the pipeline takes a few seconds), "
        "or widen --since."
    )


# --- one deployment's table (the Store interface) ---------------------------------------------


class TimestreamReader:
    """This deployment's Timestream table, read through :class:`iotpipe.stores.base.Store`."""

    def __init__(self, dep: Deployment) -> None:
        self._dep = dep
        self.database, self.table = dep.names.database, dep.names.table
        self.model = dep.config.timestream.record_model
        self.measures = tuple(dep.config.sensors)

    @property
    def _client(self) -> Any:
        return self._dep.gateway.client("timestream-query")

    def run(self, sql: str) -> Result:
        return run(self._client, sql)

    def user_sql(self, sql: str) -> Result:
        client = self._client
        try:
            result = run(client, sql)
        except ClientError as exc:
            raise self._with_hint(exc, client) from exc
        if not result.rows:
            result.notes.append("The query returned no rows.")
        return result

    def preset(self, name: str, *, since: str, device: str | None, limit: int) -> Result:
        scope = Scope(self.database, self.table, self.model, self.measures, since, device, limit)
        return preset(self._client, name, scope)

    def quality(self, *, since: str | None, device: str | None) -> Result:
        return failurequeue.quarantine_report(self._dep, since=since, device=device)

    def count(self, since: str) -> int:
        source = f'"{self.database}"."{self.table}"'
        rows = run(self._client, f"SELECT count(*) AS n FROM {source} WHERE time > ago({since})")
        return int(rows.rows[0]["n"]) if rows.rows else 0

    def probe_rows(self, device: str, measure: str) -> list[dict[str, Any]]:
        sql = probe_sql(self.database, self.table, self.model, device, measure)
        return run(self._client, sql).rows

    def _with_hint(self, exc: ClientError, client: Any) -> Exception:
        """On a multi-measure table ``measure_value::double`` fails (on AWS too): say what
        works."""
        message = error_message(exc)
        if "measure_value::" not in message or "does not exist" not in message:
            return exc
        db, table = self.database, self.table
        try:
            columns = measure_columns(client, db, table, self.measures)
        except ClientError:
            columns = ()
        columns = columns or self.measures
        example = columns[0] if columns else "temperature"
        return IotpipeError(
            f"Timestream: {message}\n"
            "This table stores multi-measure records (record_model: multi): each measure is a "
            f"column of its own{', here: ' + ', '.join(columns) if columns else ''}. Write e.g. "
            f"avg({example}) with WHERE measure_name = '{MULTI_MEASURE_NAME}' instead of "
            f"measure_value::double; DESCRIBE {source(db, table)} lists the columns."
        )
