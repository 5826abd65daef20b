"""Athena's client side: start a query, wait for it, read every page, type every value.

Why so much by hand: botocore has **no Athena waiter**, and a query's state may go back
from RUNNING to QUEUED on a transient error, so only SUCCEEDED, FAILED and CANCELLED end
the wait (polled with :mod:`iotpipe.poll`, on an injected clock). Results are strings
(``VarCharValue``; a NULL cell has none), typed here from ``ResultSetMetadata.ColumnInfo``.
For a SELECT (StatementType DML) the first row of the **first page only** is the header
row; DDL, SHOW and DESCRIBE results have none (REFERENCE.md part 2 section 5).

Every query runs in the deployment's workgroup, whose enforced configuration sets the
result location and the bytes-scanned cutoff, and in the lake's database, so a bare
``telemetry`` resolves. What a query scanned (what Athena bills) goes in the notes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from iotpipe import poll
from iotpipe.aws import error_message
from iotpipe.errors import IotpipeError
from iotpipe.sizes import human_bytes
from iotpipe.stores.base import Result

DONE = ("SUCCEEDED", "FAILED", "CANCELLED")
PAGE_ROWS = 1000  # GetQueryResults' MaxResults limit
DEFAULT_TIMEOUT_S = 300.0
# Athena's billing (REFERENCE.md 5): per MB rounded up, at least 10 MB per query.
MIN_BILLED_BYTES = 10_000_000  # decimal MB, like the API's own 10,000,000-byte cutoff minimum
_INTEGERS = {"tinyint", "smallint", "integer", "int", "bigint"}
_FLOATS = {"double", "real", "float"}
_TYPE_NAMES = {
    "tinyint": "INTEGER",
    "smallint": "INTEGER",
    "integer": "INTEGER",
    "int": "INTEGER",
    "bigint": "BIGINT",
    "double": "DOUBLE",
    "real": "DOUBLE",
    "float": "DOUBLE",
    "boolean": "BOOLEAN",
    "varchar": "VARCHAR",
    "char": "VARCHAR",
    "string": "VARCHAR",
    "date": "DATE",
}


class AthenaQueryError(IotpipeError):
    """A query that ended FAILED or CANCELLED, or did not end in time: one line."""

    def __init__(self, message: str, reason: str = "", query_id: str = "") -> None:
        super().__init__(message)
        self.reason = reason
        self.query_id = query_id


@dataclass(frozen=True)
class Where:
    """Where a query runs: the deployment's workgroup and the lake's database."""

    workgroup: str
    database: str
    timeout_s: float = DEFAULT_TIMEOUT_S
    backoff: poll.Backoff = field(
        default_factory=lambda: poll.Backoff(first=0.2, factor=1.5, cap=2.0)
    )
    clock: poll.Clock = field(default_factory=poll.Clock)


# --- values ------------------------------------------------------------------------------------


def base_type(athena_type: str) -> str:
    """``varchar(12)`` -> ``varchar``; ``timestamp(3) with time zone`` -> ``timestamp...``."""
    return athena_type.split("(", 1)[0].strip().lower()


def type_name(athena_type: str) -> str:
    """The renderers' names (Timestream's): BIGINT, INTEGER, DOUBLE, TIMESTAMP, VARCHAR..."""
    base = base_type(athena_type)
    if base.startswith("timestamp"):
        return "TIMESTAMP"
    return _TYPE_NAMES.get(base, base.upper())


def value(datum: Mapping[str, Any], athena_type: str) -> Any:
    """One cell as Python: integers int, double/real float, boolean bool, no VarCharValue
    None; timestamps, dates, decimals and the rest stay Athena's exact text."""
    if "VarCharValue" not in datum:
        return None
    text = datum["VarCharValue"]
    base = base_type(athena_type)
    if base in _INTEGERS:
        return int(text)
    if base in _FLOATS:
        return float(text)  # Athena spells NaN, Infinity and -Infinity as float() reads them
    if base == "boolean":
        return text.lower() == "true"
    return text


# --- one query ---------------------------------------------------------------------------------


def start(client: Any, sql: str, where: Where) -> str:
    """StartQueryExecution in the workgroup and database; a missing workgroup is a fix."""
    try:
        resp = client.start_query_execution(
            QueryString=sql,
            WorkGroup=where.workgroup,
            QueryExecutionContext={"Database": where.database},
        )
    except ClientError as exc:
        message = error_message(exc)
        if "WorkGroup" in message and ("not found" in message or "does not exist" in message):
            raise IotpipeError(
                f"The Athena workgroup {where.workgroup} does not exist: run 'iotpipe up' "
                "with lake.enabled: true (or pick the deployment with -c/--config)."
            ) from exc
        raise
    return str(resp["QueryExecutionId"])


def wait(client: Any, query_id: str, where: Where) -> dict[str, Any]:
    """Poll GetQueryExecution until the state is final; FAILED/CANCELLED raise one line.

    QUEUED after RUNNING is not an end (Athena retries transient errors). Past
    ``timeout_s`` the query is stopped (StopQueryExecution), not left running to be billed.
    """

    def state() -> dict[str, Any] | None:
        execution: dict[str, Any] = client.get_query_execution(QueryExecutionId=query_id)[
            "QueryExecution"
        ]
        return execution if execution.get("Status", {}).get("State") in DONE else None

    try:
        execution = poll.until(
            state, timeout=where.timeout_s, backoff=where.backoff, clock=where.clock
        )
    except poll.TimedOut as exc:
        stop(client, query_id)
        raise AthenaQueryError(
            f"Athena query {query_id} did not finish in {exc.waited:.0f} s and was stopped.",
            query_id=query_id,
        ) from None
    status = execution["Status"]
    if status["State"] != "SUCCEEDED":
        raise failed(query_id, status)
    return execution


def failed(query_id: str, status: Mapping[str, Any]) -> AthenaQueryError:
    """FAILED or CANCELLED as one line: Athena's reason, with a fix for the usual ones."""
    reason = " ".join(str(status.get("StateChangeReason") or "").split())
    if not reason:
        reason = " ".join(str(status.get("AthenaError", {}).get("ErrorMessage", "")).split())
    verb = "was cancelled" if status.get("State") == "CANCELLED" else "failed"
    text = f"Athena query {query_id} {verb}" + (f": {reason}" if reason else ".")
    lowered = reason.lower()
    if "bytes scanned" in lowered and "limit" in lowered:
        text += " (the workgroup's cutoff, lake.scan_limit_gb: narrow --since or raise the limit)"
    return AthenaQueryError(text, reason, query_id)


def stop(client: Any, query_id: str) -> None:
    """Best effort: a stopped query costs only what it scanned so far."""
    with contextlib.suppress(Exception):
        client.stop_query_execution(QueryExecutionId=query_id)


def results(client: Any, query_id: str, *, header: bool) -> Result:
    """Every page of GetQueryResults; ``header``: drop the first row of the first page."""
    result = Result()
    info: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"QueryExecutionId": query_id, "MaxResults": PAGE_ROWS}
    first = True
    while True:
        page = client.get_query_results(**kwargs)
        result_set = page.get("ResultSet", {})
        if not info:
            info = result_set.get("ResultSetMetadata", {}).get("ColumnInfo", [])
            result.set_columns(info, type_name)
        rows = result_set.get("Rows", [])
        if first and header and rows:
            rows = rows[1:]
        first = False
        result.add_rows(info, (row.get("Data", []) for row in rows), value)
        token = page.get("NextToken")
        if not token:
            return result
        kwargs["NextToken"] = token


def run(client: Any, sql: str, where: Where) -> Result:
    """Start, wait, read every page; Ctrl-C stops the query before it propagates."""
    query_id = start(client, sql, where)
    try:
        execution = wait(client, query_id, where)
        header = execution.get("StatementType", "DML") == "DML"
        result = results(client, query_id, header=header)
    except KeyboardInterrupt:
        stop(client, query_id)
        raise
    note = scanned_note(execution)
    if note:
        result.notes.append(note)
    return result


def scanned_note(execution: Mapping[str, Any]) -> str:
    """What the query read (what Athena bills: per MB, at least 10 MB a query)."""
    stats = execution.get("Statistics", {})
    if "DataScannedInBytes" not in stats:
        return ""
    scanned = int(stats["DataScannedInBytes"])
    took = stats.get("TotalExecutionTimeInMillis")
    timing = f" in {int(took) / 1000:.1f} s" if took is not None else ""
    billed = max(scanned, MIN_BILLED_BYTES)
    return (
        f"Athena scanned {human_bytes(scanned)}{timing} "
        f"(billed as {human_bytes(billed)}: at least 10 MB a query)."
    )
