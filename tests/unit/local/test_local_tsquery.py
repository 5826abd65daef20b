"""Timestream dialect translation (via tssql) and response shaping (pure)."""

import datetime as dt

import pytest

from iotpipe.local.tsquery import column_info, datum, scalar_type
from iotpipe.local.tssql import QueryValidation, translate


def known(db, table):
    return db == "db" and table in (None, "t", "sensor-data")


def rewrite(sql):
    return translate(sql, "cat", known)


def test_recipe_queries_rewrite():
    q = (
        'SELECT DeviceId, avg(measure_value::double) as avg_temperature FROM "db"."sensor-data" '
        "WHERE measure_name = 'temperature' AND time > ago(1h) GROUP BY DeviceId"
    )
    out = rewrite(q)
    assert 'AVG("measure_value::double")' in out
    assert "CAST(CURRENT_TIMESTAMP AS TIMESTAMP) - INTERVAL '1' HOUR" in out
    assert '"cat"."db"."sensor-data"' in out
    assert "'temperature'" in out


@pytest.mark.parametrize(
    ("src", "want"),
    [
        ("SELECT bin(time, 1m) FROM db.t", "TIME_BUCKET(INTERVAL '1' MINUTE, time"),
        ("SELECT * FROM db.t WHERE time > now() - 15m", "CURRENT_TIMESTAMP - INTERVAL '15' MINUTE"),
        ("SELECT * FROM db.t WHERE time > ago(7d)", "INTERVAL '7' DAY"),
        ("SELECT 100ms, 10s, 5us, 3000ns", "INTERVAL '100' MILLISECOND, INTERVAL '10' SECOND"),
        ("SELECT to_milliseconds(time) FROM db.t", "EPOCH_MS(time)"),
        ("SELECT MEASURE_VALUE::BIGINT FROM db.t", '"measure_value::bigint"'),
    ],
)
def test_rewrites(src, want):
    assert want in rewrite(src)


def test_literals_and_quoted_names_untouched():
    out = rewrite("SELECT \"bin(x)\", 'ago(1h) 5m' FROM db.t -- now()\n")
    assert '"bin(x)"' in out and "'ago(1h) 5m'" in out and "now()" not in out


@pytest.mark.parametrize(
    "bad", ["DROP TABLE x", "SELECT 1; SELECT 2", "INSERT INTO db.t VALUES (1)", ""]
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
