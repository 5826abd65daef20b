"""DuckDB-backed Timestream: writes as Timestream takes them, queries as it answers them."""

import time

import pytest

from iotpipe.local.tsquery import QueryEngine, QueryValidation
from iotpipe.local.tsstore import RejectedRecords, TimestreamStore, WriteValidation

A, R = "123456789012", "us-east-1"


@pytest.fixture
def env():
    store = TimestreamStore()
    store.create_table(A, R, "db", "sensor-data")
    return store, QueryEngine(store)


def now_ms():
    return int(time.time() * 1000)


def single(dev, value, t, measure="temperature", extra=None):
    dims = [{"Name": "DeviceId", "Value": dev}, *(extra or [])]
    return {
        "Dimensions": dims,
        "MeasureName": measure,
        "MeasureValue": str(value),
        "MeasureValueType": "DOUBLE",
        "Time": str(t),
    }


def rows(engine, sql):
    out = engine.query(A, R, sql)
    names = [c["Name"] for c in out["ColumnInfo"]]
    return [
        dict(zip(names, [d.get("ScalarValue") for d in r["Data"]], strict=True))
        for r in out["Rows"]
    ]


def test_common_attributes_merge_and_recipe_queries(env):
    store, engine = env
    t = now_ms()
    common = {
        "Dimensions": [
            {"Name": "Location", "Value": "floor1"},
            {"Name": "DeviceType", "Value": "temp"},
        ]
    }
    recs = [
        single("s1", 20, t),
        single("s1", 22, t - 1000),
        single("s2", 30, t),
        single("s2", 55, t, "humidity"),
    ]
    assert store.write(A, R, "db", "sensor-data", recs, common) == 4
    latest = engine.query(
        A, R, 'SELECT * FROM "db"."sensor-data" WHERE time > ago(1h) ORDER BY time DESC LIMIT 10'
    )
    assert [c["Name"] for c in latest["ColumnInfo"]] == [
        "Location",
        "DeviceType",
        "DeviceId",
        "measure_name",
        "time",
        "measure_value::double",
    ]
    assert len(latest["Rows"]) == 4
    avg = rows(
        engine,
        'SELECT DeviceId, avg(measure_value::double) as avg_temperature FROM "db"."sensor-data" '
        "WHERE measure_name = 'temperature' AND time > ago(1h) GROUP BY DeviceId ORDER BY DeviceId",
    )
    assert avg == [
        {"DeviceId": "s1", "avg_temperature": "21.0"},
        {"DeviceId": "s2", "avg_temperature": "30.0"},
    ]


def test_identical_repeat_is_idempotent_and_conflict_is_rejected(env):
    store, engine = env
    t = now_ms()
    store.write(A, R, "db", "sensor-data", [single("s1", 20, t)])
    store.write(A, R, "db", "sensor-data", [single("s1", 20, t)])
    with pytest.raises(RejectedRecords) as e:
        store.write(A, R, "db", "sensor-data", [single("s1", 21, t), single("s9", 1, t)])
    assert e.value.rejected[0]["RecordIndex"] == 0 and e.value.rejected[0]["ExistingVersion"] == 1
    newer = {**single("s1", 25, t), "Version": 2}
    store.write(A, R, "db", "sensor-data", [newer])
    assert rows(
        engine, 'SELECT DeviceId, "measure_value::double" AS v FROM db."sensor-data" ORDER BY 1'
    ) == [{"DeviceId": "s1", "v": "25.0"}, {"DeviceId": "s9", "v": "1.0"}]


def test_multi_measure_and_new_columns(env):
    store, engine = env
    t = now_ms()
    multi = {
        "Dimensions": [{"Name": "DeviceId", "Value": "m1"}],
        "MeasureName": "metrics",
        "MeasureValueType": "MULTI",
        "Time": str(t),
        "MeasureValues": [
            {"Name": "temperature", "Value": "22.5", "Type": "DOUBLE"},
            {"Name": "count", "Value": "3", "Type": "BIGINT"},
            {"Name": "ok", "Value": "true", "Type": "BOOLEAN"},
        ],
    }
    store.write(
        A,
        R,
        "db",
        "sensor-data",
        [multi, single("s1", 1, t, extra=[{"Name": "last_maintenance", "Value": "2026-09-01"}])],
    )
    out = engine.query(
        A,
        R,
        'SELECT DeviceId, temperature, count, ok, last_maintenance, "measure_value::double" '
        'FROM db."sensor-data" ORDER BY DeviceId',
    )
    types = [c["Type"]["ScalarType"] for c in out["ColumnInfo"]]
    assert types == ["VARCHAR", "DOUBLE", "BIGINT", "BOOLEAN", "VARCHAR", "DOUBLE"]
    m1, s1 = out["Rows"]
    assert [d.get("ScalarValue") for d in m1["Data"][:4]] == ["m1", "22.5", "3", "true"]
    assert m1["Data"][4] == {"NullValue": True} and m1["Data"][5] == {"NullValue": True}
    assert s1["Data"][1] == {"NullValue": True}
    binned = rows(
        engine,
        'SELECT bin(time, 1m) AS b, max(temperature) AS mx FROM db."sensor-data" '
        "WHERE measure_name = 'metrics' GROUP BY 1",
    )
    assert binned[0]["mx"] == "22.5" and binned[0]["b"].endswith(":00.000000000")


def test_bad_records(env):
    store, _ = env
    t = now_ms()
    bad = [
        {**single("x", 1, t), "MeasureValue": "notanumber"},
        single("x", 1, t + 3_600_000),  # an hour in the future
        {**single("x", 1, t), "MeasureName": ""},
        {**single("x", 1, t), "Dimensions": [{"Name": "time", "Value": "1"}]},
    ]
    with pytest.raises(RejectedRecords) as e:
        store.write(A, R, "db", "sensor-data", bad)
    assert [r["RecordIndex"] for r in e.value.rejected] == [0, 1, 2, 3]
    with pytest.raises(WriteValidation):
        store.write(
            A,
            R,
            "db",
            "sensor-data",
            [single("x", 1, t)],
            {"Dimensions": [{"Name": "DeviceId", "Value": "y"}]},
        )


def test_pagination_and_errors(env):
    store, engine = env
    t = now_ms()
    for start in range(0, 2500, 100):
        store.write(
            A,
            R,
            "db",
            "sensor-data",
            [single(f"d{i}", i, t - i) for i in range(start, start + 100)],
        )
    sql = 'SELECT DeviceId FROM db."sensor-data" ORDER BY time DESC'
    first = engine.query(A, R, sql)
    seen, page = len(first["Rows"]), first
    while "NextToken" in page:
        page = engine.query(A, R, sql, next_token=page["NextToken"])
        seen += len(page["Rows"])
    assert len(first["Rows"]) == 1000 and seen == 2500
    small = engine.query(A, R, 'SELECT DeviceId FROM db."sensor-data"', max_rows=7)
    assert len(small["Rows"]) == 7 and "NextToken" in small
    with pytest.raises(QueryValidation, match="nosuch"):
        engine.query(A, R, 'SELECT nosuch FROM db."sensor-data"')
    with pytest.raises(QueryValidation):
        engine.query(A, R, "SELECT * FROM read_csv('/etc/passwd')")
    with pytest.raises(QueryValidation, match="Invalid pagination token"):
        engine.query(A, R, sql, next_token="bogus")
    token = engine.query(A, R, sql, max_rows=1)["NextToken"]
    with pytest.raises(QueryValidation, match="Invalid pagination token"):  # as on AWS
        engine.query(A, R, "SELECT 1", next_token=token)


def test_value_types_as_spelled_and_inherited_from_common_attributes(env):
    """What the fast path for DOUBLE must not change: a missing or empty type is DOUBLE,
    lower case is accepted, a record's own type and value win over CommonAttributes',
    and a value that does not parse is that record's rejection, with the type named."""
    store, q = env
    t = now_ms()
    base = {"Dimensions": [{"Name": "DeviceId", "Value": "d1"}], "MeasureName": "m"}
    ok = [
        {**base, "MeasureValue": "1.5", "Time": str(t)},  # no type at all: DOUBLE
        {**base, "MeasureValue": "2.5", "MeasureValueType": "", "Time": str(t + 1)},
        {**base, "MeasureValue": "3.5", "MeasureValueType": "double", "Time": str(t + 2)},
        {**base, "Time": str(t + 3)},  # the value from CommonAttributes
        {
            **base,
            "MeasureName": "n",
            "MeasureValue": "7",
            "MeasureValueType": "BIGINT",
            "Time": str(t + 4),
        },
        {
            **base,
            "MeasureName": "metrics",
            "MeasureValueType": "MULTI",
            "Time": str(t + 5),
            "MeasureValues": [
                {"Name": "a", "Value": "0.25", "Type": "double"},
                {"Name": "b", "Value": "true", "Type": "BOOLEAN"},
            ],
        },
    ]
    common = {"MeasureValue": "4.5", "TimeUnit": "MILLISECONDS"}
    assert store.write(A, R, "db", "sensor-data", ok, common) == len(ok)
    rows = q.query(
        A,
        R,
        "SELECT measure_name, measure_value::double, measure_value::bigint, a, b "
        'FROM "db"."sensor-data" ORDER BY time',
    )
    got = [tuple(d.get("ScalarValue") for d in r["Data"]) for r in rows["Rows"]]
    assert got == [
        ("m", "1.5", None, None, None),
        ("m", "2.5", None, None, None),
        ("m", "3.5", None, None, None),
        ("m", "4.5", None, None, None),
        ("n", None, "7", None, None),
        ("metrics", None, None, "0.25", "true"),
    ]
    bad = [
        {**base, "MeasureValue": "x", "Time": str(t + 9)},
        {**base, "MeasureValue": "1", "MeasureValueType": "DECIMAL", "Time": str(t + 9)},
        {
            **base,
            "MeasureValueType": "MULTI",
            "Time": str(t + 9),
            "MeasureValues": [{"Name": "a", "Value": "1", "Type": "FLOAT"}],
        },
    ]
    with pytest.raises(RejectedRecords) as e:
        store.write(A, R, "db", "sensor-data", bad)
    reasons = [r["Reason"] for r in e.value.rejected]
    assert reasons[0].startswith("Measure value does not match type DOUBLE")
    assert reasons[1] == "Unsupported MeasureValueType DECIMAL."
    assert reasons[2].startswith("Invalid multi-measure value")
    with pytest.raises(WriteValidation, match=r"\['DeviceId'\] appear both"):
        store.write(A, R, "db", "sensor-data", [ok[0]], {"Dimensions": base["Dimensions"]})
