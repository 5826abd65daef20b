"""Timestream over HTTP: response shapes, types, NULLs, pagination, errors, rejected records."""

from __future__ import annotations

import time

import pytest

pytestmark = pytest.mark.integration


@pytest.fixture
def table(local_aws):
    tw = local_aws.client("timestream-write")
    db = local_aws.name("tsdb")
    tw.create_database(DatabaseName=db)
    tw.create_table(
        DatabaseName=db,
        TableName="sensor-data",
        RetentionProperties={
            "MemoryStoreRetentionPeriodInHours": 24,
            "MagneticStoreRetentionPeriodInDays": 7,
        },
    )
    return db, f'"{db}"."sensor-data"'


def temperatures(values, devices, now):
    """Single-measure temperature records: value i from device d<i % devices>, i ms ago."""
    return [
        {
            "Dimensions": [{"Name": "DeviceId", "Value": f"d{i % devices}"}],
            "MeasureName": "temperature",
            "MeasureValue": str(i),
            "MeasureValueType": "DOUBLE",
            "Time": str(now - i),
        }
        for i in values
    ]


def write(local_aws, db, records, common=None):
    kw = {"CommonAttributes": common} if common else {}
    return local_aws.client("timestream-write").write_records(
        DatabaseName=db, TableName="sensor-data", Records=records, **kw
    )


def test_shapes_types_and_nulls(local_aws, table):
    db, ref = table
    now = int(time.time() * 1000)
    common = {
        "Dimensions": [{"Name": "Location", "Value": "floor1"}],
        "Time": str(now),
        "TimeUnit": "MILLISECONDS",
    }
    write(
        local_aws,
        db,
        [
            {
                "Dimensions": [{"Name": "DeviceId", "Value": "s1"}],
                "MeasureName": "temperature",
                "MeasureValue": "22.5",
                "MeasureValueType": "DOUBLE",
            },
            {
                "Dimensions": [{"Name": "DeviceId", "Value": "s1"}],
                "MeasureName": "count",
                "MeasureValue": "7",
                "MeasureValueType": "BIGINT",
            },
            {
                "Dimensions": [{"Name": "DeviceId", "Value": "s2"}],
                "MeasureName": "metrics",
                "MeasureValueType": "MULTI",
                "MeasureValues": [
                    {"Name": "humidity", "Value": "40", "Type": "DOUBLE"},
                    {"Name": "online", "Value": "true", "Type": "BOOLEAN"},
                ],
            },
        ],
        common,
    )
    out = local_aws.client("timestream-query").query(
        QueryString=f"SELECT * FROM {ref} ORDER BY measure_name"
    )
    assert set(out) >= {"QueryId", "Rows", "ColumnInfo", "QueryStatus"}
    cols = {c["Name"]: c["Type"]["ScalarType"] for c in out["ColumnInfo"]}
    assert cols == {
        "Location": "VARCHAR",
        "DeviceId": "VARCHAR",
        "measure_name": "VARCHAR",
        "time": "TIMESTAMP",
        "measure_value::double": "DOUBLE",
        "measure_value::bigint": "BIGINT",
        "humidity": "DOUBLE",
        "online": "BOOLEAN",
    }
    names = [c["Name"] for c in out["ColumnInfo"]]
    count = dict(zip(names, out["Rows"][0]["Data"], strict=True))
    assert count["measure_value::bigint"] == {"ScalarValue": "7"}
    assert count["measure_value::double"] == {"NullValue": True}
    assert count["humidity"] == {"NullValue": True}
    stamp = count["time"]["ScalarValue"]
    assert len(stamp) == 29 and stamp[10] == " " and stamp.endswith("000000")
    metrics = dict(zip(names, out["Rows"][1]["Data"], strict=True))
    assert metrics["online"] == {"ScalarValue": "true"} and metrics["humidity"] == {
        "ScalarValue": "40.0"
    }


def test_pagination_with_the_boto3_paginator(local_aws, table):
    db, ref = table
    now = int(time.time() * 1000)
    for start in range(0, 2300, 100):
        write(local_aws, db, temperatures(range(start, start + 100), devices=10, now=now))
    pages = list(
        local_aws.client("timestream-query")
        .get_paginator("query")
        .paginate(QueryString=f"SELECT time, measure_value::double FROM {ref} ORDER BY time")
    )
    assert [len(p["Rows"]) for p in pages] == [1000, 1000, 300]
    assert "NextToken" not in pages[-1]
    values = [float(r["Data"][1]["ScalarValue"]) for p in pages for r in p["Rows"]]
    assert values == [float(i) for i in range(2299, -1, -1)]
    small = local_aws.client("timestream-query").query(
        QueryString=f"SELECT 1 FROM {ref}", MaxRows=5
    )
    assert len(small["Rows"]) == 5 and small["NextToken"]


def test_recipe_queries_single_record_model(local_aws, table):
    db, ref = table
    now = int(time.time() * 1000)
    recs = []
    for i in range(12):
        dev = f"sensor00{i % 3}"
        dims = [
            {"Name": "DeviceId", "Value": dev},
            {"Name": "Location", "Value": "factory_floor_1"},
            {"Name": "DeviceType", "Value": "temperature_sensor"},
        ]
        for measure, value in (("temperature", 20 + i), ("humidity", 40 + i)):
            recs.append(
                {
                    "Dimensions": dims,
                    "MeasureName": measure,
                    "MeasureValue": str(value),
                    "MeasureValueType": "DOUBLE",
                    "Time": str(now - i * 1000),
                }
            )
    write(local_aws, db, recs[:12])
    write(local_aws, db, recs[12:])
    tq = local_aws.client("timestream-query")
    latest = tq.query(
        QueryString=f"SELECT * FROM {ref} WHERE time > ago(1h) ORDER BY time DESC LIMIT 10"
    )
    assert len(latest["Rows"]) == 10
    avg = tq.query(
        QueryString=(
            f"SELECT DeviceId, avg(measure_value::double) as avg_temperature FROM {ref} "
            "WHERE measure_name = 'temperature' AND time > ago(1h) GROUP BY DeviceId"
        )
    )
    got = {r["Data"][0]["ScalarValue"]: float(r["Data"][1]["ScalarValue"]) for r in avg["Rows"]}
    assert got == {"sensor000": 24.5, "sensor001": 25.5, "sensor002": 26.5}
    assert [c["Name"] for c in avg["ColumnInfo"]] == ["DeviceId", "avg_temperature"]


def test_errors_are_validation_exceptions(local_aws, table):
    _, ref = table
    tq = local_aws.client("timestream-query")
    for bad in (
        f"SELECT nosuchcolumn FROM {ref}",
        "SELEC 1",
        f"DELETE FROM {ref}",
        'SELECT * FROM "nodb"."x"',
    ):
        with pytest.raises(tq.exceptions.ValidationException):
            tq.query(QueryString=bad)


def test_rejected_records_are_reported_and_the_rest_written(local_aws, table):
    db, ref = table
    tw = local_aws.client("timestream-write")
    now = str(int(time.time() * 1000))
    good = {
        "Dimensions": [{"Name": "DeviceId", "Value": "a"}],
        "MeasureName": "temperature",
        "MeasureValue": "1",
        "MeasureValueType": "DOUBLE",
        "Time": now,
    }
    write(local_aws, db, [good])
    write(local_aws, db, [good])  # an identical repeat is accepted (idempotent)
    with pytest.raises(tw.exceptions.RejectedRecordsException) as e:
        write(
            local_aws,
            db,
            [
                {**good, "MeasureValue": "2"},
                {**good, "Dimensions": [{"Name": "DeviceId", "Value": "b"}]},
            ],
        )
    rejected = e.value.response["RejectedRecords"]
    assert rejected[0]["RecordIndex"] == 0 and rejected[0]["ExistingVersion"] == 1
    rows = local_aws.client("timestream-query").query(
        QueryString=f"SELECT DeviceId FROM {ref} ORDER BY 1"
    )["Rows"]
    assert [r["Data"][0]["ScalarValue"] for r in rows] == ["a", "b"]
    with pytest.raises(tw.exceptions.ResourceNotFoundException):
        tw.write_records(DatabaseName=db, TableName="nope", Records=[good])
    with pytest.raises(tw.exceptions.ValidationException):
        tw.delete_database(DatabaseName=db)  # still has a table, as on AWS


# --- the query endpoint is read-only, one statement, time-limited, cancellable -------------


def _hundred(local_aws, db):
    write(local_aws, db, temperatures(range(100), devices=3, now=int(time.time() * 1000)))


@pytest.mark.parametrize(
    "attack",
    [
        "WITH x AS (SELECT 1) INSERT INTO {ref} (measure_name, time) SELECT 'forged', now() FROM x",
        'WITH x AS (SELECT 1) UPDATE {ref} SET "measure_value::double" = 0',
        "WITH x AS (SELECT 1) DELETE FROM {ref}",
        "SELECT $$ ; $$; DROP TABLE {ref}; SELECT $$ ; $$",
        "SELECT $$;$$; CREATE MACRO m() AS 1; SELECT $$;$$",
        "SELECT $$;$$; SET memory_limit='1MB'; SELECT $$;$$",
    ],
)
def test_mutating_sql_is_refused_and_the_data_is_intact(local_aws, table, attack):
    db, ref = table
    _hundred(local_aws, db)
    tq = local_aws.client("timestream-query")
    with pytest.raises(tq.exceptions.ValidationException):
        tq.query(QueryString=attack.format(ref=ref))
    counted = tq.query(QueryString=f"SELECT count(*), min(measure_value::double) FROM {ref}")
    assert [d["ScalarValue"] for d in counted["Rows"][0]["Data"]] == ["100", "0.0"]
    write(  # a write after the attempt still lands and is queryable
        local_aws,
        db,
        [
            {
                "Dimensions": [{"Name": "DeviceId", "Value": "after"}],
                "MeasureName": "temperature",
                "MeasureValue": "1",
                "MeasureValueType": "DOUBLE",
                "Time": str(int(time.time() * 1000)),
            }
        ],
    )
    after = tq.query(QueryString=f"SELECT DeviceId FROM {ref} WHERE DeviceId = 'after'")
    assert after["Rows"] == [{"Data": [{"ScalarValue": "after"}]}]


def test_show_describe_and_timestream_worded_errors(local_aws, table):
    db, ref = table
    _hundred(local_aws, db)
    tq = local_aws.client("timestream-query")
    dbs = tq.query(QueryString="SHOW DATABASES")
    assert {"ScalarValue": db} in [r["Data"][0] for r in dbs["Rows"]]
    assert tq.query(QueryString=f"SHOW TABLES FROM {db}")["Rows"] == [
        {"Data": [{"ScalarValue": "sensor-data"}]}
    ]
    described = tq.query(QueryString=f"DESCRIBE {ref}")
    assert [r["Data"][2]["ScalarValue"] for r in described["Rows"]] == [
        "DIMENSION",
        "MEASURE_NAME",
        "TIMESTAMP",
        "MEASURE_VALUE",
    ]
    measures = tq.query(QueryString=f"SHOW MEASURES FROM {ref}")
    assert measures["Rows"][0]["Data"][:2] == [
        {"ScalarValue": "temperature"},
        {"ScalarValue": "double"},
    ]
    assert tq.query(QueryString="/* c */ SELECT 1")["Rows"] == [{"Data": [{"ScalarValue": "1"}]}]
    for bad, message in (
        (f"SELECT x FROM {ref}", "line 1:8: Column 'x' does not exist"),
        ("SELECT list_value(1)", "line 1:8: Function list_value not registered"),
        ("SELECT * FROM information_schema.tables", "Database 'information_schema' does not"),
    ):
        with pytest.raises(tq.exceptions.ValidationException) as e:
            tq.query(QueryString=bad)
        assert message in e.value.response["Error"]["Message"]


@pytest.fixture(scope="module")
def quick_aws(tmp_path_factory):
    """An emulator of its own whose queries wait 0.2 s per call and time out after 3 s."""
    from iotpipe.local import lifecycle

    home = tmp_path_factory.mktemp("iotpipe-quick")
    mp = pytest.MonkeyPatch()
    mp.setenv("IOTPIPE_LOCAL_QUERY_WAIT_S", "0.2")
    mp.setenv("IOTPIPE_LOCAL_QUERY_TIMEOUT_S", "3")
    try:
        info = lifecycle.start(home, port=0)
    finally:
        mp.undo()
    try:
        yield info.endpoint
    finally:
        lifecycle.stop(home)


def test_cancel_query_and_the_time_limit_through_boto3(quick_aws):
    import boto3

    def client(service):
        return boto3.client(
            service,
            endpoint_url=quick_aws,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    tw, tq = client("timestream-write"), client("timestream-query")
    tw.create_database(DatabaseName="quick")
    tw.create_table(DatabaseName="quick", TableName="t")
    now = int(time.time() * 1000)
    records = [
        {
            "Dimensions": [{"Name": "DeviceId", "Value": "d"}],
            "MeasureName": "m",
            "MeasureValue": str(i),
            "MeasureValueType": "DOUBLE",
            "Time": str(now - i),
        }
        for i in range(100)
    ]
    tw.write_records(DatabaseName="quick", TableName="t", Records=records)
    t = '"quick"."t"'
    slow = (
        'SELECT sum(a."measure_value::double" * b."measure_value::double" * '
        'c."measure_value::double" * d."measure_value::double" * e."measure_value::double") '
        f"FROM {t} a, {t} b, {t} c, {t} d, {t} e"
    )
    first = tq.query(QueryString=slow)  # answers after 0.2 s: running, no rows yet
    assert first["Rows"] == [] and first["NextToken"]
    assert tq.cancel_query(QueryId=first["QueryId"]).get("CancellationMessage") is None
    assert "already" in tq.cancel_query(QueryId=first["QueryId"])["CancellationMessage"]
    with pytest.raises(tq.exceptions.ConflictException):
        tq.query(QueryString=slow, NextToken=first["NextToken"])
    started = time.monotonic()
    with pytest.raises(tq.exceptions.QueryExecutionException) as e:
        list(tq.get_paginator("query").paginate(QueryString=slow))
    assert "timed out after 3 seconds" in e.value.response["Error"]["Message"]
    assert time.monotonic() - started < 10
    quick = tq.query(QueryString=f"SELECT count(*) FROM {t}")  # still answering at once
    assert quick["Rows"] == [{"Data": [{"ScalarValue": "100"}]}]
