"""The embedded Timestream's query endpoint: read-only, one statement, time-limited,
cancellable, bounded, and answering SHOW/DESCRIBE and errors as Timestream does."""

from __future__ import annotations

import time

import duckdb
import pytest

from iotpipe.local.tsjobs import Jobs, Limits, QueryCancelled, QueryFailed
from iotpipe.local.tsquery import EmptyQuery, QueryEngine, QueryValidation
from iotpipe.local.tsstore import TimestreamStore

A, R = "123456789012", "us-east-1"
T = '"db"."sensor-data"'
# 100^5 rows through a product: minutes of work for DuckDB unless it is stopped.
SLOW = (
    'SELECT sum(a."measure_value::double" * b."measure_value::double" * c."measure_value::double"'
    ' * d."measure_value::double" * e."measure_value::double") '
    f"FROM {T} a, {T} b, {T} c, {T} d, {T} e"
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def single(dev: str, value: float, t: int, measure: str = "temperature") -> dict:
    return {
        "Dimensions": [{"Name": "DeviceId", "Value": dev}],
        "MeasureName": measure,
        "MeasureValue": str(value),
        "MeasureValueType": "DOUBLE",
        "Time": str(t),
    }


def loaded(**limits: float) -> tuple[TimestreamStore, QueryEngine, Clock]:
    store = TimestreamStore()
    store.create_table(A, R, "db", "sensor-data")
    now = int(time.time() * 1000)
    store.write(A, R, "db", "sensor-data", [single(f"d{i % 3}", i, now - i) for i in range(100)])
    clock = Clock()
    defaults = {"timeout_s": 600.0, "wait_s": 5.0, **limits}
    jobs = Jobs(Limits(**defaults), clock=clock, reaper=False)  # type: ignore[arg-type]
    return store, QueryEngine(store, jobs), clock


def rows(engine: QueryEngine, sql: str) -> list[list[str | None]]:
    out = engine.query(A, R, sql)
    return [[d.get("ScalarValue") for d in r["Data"]] for r in out["Rows"]]


def count(engine: QueryEngine) -> int:
    return int(rows(engine, f"SELECT count(*) FROM {T}")[0][0] or 0)


@pytest.mark.parametrize(
    "attack",
    [
        f"WITH x AS (SELECT 1) INSERT INTO {T} (measure_name, time) SELECT 'forged', now() FROM x",
        f'WITH x AS (SELECT 1) UPDATE {T} SET "measure_value::double" = 0',
        f"WITH x AS (SELECT 1) DELETE FROM {T}",
        f"SELECT $$ ; $$; DROP TABLE {T}; SELECT $$ ; $$",
        "SELECT $$;$$; CREATE MACRO m() AS 1; SELECT $$;$$",
        "SELECT $$;$$; SET memory_limit='1MB'; SELECT $$;$$",
        f"SELECT 1; DELETE FROM {T}",
        f"DELETE FROM {T}",
        f"DROP TABLE {T}",
        "SET memory_limit='1MB'",
        "CREATE MACRO m() AS 1",
        f"SELECT * INTO copied FROM {T}",
        "ATTACH ':memory:' AS other",
        f"COPY {T} TO '/tmp/iotpipe-leak.csv'",
        "PRAGMA version",
        f"SELECT * FROM (WITH x AS (SELECT 1) DELETE FROM {T} RETURNING *)",
    ],
)
def test_mutating_and_multi_statement_forms_are_refused_and_nothing_changes(attack: str) -> None:
    store, engine, _ = loaded()
    with pytest.raises(QueryValidation):
        engine.query(A, R, attack)
    assert count(engine) == 100
    assert rows(engine, 'SELECT min("measure_value::double") FROM ' + T) == [["0.0"]]
    now = int(time.time() * 1000)
    store.write(A, R, "db", "sensor-data", [single("late", 1, now + 5)])  # writes still land
    assert rows(engine, f"SELECT DeviceId FROM {T} WHERE DeviceId = 'late'") == [["late"]]
    cur = store.cursor(A, R)
    assert cur.execute("SELECT current_setting('memory_limit')").fetchone()[0] != "1.0 MiB"
    cur.close()


def test_the_query_connection_cannot_write_or_reconfigure_even_past_the_parser() -> None:
    store, _, _ = loaded()
    cur = store.cursor(A, R)
    with pytest.raises(duckdb.TransactionException, match="read-only"):
        cur.execute(f"DELETE FROM {store.schema(A, R, 'db', 'sensor-data').storage}")
    cur.execute("ROLLBACK")
    with pytest.raises(duckdb.InvalidInputException, match="locked"):
        cur.execute("SET memory_limit='1MB'")
    cur.close()


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("SELECT list_value(1, 2)", "line 1:8: Function list_value not registered"),
        ("SELECT * FROM read_csv('/etc/passwd')", "Function read_csv not registered"),
        ("SELECT * FROM read_parquet('x.parquet')", "Function read_parquet not registered"),
        ("SELECT * FROM duckdb_tables()", "Function duckdb_tables not registered"),
        ("SELECT current_setting('memory_limit')", "Function current_setting not registered"),
        ("SELECT * FROM information_schema.tables", "Database 'information_schema' does not exist"),
        ("SELECT * FROM '/etc/passwd'", "Table '/etc/passwd' does not exist"),
        (f"SELECT nosuch FROM {T}", "line 1:8: Column 'nosuch' does not exist"),
        (f"SELECT ago(1h), nosuch FROM {T}", "line 1:17: Column 'nosuch' does not exist"),
        (f"SELECT DeviceId, count(*) FROM {T}", "'DeviceId' must be an aggregate expression"),
        (f"SELECT avg(DeviceId) FROM {T}", "Unexpected parameters (varchar) for function avg"),
        ('SELECT * FROM "db"."nope"', "line 1:15: Table 'db.nope' does not exist"),
        ('SELECT * FROM "nodb"."x"', "Database 'nodb' does not exist"),
        ("SELEC 1", "mismatched input"),
    ],
)
def test_errors_read_like_timestream_and_show_no_internals(sql: str, message: str) -> None:
    _, engine, _ = loaded()
    with pytest.raises(QueryValidation) as e:
        engine.query(A, R, sql)
    text = str(e.value)
    assert message in text
    for internal in ("Binder Error", "Catalog Error", "Parser Error", "Candidate", "Did you mean"):
        assert internal not in text
    assert "__iotpipe" not in text and "ts_123456789012" not in text


def test_measure_value_on_a_multi_measure_table_fails_as_on_aws() -> None:
    store, engine, _ = loaded()
    store.create_table(A, R, "db", "multi")
    multi = {
        "Dimensions": [{"Name": "DeviceId", "Value": "m1"}],
        "MeasureName": "metrics",
        "MeasureValueType": "MULTI",
        "Time": str(int(time.time() * 1000)),
        "MeasureValues": [{"Name": "temperature", "Value": "1", "Type": "DOUBLE"}],
    }
    store.write(A, R, "db", "multi", [multi])
    with pytest.raises(QueryValidation, match=r"line 1:12: Column 'measure_value::double' does"):
        engine.query(A, R, 'SELECT avg(measure_value::double) FROM "db"."multi"')
    assert rows(engine, 'SELECT avg(temperature) FROM "db"."multi"') == [["1.0"]]


def test_a_comment_before_select_runs_and_empty_sql_is_its_own_error() -> None:
    _, engine, _ = loaded()
    assert rows(engine, "/* c */ SELECT 1") == [["1"]]
    assert rows(engine, "-- why\nSELECT 2;") == [["2"]]
    for empty in ("", "   ", "/* nothing */", "-- nothing\n"):
        with pytest.raises(EmptyQuery):
            engine.query(A, R, empty)


def test_a_slow_query_stops_at_the_time_limit_and_the_engine_stays_responsive() -> None:
    _, engine, clock = loaded(timeout_s=30.0, wait_s=0.05)
    first = engine.query(A, R, SLOW)
    assert first["Rows"] == [] and first["NextToken"]  # still running: poll with the token
    clock.now += 31  # past the limit (injected clock): the next poll stops it
    started = time.monotonic()
    with pytest.raises(QueryFailed, match="timed out after 30 seconds") as e:
        engine.query(A, R, SLOW, next_token=first["NextToken"])
    assert e.value.code == "QueryExecutionException"
    assert time.monotonic() - started < 5
    assert engine.jobs.stats()["running"] == 0
    assert count(engine) == 100


def test_cancel_query_stops_a_running_query() -> None:
    _, engine, _ = loaded(wait_s=0.05)
    first = engine.query(A, R, SLOW)
    job = engine.jobs.get(first["QueryId"])
    assert job is not None and job.state == "running"
    assert engine.cancel(first["QueryId"]) is None
    assert job.done.wait(5) and job.state == "cancelled"
    assert "already been cancelled" in str(engine.cancel(first["QueryId"]))
    with pytest.raises(QueryCancelled, match="Unable to poll results for a cancelled query"):
        engine.query(A, R, SLOW, next_token=first["NextToken"])
    with pytest.raises(QueryValidation):
        engine.cancel("nosuchquery")


def test_an_abandoned_query_is_stopped() -> None:
    _, engine, clock = loaded(wait_s=0.05, abandon_s=20.0)
    first = engine.query(A, R, SLOW)
    job = engine.jobs.get(first["QueryId"])
    assert job is not None
    clock.now += 10
    engine.jobs.reap()
    assert job.state == "running"  # polled 10 s ago: still wanted
    clock.now += 15
    engine.jobs.reap()  # nobody polled for 25 s: the client went away
    assert job.done.wait(5) and job.state == "abandoned"


def test_a_retry_with_the_same_client_token_joins_the_running_query() -> None:
    _, engine, _ = loaded(wait_s=0.05)
    first = engine.query(A, R, SLOW, client_token="t" * 32)
    again = engine.query(A, R, SLOW, client_token="t" * 32)
    assert again["QueryId"] == first["QueryId"]
    assert engine.jobs.stats()["running"] == 1
    with pytest.raises(QueryValidation, match="different QueryString"):
        engine.query(A, R, "SELECT 1", client_token="t" * 32)
    engine.cancel(first["QueryId"])


def test_too_many_running_queries_are_throttled() -> None:
    _, engine, _ = loaded(wait_s=0.05, max_running=1)
    first = engine.query(A, R, SLOW)
    with pytest.raises(QueryFailed) as e:
        engine.query(A, R, SLOW)
    assert e.value.code == "ThrottlingException"
    engine.cancel(first["QueryId"])


def test_results_are_capped_and_the_cache_is_bounded() -> None:
    _, engine, clock = loaded(max_rows=50, cache_results=2, result_ttl_s=60.0)
    with pytest.raises(QueryFailed, match="more than 50 rows"):
        engine.query(A, R, f"SELECT * FROM {T}")
    sql = f"SELECT DeviceId FROM {T} LIMIT 10"
    tokens = [engine.query(A, R, sql, max_rows=1)["NextToken"] for _ in range(3)]
    with pytest.raises(QueryValidation, match="Invalid pagination token"):
        engine.query(A, R, sql, next_token=tokens[0])  # the oldest was evicted
    assert engine.jobs.stats()["cached_results"] == 2
    assert len(engine.query(A, R, sql, next_token=tokens[2])["Rows"]) == 9
    clock.now += 61
    engine.jobs.reap()  # nobody paged for a minute: dropped
    assert engine.jobs.stats()["cached_results"] == 0


def test_cells_bound_the_cache() -> None:
    _, engine, _ = loaded(cache_cells=150)
    sql = f"SELECT DeviceId FROM {T}"  # 100 cells each
    first = engine.query(A, R, sql, max_rows=1)["NextToken"]
    engine.query(A, R, sql, max_rows=1)
    assert engine.jobs.stats()["cached_cells"] <= 150
    with pytest.raises(QueryValidation, match="Invalid pagination token"):
        engine.query(A, R, sql, next_token=first)


def test_the_last_page_releases_the_result() -> None:
    _, engine, _ = loaded()
    engine.query(A, R, f"SELECT * FROM {T}")
    assert engine.jobs.stats()["cached_results"] == 0


def test_show_and_describe_answer_as_timestream() -> None:
    store, engine, _ = loaded()
    store.create_database(A, R, "empty")
    assert rows(engine, "SHOW DATABASES") == [["db"], ["empty"]]
    assert rows(engine, "SHOW DATABASES LIKE 'd%'") == [["db"]]
    assert rows(engine, "SHOW TABLES FROM db") == [["sensor-data"]]
    assert rows(engine, "SHOW TABLES FROM empty") == []
    assert rows(engine, "SHOW TABLES LIKE 'x%'") == []
    described = engine.query(A, R, 'DESCRIBE "db"."sensor-data"')
    assert [c["Name"] for c in described["ColumnInfo"]] == [
        "Column",
        "Type",
        "Timestream attribute type",
    ]
    assert rows(engine, 'DESCRIBE "db"."sensor-data"') == [
        ["DeviceId", "varchar", "DIMENSION"],
        ["measure_name", "varchar", "MEASURE_NAME"],
        ["time", "timestamp", "TIMESTAMP"],
        ["measure_value::double", "double", "MEASURE_VALUE"],
    ]
    measures = engine.query(A, R, 'SHOW MEASURES FROM "db"."sensor-data"')
    assert [c["Name"] for c in measures["ColumnInfo"]] == [
        "measure_name",
        "data_type",
        "dimensions",
    ]
    name, kind, dims = measures["Rows"][0]["Data"]
    assert (name, kind) == ({"ScalarValue": "temperature"}, {"ScalarValue": "double"})
    assert dims == {
        "ArrayValue": [
            {"RowValue": {"Data": [{"ScalarValue": "DeviceId"}, {"ScalarValue": "varchar"}]}}
        ]
    }
    with pytest.raises(QueryValidation, match="Database 'nope' does not exist"):
        engine.query(A, R, "SHOW TABLES FROM nope")
    with pytest.raises(QueryValidation, match=r"Table 'db\.nope' does not exist"):
        engine.query(A, R, "DESCRIBE db.nope")
    with pytest.raises(QueryValidation, match="mismatched input 'DROP'"):
        engine.query(A, R, "SHOW TABLES; DROP TABLE x")


def test_ago_and_now_are_utc_whatever_the_machine_time_zone() -> None:
    import subprocess
    import sys

    script = """
import time
from iotpipe.local.tsquery import QueryEngine
from iotpipe.local.tsstore import TimestreamStore
store = TimestreamStore()
now = int(time.time() * 1000)
rec = lambda dev, t: {"Dimensions": [{"Name": "DeviceId", "Value": dev}], "MeasureName": "m",
                      "MeasureValue": "1", "MeasureValueType": "DOUBLE", "Time": str(t)}
store.write("123456789012", "us-east-1", "db", "t", [rec("new", now), rec("old", now - 3 * 3600_000)])
out = QueryEngine(store).query("123456789012", "us-east-1",
                               'SELECT DeviceId FROM "db"."t" WHERE time > ago(1h) AND time <= now()')
print([r["Data"][0]["ScalarValue"] for r in out["Rows"]])
"""
    env = {**__import__("os").environ, "TZ": "America/New_York"}
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "['new']"


def test_a_query_nested_too_deeply_is_a_validation_error_through_the_engine() -> None:
    """It reached the client as InternalServerException: RecursionError."""
    engine = QueryEngine(TimestreamStore())
    nested = "SELECT " + "(" * 500 + "1" + ")" * 500
    with pytest.raises(QueryValidation, match="nested too deeply"):
        engine.query("123456789012", "us-east-1", nested)
