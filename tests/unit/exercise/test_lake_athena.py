"""The Athena client path (botocore Stubber): states and their order, the one-line
failure, the header row on the first page only, NULL cells, typed values, the scan note."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber
from fake_clock import FakeClock

from iotpipe.errors import IotpipeError
from iotpipe.poll import Backoff
from iotpipe.stores import athena

QID = "11111111-2222-3333-4444-555555555555"
COLS = [
    {"Name": "device_id", "Type": "varchar"},
    {"Name": "n", "Type": "bigint"},
    {"Name": "avg_temperature", "Type": "double"},
    {"Name": "time", "Type": "timestamp"},
]


def client_and_stub() -> tuple[Any, Stubber]:
    client = boto3.client(
        "athena", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    return client, Stubber(client)


def where(clock: FakeClock, timeout_s: float = 60.0) -> athena.Where:
    backoff = Backoff(first=0.2, factor=1.5, cap=2.0)
    return athena.Where(
        "wg-abc", "lake_db", timeout_s=timeout_s, backoff=backoff, clock=clock.clock
    )


def expect_start(stub: Stubber, sql: str) -> None:
    stub.add_response(
        "start_query_execution",
        {"QueryExecutionId": QID},
        {
            "QueryString": sql,
            "WorkGroup": "wg-abc",
            "QueryExecutionContext": {"Database": "lake_db"},
        },
    )


def expect_state(
    stub: Stubber, state: str, reason: str | None = None, scanned: int | None = None
) -> None:
    status: dict[str, Any] = {"State": state}
    if reason:
        status["StateChangeReason"] = reason
    execution: dict[str, Any] = {"QueryExecutionId": QID, "Status": status, "StatementType": "DML"}
    if scanned is not None:
        execution["Statistics"] = {
            "DataScannedInBytes": scanned,
            "TotalExecutionTimeInMillis": 1500,
        }
    stub.add_response(
        "get_query_execution", {"QueryExecution": execution}, {"QueryExecutionId": QID}
    )


def cells(*values: str | None) -> dict[str, Any]:
    return {"Data": [{} if v is None else {"VarCharValue": v} for v in values]}


def expect_page(
    stub: Stubber, rows: list[dict[str, Any]], token: str | None, after: str | None
) -> None:
    resp: dict[str, Any] = {
        "ResultSet": {"Rows": rows, "ResultSetMetadata": {"ColumnInfo": COLS}},
        "UpdateCount": 0,
    }
    if token:
        resp["NextToken"] = token
    params: dict[str, Any] = {"QueryExecutionId": QID, "MaxResults": 1000}
    if after:
        params["NextToken"] = after
    stub.add_response("get_query_results", resp, params)


HEADER = cells("device_id", "n", "avg_temperature", "time")


@pytest.mark.parametrize(
    "states",
    [["QUEUED", "RUNNING", "SUCCEEDED"], ["RUNNING", "QUEUED", "SUCCEEDED"]],
    ids=["queued-running-succeeded", "running-back-to-queued"],
)
def test_waits_through_every_non_final_state_on_the_injected_clock(states: list[str]) -> None:
    client, stub = client_and_stub()
    clock = FakeClock()
    expect_start(stub, "SELECT 1")
    for state in states[:-1]:
        expect_state(stub, state)
    expect_state(stub, states[-1], scanned=3 * 1024**2)
    expect_page(
        stub, [HEADER, cells("sensor001", "3", "21.5", "2026-12-02 18:00:00.123")], None, None
    )
    with stub:
        result = athena.run(client, "SELECT 1", where(clock))
    stub.assert_no_pending_responses()
    assert clock.pauses == [0.2, 0.2 * 1.5]  # one pause per non-final state, QUEUED again too
    assert result.rows == [
        {
            "device_id": "sensor001",
            "n": 3,
            "avg_temperature": 21.5,
            "time": "2026-12-02 18:00:00.123",
        }
    ]
    assert result.notes == [
        "Athena scanned 3.1 MB in 1.5 s (billed as 10.0 MB: at least 10 MB a query)."
    ]


def test_failed_is_one_clear_line_with_the_state_change_reason() -> None:
    client, stub = client_and_stub()
    expect_start(stub, "SELECT nope")
    expect_state(stub, "RUNNING")
    expect_state(
        stub,
        "FAILED",
        reason="COLUMN_NOT_FOUND: line 1:8: Column 'nope' cannot be resolved\n or requester...",
    )
    with stub, pytest.raises(athena.AthenaQueryError) as err:
        athena.run(client, "SELECT nope", where(FakeClock()))
    text = str(err.value)
    assert "\n" not in text and text.startswith(f"Athena query {QID} failed: COLUMN_NOT_FOUND")
    assert "Column 'nope' cannot be resolved or requester..." in text
    assert err.value.reason.startswith("COLUMN_NOT_FOUND") and err.value.query_id == QID
    assert isinstance(err.value, IotpipeError)  # one line and exit 1, no traceback


def test_scan_cutoff_failure_names_the_config_key() -> None:
    status = {
        "State": "FAILED",
        "StateChangeReason": "Query exhausted: Bytes scanned limit was exceeded",
    }
    assert "lake.scan_limit_gb" in str(athena.failed(QID, status))
    cancelled = athena.failed(QID, {"State": "CANCELLED"})
    assert str(cancelled) == f"Athena query {QID} was cancelled."


def test_a_query_that_never_ends_is_stopped_at_the_timeout() -> None:
    client, stub = client_and_stub()
    clock = FakeClock()
    expect_start(stub, "SELECT 1")
    for _ in range(4):
        expect_state(stub, "RUNNING")
    stub.add_response("stop_query_execution", {}, {"QueryExecutionId": QID})
    # 0.2 + 0.3 + 0.45 = 0.95 s slept; the next pause (0.675) would pass 1.5 s
    with (
        stub,
        pytest.raises(athena.AthenaQueryError, match="did not finish in 1 s and was stopped"),
    ):
        athena.run(client, "SELECT 1", where(clock, timeout_s=1.5))
    stub.assert_no_pending_responses()


def test_pages_over_three_with_the_header_on_page_one_only_and_null_cells() -> None:
    client, stub = client_and_stub()
    expect_start(stub, "SQL")
    expect_state(stub, "SUCCEEDED")
    expect_page(stub, [HEADER, cells("a", "1", "1.5", "2026-12-02 00:00:00.000")], "t1", None)
    # page 2's first row is data, though it looks like a header would
    expect_page(
        stub, [cells("device_id", None, None, None), cells("b", "2", None, None)], "t2", "t1"
    )
    expect_page(stub, [cells("c", "3", "NaN", "2026-12-02 00:00:02.500")], None, "t2")
    with stub:
        result = athena.run(client, "SQL", where(FakeClock()))
    stub.assert_no_pending_responses()
    assert [r["device_id"] for r in result.rows] == ["a", "device_id", "b", "c"]
    assert result.rows[1] == {
        "device_id": "device_id",
        "n": None,
        "avg_temperature": None,
        "time": None,
    }
    assert result.columns == ["device_id", "n", "avg_temperature", "time"]
    assert result.types == ["VARCHAR", "BIGINT", "DOUBLE", "TIMESTAMP"]
    assert result.rows[3]["avg_temperature"] != result.rows[3]["avg_temperature"]  # NaN


def test_ddl_results_have_no_header_row() -> None:
    client, stub = client_and_stub()
    expect_start(stub, "SHOW TABLES")
    stub.add_response(
        "get_query_execution",
        {
            "QueryExecution": {
                "QueryExecutionId": QID,
                "Status": {"State": "SUCCEEDED"},
                "StatementType": "DDL",
            }
        },
        {"QueryExecutionId": QID},
    )
    stub.add_response(
        "get_query_results",
        {
            "ResultSet": {
                "Rows": [{"Data": [{"VarCharValue": "telemetry"}]}],
                "ResultSetMetadata": {"ColumnInfo": [{"Name": "tab_name", "Type": "string"}]},
            }
        },
        {"QueryExecutionId": QID, "MaxResults": ANY},
    )
    with stub:
        result = athena.run(client, "SHOW TABLES", where(FakeClock()))
    assert result.rows == [{"tab_name": "telemetry"}] and result.types == ["VARCHAR"]


@pytest.mark.parametrize(
    ("text", "typ", "expected"),
    [
        ("42", "bigint", 42),
        ("7", "integer", 7),
        ("-3", "smallint", -3),
        ("2.5", "double", 2.5),
        ("1.25", "real", 1.25),
        ("true", "boolean", True),
        ("false", "boolean", False),
        ("2026-12-02 18:00:00.123", "timestamp", "2026-12-02 18:00:00.123"),
        (
            "2026-12-02 18:00:00.123 UTC",
            "timestamp(3) with time zone",
            "2026-12-02 18:00:00.123 UTC",
        ),
        ("sensor001", "varchar", "sensor001"),
        ("12.30", "decimal(10,2)", "12.30"),  # exact, not a float
        ("Infinity", "double", float("inf")),
    ],
)
def test_values_are_typed_from_column_info(text: str, typ: str, expected: Any) -> None:
    assert athena.value({"VarCharValue": text}, typ) == expected
    assert athena.value({}, typ) is None  # NULL: no VarCharValue at all


def test_type_names_are_the_renderers() -> None:
    assert [
        athena.type_name(t)
        for t in ("bigint", "integer", "double", "varchar(12)", "timestamp(3)", "boolean", "date")
    ] == ["BIGINT", "INTEGER", "DOUBLE", "VARCHAR", "TIMESTAMP", "BOOLEAN", "DATE"]


def test_a_missing_workgroup_says_to_run_up() -> None:
    client, stub = client_and_stub()
    stub.add_client_error(
        "start_query_execution", "InvalidRequestException", "WorkGroup wg-abc is not found."
    )
    with (
        stub,
        pytest.raises(IotpipeError, match="workgroup wg-abc does not exist: run 'iotpipe up'"),
    ):
        athena.run(client, "SELECT 1", where(FakeClock()))
