"""Timestream dialect rewrites and response shaping (pure)."""

import datetime as dt

import pytest

from iotpipe.local.tsquery import QueryValidation, column_info, datum, rewrite, scalar_type


def test_recipe_queries_rewrite():
    q = (
        'SELECT DeviceId, avg(measure_value::double) as avg_temperature FROM "db"."sensor-data" '
        "WHERE measure_name = 'temperature' AND time > ago(1h) GROUP BY DeviceId"
    )
    out = rewrite(q)
    assert 'avg("measure_value::double")' in out
    assert "ts_ago(INTERVAL '1 hours')" in out
    assert "'temperature'" in out


@pytest.mark.parametrize(
    ("src", "want"),
    [
        ("SELECT bin(time, 1m) FROM t", "ts_bin(time, INTERVAL '1 minutes')"),
        ("SELECT * FROM t WHERE time > now() - 15m", "ts_now() - INTERVAL '15 minutes'"),
        ("SELECT * FROM t WHERE time > ago(7d)", "INTERVAL '7 days'"),
        ("SELECT 100ms, 10s, 5us, 3000ns", "INTERVAL '100 milliseconds', INTERVAL '10 seconds'"),
        ("SELECT to_milliseconds(time) FROM t", "ts_to_milliseconds(time)"),
        ("SELECT MEASURE_VALUE::BIGINT FROM t", '"measure_value::bigint"'),
    ],
)
def test_rewrites(src, want):
    assert want in rewrite(src)


def test_literals_and_quoted_names_untouched():
    out = rewrite("SELECT \"bin(x)\", 'ago(1h) 5m' FROM t -- now()\n")
    assert '"bin(x)"' in out and "'ago(1h) 5m'" in out and "-- now()" in out


@pytest.mark.parametrize(
    "bad", ["DROP TABLE x", "SELECT 1; SELECT 2", "INSERT INTO t VALUES (1)", ""]
)
def test_only_one_select(bad):
    with pytest.raises(QueryValidation):
        rewrite(bad)


def test_trailing_semicolon_ok():
    assert rewrite("SELECT 1;") == "SELECT 1"


def test_types_and_datums():
    assert scalar_type("DECIMAL(18,3)") == {"ScalarType": "DOUBLE"}
    assert scalar_type("HUGEINT") == {"ScalarType": "BIGINT"}
    assert scalar_type("TIMESTAMP WITH TIME ZONE") == {"ScalarType": "TIMESTAMP"}
    assert scalar_type("VARCHAR[]") == {"ArrayColumnInfo": {"Type": {"ScalarType": "VARCHAR"}}}
    ts = dt.datetime(2026, 11, 27, 0, 50, 18, 123000)
    assert datum(ts, {"ScalarType": "TIMESTAMP"}) == {
        "ScalarValue": "2026-11-27 00:50:18.123000000"
    }
    assert datum(22, {"ScalarType": "DOUBLE"}) == {"ScalarValue": "22.0"}
    assert datum(True, {"ScalarType": "BOOLEAN"}) == {"ScalarValue": "true"}
    assert datum(None, {"ScalarType": "DOUBLE"}) == {"NullValue": True}
    assert datum(7, {"ScalarType": "BIGINT"}) == {"ScalarValue": "7"}
    assert datum(dt.timedelta(hours=25, seconds=1), {"ScalarType": "INTERVAL_DAY_TO_SECOND"}) == {
        "ScalarValue": "1 01:00:01.000000000"
    }
    assert datum(["a"], scalar_type("VARCHAR[]")) == {"ArrayValue": [{"ScalarValue": "a"}]}


def test_unaliased_expressions_are_colN():
    cols = column_info(
        [("DeviceId", "VARCHAR"), ("count_star()", "BIGINT"), ("measure_value::double", "DOUBLE")]
    )
    assert [c["Name"] for c in cols] == ["DeviceId", "_col1", "measure_value::double"]
