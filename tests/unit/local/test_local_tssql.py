"""The SQL gate in front of the embedded Timestream (pure: no DuckDB)."""

from __future__ import annotations

import pytest

from iotpipe.local.tssql import EmptyQuery, QueryValidation, translate


def known(db: str, table: str | None) -> bool:
    return db == "db" and table in (None, "t")


def gate(sql: str) -> str:
    return translate(sql, "cat", known)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT DeviceId, avg(measure_value::double) FROM db.t WHERE time > ago(1h) GROUP BY 1",
        "SELECT bin(time, 5m) AS b, max(temperature) FROM db.t GROUP BY bin(time, 5m)",
        "SELECT max_by(a, time), min_by(a, time), arbitrary(a), count_if(a > 1) FROM db.t",
        "SELECT approx_percentile(a, 0.9), approx_distinct(a), stddev(a), array_agg(a) FROM db.t",
        "SELECT date_trunc('minute', time), date_diff('second', time, now()), hour(time) FROM db.t",
        "SELECT trim(a), substring(a, 1, 2), position('x' IN a), strpos(a, 'x'), lower(a) FROM db.t",
        "SELECT if(a > 1, 'hi', 'lo'), CASE WHEN a > 1 THEN 1 END, coalesce(a, 0) FROM db.t",
        "SELECT CAST(a AS varchar), try_cast(a AS double), extract(hour FROM time) FROM db.t",
        "SELECT lag(a) OVER (PARTITION BY DeviceId ORDER BY time) FROM db.t",
        "WITH w AS (SELECT * FROM db.t) SELECT count(*) FROM w",
        "SELECT * FROM db.t a JOIN db.t b ON a.time = b.time",
        "SELECT a FROM db.t WHERE measure_name IN (SELECT measure_name FROM db.t)",
        "SELECT * FROM db.t CROSS JOIN UNNEST(ARRAY[1, 2]) AS u(v)",
        "(SELECT 1) UNION ALL (SELECT 2)",
        "SELECT to_milliseconds(time), from_milliseconds(1), to_iso8601(time) FROM db.t",
    ],
)
def test_timestream_queries_pass_the_gate(sql: str) -> None:
    out = gate(sql)
    assert out.startswith(("SELECT", "WITH", "("))
    if "db.t" in sql:
        assert '"cat"."db"."t"' in out


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("WITH x AS (SELECT 1) DELETE FROM db.t", "only SELECT queries are supported, not DELETE"),
        ("WITH x AS (SELECT 1) INSERT INTO db.t SELECT * FROM x", "not INSERT"),
        ("WITH x AS (SELECT 1) UPDATE db.t SET a = 1", "not UPDATE"),
        ("SELECT $$ ; DROP TABLE t; $$", "line 1:8: mismatched input '$$'"),
        ("SELECT 1; DROP TABLE db.t", "line 1:9: only one statement is allowed"),
        ("SELECT * INTO x FROM db.t", "INTO is not allowed"),
        ("SELECT string_agg(a, ',') FROM db.t", "line 1:8: Function string_agg not registered"),
        ("SELECT ago(1h), nope_fn(1)", "line 1:17: Function nope_fn not registered"),
        ("SELECT 1h,\n  glob_x(1)", "line 2:3: Function glob_x not registered"),
        ("SELECT * FROM cat.db.t", "Table 'cat.db.t' does not exist"),
        ("SELECT * FROM t", "Table 't' does not exist (name it database.table)"),
        ("SELECT 1 FROM db.t WHERE", "mismatched input"),
    ],
)
def test_the_gate_refuses(sql: str, message: str) -> None:
    with pytest.raises(QueryValidation) as e:
        gate(sql)
    assert message in str(e.value)


@pytest.mark.parametrize("depth", [300, 20_000])
def test_a_query_nested_too_deeply_is_refused_not_a_crash(depth: int) -> None:
    """sqlglot recurses per level: this was a RecursionError inside the emulator."""
    with pytest.raises(QueryValidation, match="nested too deeply"):
        gate("SELECT " + "(" * depth + "1" + ")" * depth)


def test_only_generated_sql_reaches_duckdb() -> None:
    out = gate("/* hidden $$ ; */ SELECT 'a;b' -- trailing ; comment\n")
    assert out == "SELECT 'a;b'"  # comments dropped, the literal kept whole


def test_durations_and_measure_value_are_rewritten_outside_literals_only() -> None:
    out = gate(
        "SELECT measure_value::double, '1h measure_value::double' FROM db.t WHERE time > ago(15m)"
    )
    assert out.startswith("SELECT \"measure_value::double\", '1h measure_value::double'")
    assert "INTERVAL '15' MINUTE" in out


@pytest.mark.parametrize("sql", ["", "  \n", "/* nothing */", "-- nothing"])
def test_empty(sql: str) -> None:
    with pytest.raises(EmptyQuery):
        gate(sql)
