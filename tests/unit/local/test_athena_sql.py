"""The embedded Athena's SQL gate and planner (pure: no moto, no S3; DuckDB only to run
what the planner wrote, to prove the SQL means what the Trino query meant)."""

from __future__ import annotations

import duckdb
import pytest

from iotpipe.local import athenasql as sql
from iotpipe.local.athenasql import AthenaQueryError, Condition, GlueTable

TABLE = GlueTable(
    "lake",
    "telemetry",
    (("time", "timestamp"), ("device_id", "string"), ("temperature", "double")),
    (("dt", "string"), ("hour", "int")),
    "s3://b/data/",
)
KEYS = TABLE.partition_keys


def plan(query: str) -> tuple[object, list[object]]:
    tree = sql.parse(query)
    sql.check_functions(query, tree)
    return tree, sql.table_refs(tree)


def conds(query: str, which: int = 0) -> list[Condition]:
    _, refs = plan(query)
    return sql.conditions(refs[which], KEYS)  # type: ignore[arg-type]


FILES = [
    {"dt": d, "hour": h} for d in ("2026-11-30", "2026-12-01", "2026-12-02") for h in (0, 7, 8, 23)
]


def chosen(query: str) -> list[tuple[str, int]]:
    c = conds(query)
    return [(str(f["dt"]), int(f["hour"])) for f in FILES if sql.selected(f, c)]  # type: ignore[arg-type]


T = '"lake"."telemetry"'


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("dt = '2026-12-01' AND hour = 7", [("2026-12-01", 7)]),
        ("hour = 7 AND dt = '2026-12-01' AND temperature > 3", [("2026-12-01", 7)]),
        ("dt IN ('2026-11-30', '2026-12-02') AND hour IN (0, 23)", [
            ("2026-11-30", 0), ("2026-11-30", 23), ("2026-12-02", 0), ("2026-12-02", 23)]),
        ("dt >= '2026-12-01' AND hour < 8", [
            ("2026-12-01", 0), ("2026-12-01", 7), ("2026-12-02", 0), ("2026-12-02", 7)]),
        ("dt BETWEEN '2026-11-30' AND '2026-12-01' AND hour BETWEEN 7 AND 8", [
            ("2026-11-30", 7), ("2026-11-30", 8), ("2026-12-01", 7), ("2026-12-01", 8)]),
        ("'2026-12-01' < dt AND 8 <= hour", [("2026-12-02", 8), ("2026-12-02", 23)]),
        ("(dt = '2026-12-02') AND (hour > 7 AND hour <= 8)", [("2026-12-02", 8)]),
    ],
)  # fmt: skip
def test_partition_pruning_reads_only_the_partitions_the_where_clause_allows(where, expected):
    assert chosen(f"SELECT count(*) FROM {T} WHERE {where}") == expected


@pytest.mark.parametrize(
    "where",
    [
        "dt = '2026-12-01' OR hour = 7",  # OR bounds nothing
        "NOT dt = '2026-12-01'",
        "dt = DATE '2026-12-01'",  # a date is not the string dt is: Athena does not prune it
        "hour = '07'",  # a string is not hour's int
        "substr(dt, 1, 7) = '2026-12'",  # a function of the column
        "dt = device_id",
        "temperature > 1",
        "dt IN (SELECT dt FROM lake.telemetry)",
    ],
)
def test_conditions_that_do_not_bound_a_partition_read_all_of_them(where):
    assert len(chosen(f"SELECT count(*) FROM {T} WHERE {where}")) == len(FILES)


def test_with_a_join_only_conditions_qualified_with_the_table_prune_it():
    q = (
        "SELECT count(*) FROM lake.telemetry a JOIN lake.telemetry b ON a.device_id = b.device_id"
        " WHERE a.dt = '2026-12-01' AND hour = 7 AND b.hour = 8"
    )
    assert conds(q, 0) == [Condition("dt", "=", ("2026-12-01",))]
    assert conds(q, 1) == [Condition("hour", "=", (8,))]


def test_a_where_clause_outside_the_tables_own_select_does_not_prune_it():
    q = f"SELECT * FROM (SELECT * FROM {T}) s WHERE s.dt = '2026-12-01'"
    assert conds(q) == []
    q = f"WITH w AS (SELECT * FROM {T} WHERE dt = '2026-12-01') SELECT * FROM w WHERE hour = 7"
    assert conds(q) == [Condition("dt", "=", ("2026-12-01",))]


def test_partition_values_come_from_the_keys_name_value_directories():
    key = "data/dt=2026-12-01/hour=07/part-0001.parquet"
    assert sql.partition_values(key, KEYS) == {"dt": "2026-12-01", "hour": 7}
    assert sql.partition_values("data/part.parquet", KEYS) == {}
    assert not sql.selected({"dt": "2026-12-01"}, [Condition("hour", "=", (7,))])


@pytest.mark.parametrize(
    ("query", "code", "error_type"),
    [
        ("INSERT INTO lake.telemetry SELECT * FROM lake.telemetry", "NOT_SUPPORTED", 1202),
        ("CREATE TABLE x AS SELECT 1", "NOT_SUPPORTED", 1202),
        ("DROP TABLE lake.telemetry", "NOT_SUPPORTED", 1202),
        ("DELETE FROM lake.telemetry", "NOT_SUPPORTED", 1202),
        ("COPY lake.telemetry TO '/tmp/x.csv'", "NOT_SUPPORTED", 1202),
        ("ATTACH '/tmp/x.db' AS x", "SYNTAX_ERROR", 1006),
        ("PRAGMA enable_profiling", "NOT_SUPPORTED", 1202),
        ("SET enable_external_access = true", "NOT_SUPPORTED", 1202),
        ("WITH x AS (SELECT 1) INSERT INTO t SELECT * FROM x", "NOT_SUPPORTED", 1202),
        ("SELECT 1; SELECT 2", "NOT_SUPPORTED", 1202),
        ("SELECT * FROM read_csv('/etc/passwd')", "FUNCTION_NOT_FOUND", 1303),
        ("SELECT * FROM read_parquet('/x/*.parquet')", "FUNCTION_NOT_FOUND", 1303),
        ("SELECT read_text('/etc/passwd')", "FUNCTION_NOT_FOUND", 1303),
        ("SELECT * FROM lake.telemetry WHERE x = getenv('HOME')", "FUNCTION_NOT_FOUND", 1303),
        ("SELECT * FORM lake.telemetry", "SYNTAX_ERROR", 1006),
        ("SELEC 1", "SYNTAX_ERROR", 1006),
        ("", "SYNTAX_ERROR", 1006),
    ],
)
def test_anything_but_one_read_only_select_is_refused_in_athenas_words(query, code, error_type):
    with pytest.raises(AthenaQueryError) as e:
        plan(query)
    assert str(e.value).startswith(f"{code}: ")
    assert e.value.error_type == error_type


def test_errors_say_where_in_the_query():
    with pytest.raises(AthenaQueryError, match=r"^SYNTAX_ERROR: line 2:6: mismatched input 't'"):
        plan("SELECT *\nFORM t")
    with pytest.raises(AthenaQueryError, match=r"line 1:8: Function 'read_text' not registered"):
        plan("SELECT read_text('/x')")


def lookup(db: str, name: str) -> GlueTable | None:
    return TABLE if (db, name) == ("lake", "telemetry") else None


@pytest.mark.parametrize(
    ("query", "database"),
    [
        ('SELECT * FROM "lake"."telemetry"', "default"),
        ("SELECT * FROM lake.telemetry", "default"),
        ("SELECT * FROM telemetry", "lake"),
        ("SELECT * FROM AwsDataCatalog.lake.Telemetry", "default"),
    ],
)
def test_table_references_resolve_against_the_glue_catalog(query, database):
    _, refs = plan(query)
    found = sql.resolve(query, refs[0], database, lookup, lambda db: db == "lake")  # type: ignore[arg-type]
    assert found is TABLE


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("SELECT * FROM nodb.t", "SCHEMA_NOT_FOUND: line 1:15: Schema 'nodb' does not exist"),
        ("SELECT * FROM telemetry", "TABLE_NOT_FOUND: line 1:15: Table 'awsdatacatalog.default."),
        ("SELECT * FROM lake.nope", "TABLE_NOT_FOUND: line 1:15: Table 'awsdatacatalog.lake.nope'"),
        ("SELECT * FROM other.lake.telemetry", "CATALOG_NOT_FOUND"),
        ("SELECT * FROM '/etc/passwd'", "TABLE_NOT_FOUND"),
    ],
)
def test_unknown_tables_fail_like_athena(query, message):
    _, refs = plan(query)
    with pytest.raises(AthenaQueryError) as e:
        sql.resolve(query, refs[0], "default", lookup, lambda db: db in ("lake", "default"))  # type: ignore[arg-type]
    assert str(e.value).startswith(message)


def test_ctes_are_not_catalog_tables():
    _, refs = plan(f"WITH t AS (SELECT * FROM {T}) SELECT * FROM t")
    assert [r.name for r in refs] == ["telemetry"]  # type: ignore[attr-defined]


def test_glue_types_become_duckdb_casts_and_missing_columns_null():
    src = sql.source_sql(TABLE, ["/c/dt=2026-12-01/hour=07/a.parquet"], {"time", "device_id"})
    assert 'CAST("time" AS TIMESTAMP) AS "time"' in src
    assert 'CAST(NULL AS DOUBLE) AS "temperature"' in src
    assert "hive_partitioning=true, union_by_name=true" in src
    assert "'hour': INTEGER" in src
    assert sql.duck_type("decimal(10, 2)") == "DECIMAL(10,2)"
    assert sql.duck_type("array<string>") is None
    assert sql.source_sql(TABLE, [], set()).endswith("WHERE false")


def transpiled(query: str) -> str:
    tree, refs = plan(query)
    sources = {id(r): sql.source_sql(TABLE, [], set()) for r in refs}
    return sql.to_duckdb(tree, sources)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("SELECT approx_percentile(temperature, 0.95) FROM lake.telemetry", "APPROX_QUANTILE("),
        ("SELECT from_iso8601_timestamp('2026-12-01T07:00:00Z')", "AS TIMESTAMPTZ)"),
        ("SELECT now() - INTERVAL '1' HOUR", "CURRENT_TIMESTAMP - INTERVAL '1' HOUR"),
        ("SELECT TIMESTAMP '2026-12-01 07:00:00'", "CAST('2026-12-01 07:00:00' AS TIMESTAMP(0))"),
        ("SELECT CAST(1 AS varchar)", "CAST(1 AS TEXT)"),
        ("SELECT count(*) FROM lake.telemetry t", ") AS t"),
    ],
)
def test_trino_becomes_duckdb(query, expected):
    assert expected in transpiled(query)


def test_the_transpiled_query_answers_what_the_trino_query_asks():
    query = (
        "SELECT date_trunc('hour', TIMESTAMP '2026-12-01 07:45:00') AS h, "
        "to_iso8601(from_iso8601_timestamp('2026-12-01T07:00:00Z')) AS iso, "
        "count(*) AS n, CAST('12' AS bigint) + 1 AS b, "
        "current_timestamp > now() - INTERVAL '1' HOUR AS recent "
        "FROM lake.telemetry"
    )
    db = duckdb.connect()
    db.execute("SET TimeZone = 'UTC'")
    from iotpipe.local.athenaplan import _MACROS

    for macro in _MACROS:
        db.execute(macro)
    row = db.execute(transpiled(query)).fetchone()
    assert row is not None
    assert str(row[0]) == "2026-12-01 07:00:00" and row[1] == "2026-12-01T07:00:00.000Z"
    assert row[2:] == (0, 13, True)


def test_output_names_are_trinos():
    tree = sql.parse("SELECT device_id, count(*), avg(t) AS Mean, t.x FROM lake.telemetry t")
    assert sql.output_names(tree, ["device_id", "count_star()", "Mean", "x"]) == [
        "device_id",
        "_col1",
        "mean",
        "x",
    ]
    star = sql.parse("SELECT * FROM lake.telemetry")
    assert sql.output_names(star, ["time", "Device_ID"]) == ["time", "device_id"]


def test_execution_parameters_bind_literals_in_order_and_nothing_else():
    from iotpipe.local.athenaplan import bind

    query = "SELECT * FROM t WHERE dt = ? AND hour IN (?, ?) AND note <> '?'"
    assert bind(query, ["'2026-12-01'", "7", "-1"]) == (
        "SELECT * FROM t WHERE dt = '2026-12-01' AND hour IN (7, -1) AND note <> '?'"
    )
    assert bind("SELECT ?", ["DATE '2026-12-01'"]) == "SELECT CAST('2026-12-01' AS DATE)"
    with pytest.raises(
        AthenaQueryError, match="Incorrect number of parameters: expected 1 but found 0"
    ):
        bind("SELECT * FROM t WHERE a = ?", [])
    for injected in ["1; DROP TABLE t", "(SELECT 1)", "x", "1 OR 1 = 1"]:
        with pytest.raises(AthenaQueryError, match="INVALID_PARAMETER_USAGE"):
            bind("SELECT * FROM t WHERE a = ?", [injected])
