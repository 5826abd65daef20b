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
        write(
            local_aws,
            db,
            [
                {
                    "Dimensions": [{"Name": "DeviceId", "Value": f"d{i % 10}"}],
                    "MeasureName": "temperature",
                    "MeasureValue": str(i),
                    "MeasureValueType": "DOUBLE",
                    "Time": str(now - i),
                }
                for i in range(start, start + 100)
            ],
        )
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
