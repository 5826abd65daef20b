"""Which store answers (``store_for``, ``query --store``), the lake reader's presets and
hints through a Stubber, and ``verify --probe`` following the marked messages into the lake."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber
from click.testing import CliRunner
from fake_clock import FakeClock

from iotpipe import probe as probe_module
from iotpipe.cli import main
from iotpipe.config import Config, LakeConfig
from iotpipe.errors import IotpipeError, UsageError
from iotpipe.naming import Names
from iotpipe.query import enabled_stores, store_for
from iotpipe.state import State
from iotpipe.stores.lake import LakeReader
from iotpipe.stores.lakeerrors import Refusal
from iotpipe.stores.timestream import TimestreamReader
from iotpipe.target import Deployment

NOW = datetime(2026, 12, 2, 18, 0, 0, 250000, tzinfo=UTC)
BOTH = Config(lake=LakeConfig(enabled=True))
LAKE_ONLY = Config(
    timestream=replace(Config().timestream, enabled=False), lake=LakeConfig(enabled=True)
)


def dep_of(config: Config, gateway: Any = None) -> Deployment:
    names = Names.of(config, "abc123", "123456789012")
    gateway = gateway or SimpleNamespace(local=True, endpoint_url=None, client=None)
    return Deployment(config, gateway, names, State(Path("/nonexistent")))


# --- the choice ----------------------------------------------------------------------------


def test_default_store_is_timestream_when_enabled_else_the_lake() -> None:
    assert isinstance(store_for(dep_of(Config())), TimestreamReader)
    assert isinstance(store_for(dep_of(BOTH)), TimestreamReader)
    assert isinstance(store_for(dep_of(LAKE_ONLY)), LakeReader)
    assert isinstance(store_for(dep_of(BOTH), "lake"), LakeReader)
    assert enabled_stores(BOTH) == ("timestream", "lake")
    assert enabled_stores(LAKE_ONLY) == ("lake",)


@pytest.mark.parametrize(
    ("config", "store", "key"),
    [
        (Config(), "lake", "lake.enabled"),
        (LAKE_ONLY, "timestream", "timestream.enabled"),
        (replace(LAKE_ONLY, lake=LakeConfig(enabled=False)), None, "timestream.enabled"),
    ],
)
def test_a_disabled_store_is_a_usage_error_naming_its_key(
    config: Config, store: str | None, key: str
) -> None:
    with pytest.raises(UsageError, match=rf"\({key}: false\): set {key}: true"):
        store_for(dep_of(config), store)


def test_cli_offers_the_store_choice() -> None:
    shown = CliRunner().invoke(main, ["query", "--store", "lake", "--help"])
    assert shown.exit_code == 0 and "--store [timestream|lake]" in shown.output
    wrong = CliRunner().invoke(main, ["query", "--store", "athena"])
    assert wrong.exit_code == 2 and "'athena' is not one of 'timestream', 'lake'" in wrong.output


# --- the reader, through a Stubber -----------------------------------------------------------


def stubbed_reader(config: Config = LAKE_ONLY) -> tuple[LakeReader, Stubber]:
    client = boto3.client(
        "athena", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    gateway = SimpleNamespace(local=True, endpoint_url=None, client=lambda s: client)
    reader = LakeReader(dep_of(config, gateway), clock=FakeClock().clock, now=lambda: NOW)
    return reader, Stubber(client)


WHERE = {
    "QueryString": ANY,
    "WorkGroup": "iot-telemetry-athena-abc123",
    "QueryExecutionContext": {"Database": "iot_telemetry_lake_abc123"},
}


def answer(stub: Stubber, cols: list[tuple[str, str]], rows: list[list[str | None]]) -> None:
    stub.add_response("start_query_execution", {"QueryExecutionId": "q1"}, WHERE)
    ok = {"QueryExecutionId": "q1", "Status": {"State": "SUCCEEDED"}, "StatementType": "DML"}
    stub.add_response("get_query_execution", {"QueryExecution": ok}, {"QueryExecutionId": "q1"})
    header = {"Data": [{"VarCharValue": n} for n, _ in cols]}
    data = [{"Data": [{} if v is None else {"VarCharValue": v} for v in r]} for r in rows]
    info = [{"Name": n, "Type": t} for n, t in cols]
    result = {"ResultSet": {"Rows": [header, *data], "ResultSetMetadata": {"ColumnInfo": info}}}
    stub.add_response("get_query_results", result, None)


def fail(stub: Stubber, reason: str) -> None:
    stub.add_response("start_query_execution", {"QueryExecutionId": "q1"}, WHERE)
    bad = {"QueryExecutionId": "q1", "Status": {"State": "FAILED", "StateChangeReason": reason}}
    stub.add_response("get_query_execution", {"QueryExecution": bad}, {"QueryExecutionId": "q1"})


def test_by_device_speaks_timestreams_column_names_and_drops_empty_measures() -> None:
    reader, stub = stubbed_reader()
    cols = [("device_id", "varchar"), ("avg_temperature", "double"), ("avg_humidity", "double")]
    cols += [("avg_pressure", "double"), ("avg_vibration", "double"), ("messages", "bigint")]
    answer(stub, cols, [["sensor001", "21.5", "40.0", None, None, "3"]])
    with stub:
        result = reader.preset("by-device", since="1h", device=None, limit=10)
    assert result.columns == ["DeviceId", "avg_temperature", "avg_humidity", "messages"]
    assert result.rows[0]["DeviceId"] == "sensor001" and result.rows[0]["messages"] == 3


def test_an_empty_preset_says_why_and_a_missing_table_says_run_up() -> None:
    reader, stub = stubbed_reader()
    answer(stub, [("time", "timestamp"), ("device_id", "varchar")], [])
    fail(stub, "TABLE_NOT_FOUND: line 1:15: Table 'awsdatacatalog.x.telemetry' does not exist")
    with stub:
        empty = reader.preset("recent", since="15m", device="sensor009", limit=10)
        assert (
            "No rows in iot_telemetry_lake_abc123.telemetry for device sensor009" in empty.notes[-1]
        )
        with pytest.raises(IotpipeError, match="does not exist: run 'iotpipe up'"):
            reader.preset("recent", since="1h", device=None, limit=10)


@pytest.mark.parametrize(
    ("sql", "reason", "hint"),
    [
        (
            'SELECT * FROM telemetry WHERE device_id = "sensor001"',
            "COLUMN_NOT_FOUND: line 1:44: Column 'sensor001' cannot be resolved",
            "a string is in single quotes: 'sensor001'",
        ),
        (
            "SELECT DeviceId FROM telemetry",
            "COLUMN_NOT_FOUND: line 1:8: Column 'deviceid' cannot be resolved",
            "are device_id and one column per measure here",
        ),
        (
            'SELECT * FROM "db"."table"',
            "TABLE_NOT_FOUND: line 1:15: Table 'awsdatacatalog.db.table' does not exist",
            'The lake\'s table is "iot_telemetry_lake_abc123"."telemetry"',
        ),
        (
            "SELECT * FROM telemetry WHERE time > ago(1h)",
            "FUNCTION_NOT_FOUND: line 1:38: Function 'ago' not registered",
            "INTERVAL '1' HOUR",
        ),
    ],
)
def test_user_sql_hints_at_the_usual_mistakes(sql: str, reason: str, hint: str) -> None:
    reader, stub = stubbed_reader()
    fail(stub, reason)
    with stub, pytest.raises(IotpipeError) as err:
        reader.user_sql(sql)
    first, second = str(err.value).split("\n")
    assert reason in first and hint in second


def test_user_sql_notes_no_rows_and_a_missing_partition_filter() -> None:
    reader, stub = stubbed_reader()
    answer(stub, [("n", "bigint")], [])
    with stub:
        result = reader.user_sql("SELECT count(*) AS n FROM telemetry")
    assert "The query returned no rows." in result.notes
    assert any("WHERE dt >=" in n for n in result.notes)


# --- verify --probe into the lake ------------------------------------------------------------


def probe_run(
    monkeypatch: pytest.MonkeyPatch, config: Config, rows_after: int | None, local: bool = True
) -> tuple[list[Any], FakeClock]:
    """The probe against a lake whose row appears on the ``rows_after``-th look (never: None)."""
    looks = {"n": 0}
    sent: list[Any] = []

    def probe_rows(self: LakeReader, device: str, measure: str) -> list[dict[str, Any]]:
        looks["n"] += 1
        if rows_after is None or looks["n"] < rows_after:
            return []
        return [{"time": "2026-12-02 18:00:00.250", "v": 1.0}]

    def refused(self: LakeReader, token: str, oldest: datetime) -> Refusal | None:
        return Refusal("out_of_range", "d", "x", 0) if rows_after is not None else None

    monkeypatch.setattr(LakeReader, "probe_rows", probe_rows)
    monkeypatch.setattr(LakeReader, "refused", refused)
    monkeypatch.setattr(probe_module, "_send", lambda dep, probe, via: sent.append(via))
    gateway = SimpleNamespace(local=local, endpoint_url=None, client=None)
    clock = FakeClock()
    checks = probe_module.run_probe(
        dep_of(config, gateway),
        via="kinesis",
        timeout_s=180,
        sleep=clock.sleep,
        clock=clock.now,
        now=lambda: NOW,
        token="0000abcd",
    )
    assert sent == ["kinesis"]
    return checks, clock


def test_probe_follows_the_marked_message_to_an_athena_row(monkeypatch: pytest.MonkeyPatch) -> None:
    checks, clock = probe_run(monkeypatch, LAKE_ONLY, rows_after=3)
    assert [c.name.split(" (")[0] for c in checks] == [
        "Probe: valid message from iotpipe-probe-0000abcd is queryable in Athena",
        "Probe: invalid message kept out of the lake",
        "Probe: invalid message is under the lake's error prefix",
    ]
    assert all(c.ok for c in checks) and checks[2].detail == "reason out_of_range"
    assert clock.pauses == [0.5, 0.75]  # two misses, then found


@pytest.mark.parametrize(("local", "bound"), [(True, 60 + 10), (False, 60 + 30)])
def test_probe_waits_at_most_the_buffer_plus_a_margin(
    monkeypatch: pytest.MonkeyPatch, local: bool, bound: float
) -> None:
    checks, clock = probe_run(monkeypatch, LAKE_ONLY, rows_after=None, local=local)
    assert [c.ok for c in checks] == [False, True, False]
    assert bound < clock.t <= bound + 5  # the last pause may pass the bound, by the cap at most
    assert "lake.buffer_s (60 s)" in checks[0].fix
