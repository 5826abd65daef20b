"""Query: pagination (incl. empty pages with NextToken), typing, preset SQL, renderers,
and the non-destructive peek of the failure queue behind the ``quality`` preset."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from iotpipe.cli.exercise import to_csv, to_json
from iotpipe.errors import IotpipeError, UsageError
from iotpipe.failurequeue import Quarantined, forget, peek, quality
from iotpipe.query import query_deployment
from iotpipe.resources.errors import ServiceUnavailableError
from iotpipe.stores.base import Result, seconds
from iotpipe.stores.timestream import (
    PROBE_DEVICE_PREFIX,
    Scope,
    by_device_sql,
    per_minute_sql,
    preset,
    recent_sql,
    run,
    value,
)

COLS = [
    {"Name": "DeviceId", "Type": {"ScalarType": "VARCHAR"}},
    {"Name": "avg_temperature", "Type": {"ScalarType": "DOUBLE"}},
    {"Name": "messages", "Type": {"ScalarType": "BIGINT"}},
    {"Name": "time", "Type": {"ScalarType": "TIMESTAMP"}},
    {"Name": "ok", "Type": {"ScalarType": "BOOLEAN"}},
]


def row(dev: str, avg: float | None, n: int, ok: bool = True) -> dict[str, Any]:
    return {
        "Data": [
            {"ScalarValue": dev},
            {"ScalarValue": repr(avg)} if avg is not None else {"NullValue": True},
            {"ScalarValue": str(n)},
            {"ScalarValue": "2026-11-27 00:50:18.123000000"},
            {"ScalarValue": "true" if ok else "false"},
        ]
    }


def page(rows: list[dict[str, Any]], token: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"QueryId": "q1", "Rows": rows, "ColumnInfo": COLS}
    if token:
        out["NextToken"] = token
    return out


def stubbed() -> tuple[Any, Stubber]:
    client = boto3.client(
        "timestream-query",
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        endpoint_url="http://127.0.0.1:1",  # no endpoint discovery with the Stubber
    )
    return client, Stubber(client)


def test_pages_to_the_end_through_empty_pages_and_types_values() -> None:
    client, stub = stubbed()
    stub.add_response("query", page([], "t1"), {"QueryString": "SQL"})
    stub.add_response(
        "query", page([row("sensor001", 22.5, 3)], "t2"), {"QueryString": "SQL", "NextToken": "t1"}
    )
    stub.add_response("query", page([], "t3"), {"QueryString": "SQL", "NextToken": "t2"})
    stub.add_response(
        "query",
        page([row("sensor002", None, 4, ok=False)]),
        {"QueryString": "SQL", "NextToken": "t3"},
    )
    with stub:
        result = run(client, "SQL")
    stub.assert_no_pending_responses()
    assert result.columns == ["DeviceId", "avg_temperature", "messages", "time", "ok"]
    assert result.types == ["VARCHAR", "DOUBLE", "BIGINT", "TIMESTAMP", "BOOLEAN"]
    assert result.rows == [
        {
            "DeviceId": "sensor001",
            "avg_temperature": 22.5,
            "messages": 3,
            "time": "2026-11-27 00:50:18.123000000",
            "ok": True,
        },
        {
            "DeviceId": "sensor002",
            "avg_temperature": None,
            "messages": 4,
            "time": "2026-11-27 00:50:18.123000000",
            "ok": False,
        },
    ]


def test_access_denied_is_the_closed_service_sentence() -> None:
    client, stub = stubbed()
    stub.add_client_error("query", "AccessDeniedException", "not authorized")
    with stub, pytest.raises(ServiceUnavailableError, match="closed to new customers"):
        run(client, "SELECT 1")


def test_nested_values_are_typed() -> None:
    arr = {"ArrayColumnInfo": {"Type": {"ScalarType": "INTEGER"}}}
    assert value({"ArrayValue": [{"ScalarValue": "1"}, {"NullValue": True}]}, arr) == [1, None]
    rowt = {"RowColumnInfo": [{"Name": "a", "Type": {"ScalarType": "DOUBLE"}}]}
    assert value({"RowValue": {"Data": [{"ScalarValue": "1.5"}]}}, rowt) == {"a": 1.5}
    ts = {"TimeSeriesMeasureValueColumnInfo": {"Type": {"ScalarType": "BIGINT"}}}
    datum = {
        "TimeSeriesValue": [
            {"Time": "2026-01-01 00:00:00.000000000", "Value": {"ScalarValue": "7"}}
        ]
    }
    assert value(datum, ts) == [{"time": "2026-01-01 00:00:00.000000000", "value": 7}]
    assert (
        value({"ScalarValue": "1 00:00:00.000000000"}, {"ScalarType": "INTERVAL_DAY_TO_SECOND"})
        == "1 00:00:00.000000000"
    )


SINGLE = Scope("db", "t", "single", ("temperature", "humidity"), "2h", None)
MULTI = Scope("db", "t", "multi", ("temperature", "humidity"), "1h", "sensor'1")


def test_recent_is_the_recipes_first_query() -> None:
    assert recent_sql(Scope("db", "t", "single", (), "1h")) == (
        'SELECT * FROM "db"."t" WHERE time > ago(1h) AND DeviceId NOT LIKE \'iotpipe-probe-%\' '
        "ORDER BY time DESC LIMIT 10"
    )


@pytest.mark.parametrize("sql", [recent_sql, by_device_sql, per_minute_sql])
@pytest.mark.parametrize("model", ["single", "multi"])
def test_every_preset_leaves_verify_probe_rows_out(sql: Any, model: str) -> None:
    scope = Scope("db", "t", model, ("temperature", "humidity"), "1h")
    text = sql(scope)
    assert f"DeviceId NOT LIKE '{PROBE_DEVICE_PREFIX}%'" in text
    assert text.count("NOT LIKE") == (2 if model == "multi" and sql is per_minute_sql else 1)
    probe = Scope("db", "t", model, ("temperature",), "1h", f"{PROBE_DEVICE_PREFIX}ab12")
    assert "NOT LIKE" not in sql(probe)  # asking for a probe device shows it


def test_the_probe_marks_its_rows_with_the_prefix_presets_leave_out() -> None:
    from datetime import UTC, datetime
    from types import SimpleNamespace

    from iotpipe.verify import Probe

    cfg = SimpleNamespace(
        validation=SimpleNamespace(unknown_devices="accept"),
        devices={},
        sensors={"temperature": SimpleNamespace(min=0.0, max=100.0)},
    )
    probe = Probe.for_deployment(SimpleNamespace(config=cfg), datetime.now(UTC), "ab12cd34")
    assert probe.device == f"{PROBE_DEVICE_PREFIX}ab12cd34"


def test_by_device_for_both_models() -> None:
    single = by_device_sql(SINGLE)
    case = "CASE WHEN measure_name = 'temperature' THEN measure_value::double END"
    assert f"avg({case}) AS avg_temperature" in single
    assert "measure_name IN ('temperature', 'humidity')" in single and "ago(2h)" in single
    multi = by_device_sql(MULTI)
    assert 'avg("temperature") AS avg_temperature' in multi and "measure_name = 'metrics'" in multi
    assert "DeviceId = 'sensor''1'" in multi  # quotes doubled: no way out of the literal
    assert multi.endswith("GROUP BY DeviceId ORDER BY DeviceId")


def test_per_minute_for_both_models() -> None:
    single = per_minute_sql(SINGLE)
    assert (
        "bin(time, 1m) AS minute" in single
        and "GROUP BY DeviceId, measure_name, bin(time, 1m)" in single
    )
    multi = per_minute_sql(MULTI)
    assert multi.count("UNION ALL") == 1 and "'humidity' AS measure" in multi
    assert '"humidity" IS NOT NULL' in multi and multi.endswith(
        "ORDER BY minute, DeviceId, measure"
    )


def test_multi_presets_use_only_existing_measure_columns() -> None:
    client, stub = stubbed()
    schema = [
        {"Name": n, "Type": {"ScalarType": t}}
        for n, t in [
            ("DeviceId", "VARCHAR"),
            ("measure_name", "VARCHAR"),
            ("time", "TIMESTAMP"),
            ("temperature", "DOUBLE"),
        ]
    ]
    stub.add_response("query", {"QueryId": "q", "Rows": [], "ColumnInfo": schema})
    answer = {
        "QueryId": "q",
        "Rows": [{"Data": [{"ScalarValue": "s1"}, {"ScalarValue": "20.0"}, {"ScalarValue": "2"}]}],
        "ColumnInfo": [COLS[0], COLS[1], COLS[2]],
    }
    scope = Scope("db", "t", "multi", ("temperature", "humidity"))
    stub.add_response(
        "query", answer, {"QueryString": by_device_sql(Scope("db", "t", "multi", ("temperature",)))}
    )
    with stub:
        result = preset(client, "by-device", scope)
    assert result.rows == [{"DeviceId": "s1", "avg_temperature": 20.0, "messages": 2}]
    assert not result.notes


def test_empty_results_say_what_to_do() -> None:
    client, stub = stubbed()
    stub.add_response("query", {"QueryId": "q", "Rows": [], "ColumnInfo": COLS})
    with stub:
        result = preset(client, "recent", SINGLE)
    assert result.rows == [] and "send-test" in result.notes[0]


def test_a_missing_table_says_run_up() -> None:
    client, stub = stubbed()
    stub.add_client_error("query", "ValidationException", 'Table "db"."t" does not exist')
    with stub, pytest.raises(IotpipeError, match=r"db\.t does not exist: run 'iotpipe up'"):
        preset(client, "recent", SINGLE)


def test_a_table_without_rows_yet_is_an_empty_result_not_an_error() -> None:
    client, stub = stubbed()  # no DeviceId column until the first row arrives
    stub.add_client_error(
        "query", "ValidationException", "line 1:62: Column 'DeviceId' does not exist"
    )
    with stub:
        result = preset(client, "recent", SINGLE)
    assert result.rows == [] and "send-test" in result.notes[0]


def fake_deployment(client: Any) -> Any:
    from types import SimpleNamespace

    return SimpleNamespace(
        gateway=SimpleNamespace(client=lambda service: client),
        names=SimpleNamespace(database="db", table="t"),
        config=SimpleNamespace(
            sensors={"temperature": None, "humidity": None},
            timestream=SimpleNamespace(record_model="multi", enabled=True),
            lake=SimpleNamespace(enabled=False),
        ),
    )


@pytest.mark.parametrize("sql", ["", "   ", "\n"])
def test_empty_sql_is_a_usage_error(sql: str) -> None:
    client, stub = stubbed()
    with stub, pytest.raises(UsageError, match="--sql needs a query"):
        query_deployment(fake_deployment(client), sql=sql)
    stub.assert_no_pending_responses()


def test_measure_value_on_a_multi_table_hints_at_the_measure_columns() -> None:
    client, stub = stubbed()
    stub.add_client_error(
        "query", "ValidationException", "line 1:12: Column 'measure_value::double' does not exist"
    )
    schema = [
        {"Name": n, "Type": {"ScalarType": "VARCHAR"}}
        for n in ("DeviceId", "measure_name", "time", "temperature", "humidity")
    ]
    stub.add_response("query", {"QueryId": "q", "Rows": [], "ColumnInfo": schema})
    sql = 'SELECT avg(measure_value::double) FROM "db"."t"'
    with stub, pytest.raises(IotpipeError) as e:
        query_deployment(fake_deployment(client), sql=sql)
    text = str(e.value)
    assert "Column 'measure_value::double' does not exist" in text
    assert "here: temperature, humidity" in text and "avg(temperature)" in text
    assert "measure_name = 'metrics'" in text and 'DESCRIBE "db"."t"' in text


def test_ctrl_c_while_paging_cancels_the_query() -> None:
    calls: list[tuple[str, dict[str, Any]]] = []

    class Client:
        def query(self, **kw: Any) -> dict[str, Any]:
            calls.append(("query", kw))
            if "NextToken" in kw:
                raise KeyboardInterrupt
            return {"QueryId": "q42", "Rows": [], "ColumnInfo": [], "NextToken": "t1"}

        def cancel_query(self, **kw: Any) -> dict[str, Any]:
            calls.append(("cancel_query", kw))
            return {}

    with pytest.raises(KeyboardInterrupt):
        run(Client(), "SELECT 1")
    assert calls[-1] == ("cancel_query", {"QueryId": "q42"})


def test_by_device_drops_measures_nobody_reported() -> None:
    r = Result(
        ["DeviceId", "avg_temperature", "avg_pressure"],
        ["VARCHAR", "DOUBLE", "DOUBLE"],
        [{"DeviceId": "a", "avg_temperature": 1.0, "avg_pressure": None}],
    )
    assert r.drop_empty("avg_").columns == ["DeviceId", "avg_temperature"]


def test_durations() -> None:
    assert seconds("15m") == 900 and seconds("7d") == 604800
    with pytest.raises(UsageError):
        seconds("1 hour")


def test_renderers() -> None:
    r = Result(
        ["a", "b", "c"],
        ["VARCHAR", "DOUBLE", "BOOLEAN"],
        [{"a": "x,y", "b": None, "c": True}, {"a": "z", "b": 1.5, "c": False}],
    )
    assert json.loads(to_json(r)) == r.rows
    assert list(csv.reader(io.StringIO(to_csv(r)))) == [
        ["a", "b", "c"],
        ["x,y", "", "true"],
        ["z", "1.5", "false"],
    ]


# --- the failure queue -----------------------------------------------------------------------


@pytest.fixture
def sqs(monkeypatch: pytest.MonkeyPatch) -> Any:
    from moto import mock_aws

    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(k, "testing")
    with mock_aws():
        yield boto3.client("sqs", region_name="us-east-1")


BODIES = [
    {
        "source": "iotpipe-handler",
        "reason": "out_of_range",
        "detail": "temperature 999 not in [-50, 150]",
        "deviceId": "invalid001",
    },
    {
        "source": "iotpipe-handler",
        "reason": "out_of_range",
        "detail": "humidity 150",
        "deviceId": "sensor002",
    },
    {
        "source": "iotpipe-handler",
        "reason": "malformed_json",
        "detail": "Expecting value",
        "deviceId": None,
    },
    {
        "requestContext": {"condition": "RetryAttemptsExhausted"},
        "KinesisBatchInfo": {"shardId": "shardId-000000000001", "batchSize": 5},
    },
    {
        "ruleName": "r",
        "topic": "iot/sensors/x/data",
        "failures": [{"errorMessage": "stream not found"}],
    },
]


def test_peek_counts_by_reason_and_leaves_every_message_on_the_queue(sqs: Any) -> None:
    url = sqs.create_queue(QueueName="f")["QueueUrl"]
    for body in BODIES:
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps(body))
    sqs.send_message(QueueUrl=url, MessageBody="not json")
    with peek(sqs, url, limit=100) as messages:
        assert len(messages) == 6
        result = quality(messages)
    assert [(r["reason"], r["count"]) for r in result.rows] == [
        ("out_of_range", 2),
        ("batch_failure", 1),
        ("malformed_json", 1),
        ("rule_error", 1),
        ("unrecognized", 1),
    ]
    assert result.rows[0]["devices"] == "invalid001, sensor002"
    assert "outside its configured range" in result.rows[0]["meaning"]
    assert result.rows[1]["example"] == "5 records of shardId-000000000001"
    assert result.rows[3]["example"] == "stream not found"
    assert quality(messages, device="sensor002").rows[0]["count"] == 1
    with peek(sqs, url) as again:  # released: all visible again at once
        assert len(again) == 6


def test_forget_deletes_only_what_the_caller_owns(sqs: Any) -> None:
    url = sqs.create_queue(QueueName="g")["QueueUrl"]
    for body in BODIES[:2]:
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps(body))
    with peek(sqs, url) as messages:
        forget(sqs, url, next(m for m in messages if m.device == "invalid001"))
    with peek(sqs, url) as left:
        assert [m.device for m in left] == ["sensor002"]


def test_since_filters_by_sent_time() -> None:
    msgs = [
        Quarantined("1", "h", 1_000_000, BODIES[0]),
        Quarantined("2", "h", 9_000_000, BODIES[1]),
    ]
    result = quality(msgs, since="1h", now_ms=lambda: 9_000_000 + 60_000)
    assert [r["devices"] for r in result.rows] == ["sensor002"]
