"""Record layouts and request planning; botocore's model validates what we build."""

from __future__ import annotations

import pytest
from botocore.stub import Stubber
from handler_helpers import NOW, kinesis_record, ms, multi_settings, reading, ts_client

from lambda_handler import decode, records, settings, validate
from lambda_handler.model import Reading

NOW_MS = round(NOW * 1000)


def readings_for(bodies, conf):
    out = []
    for n, body in enumerate(bodies):
        result = validate.evaluate(
            decode.item_from_record(n, kinesis_record(body, n)), conf, NOW_MS
        )
        assert isinstance(result, Reading), result
        out.append(result)
    return out


def effective(request):
    """What Timestream stores: CommonAttributes merged into every record."""
    rows = []
    for record in request.records:
        row = {**request.common, **record}
        row["Dimensions"] = request.common.get("Dimensions", []) + record.get("Dimensions", [])
        rows.append(row)
    return rows


def assert_valid_write(request):
    """botocore validates the parameters against the service model before Stubber answers."""
    client = ts_client()
    params = request.params("iot-sensor-db", "sensor-data")
    with Stubber(client) as stub:
        stub.add_response("write_records", {"RecordsIngested": {"Total": 1}}, params)
        client.write_records(**params)
        stub.assert_no_pending_responses()


def test_multi_one_record_per_message_with_shared_dimensions_in_common():
    conf = multi_settings()
    bodies = [
        reading("sensor002", 0, temperature=21.0, humidity=40.0, location="hall"),
        reading("sensor003", 1, temperature=22.0, location="hall", deviceType="env_sensor"),
    ]
    (request,) = records.plan_requests(readings_for(bodies, conf), "multi")
    assert request.common == {
        "TimeUnit": "MILLISECONDS",
        "Dimensions": [
            {"Name": "Location", "Value": "hall"},
            {"Name": "DeviceType", "Value": "env_sensor"},
        ],
        "MeasureName": "metrics",
        "MeasureValueType": "MULTI",
    }
    assert request.records == [
        {
            "Dimensions": [{"Name": "DeviceId", "Value": "sensor002"}],
            "Time": ms(0),
            "MeasureValues": [
                {"Name": "temperature", "Value": "21.0", "Type": "DOUBLE"},
                {"Name": "humidity", "Value": "40.0", "Type": "DOUBLE"},
            ],
        },
        {
            "Dimensions": [{"Name": "DeviceId", "Value": "sensor003"}],
            "Time": ms(1),
            "MeasureValues": [{"Name": "temperature", "Value": "22.0", "Type": "DOUBLE"}],
        },
    ]
    assert request.owners == [(0, None), (1, None)]
    assert_valid_write(request)


def test_single_is_the_recipes_layout():
    bodies = [reading("sensor001", 0, temperature=26.3, humidity=60.1, location="factory_floor_1")]
    (request,) = records.plan_requests(readings_for(bodies, settings.Settings()), "single")
    dims = [
        {"Name": "DeviceId", "Value": "sensor001"},
        {"Name": "Location", "Value": "factory_floor_1"},
        {"Name": "DeviceType", "Value": "temperature_sensor"},
    ]
    assert effective(request) == [
        {
            "Time": ms(0),
            "TimeUnit": "MILLISECONDS",
            "Dimensions": dims,
            "MeasureName": "temperature",
            "MeasureValue": "26.3",
            "MeasureValueType": "DOUBLE",
        },
        {
            "Time": ms(0),
            "TimeUnit": "MILLISECONDS",
            "Dimensions": dims,
            "MeasureName": "humidity",
            "MeasureValue": "60.1",
            "MeasureValueType": "DOUBLE",
        },
    ]
    # The two records of one message share time and dimensions: both are common.
    assert request.common["Time"] == ms(0)
    assert request.common["Dimensions"] == dims
    assert request.records == [
        {"MeasureName": "temperature", "MeasureValue": "26.3"},
        {"MeasureName": "humidity", "MeasureValue": "60.1"},
    ]
    assert request.owners == [(0, "temperature"), (0, "humidity")]
    assert_valid_write(request)


@pytest.mark.parametrize(("model", "per_message"), [("multi", 1), ("single", 2)])
def test_at_most_100_records_per_request(model, per_message):
    conf = multi_settings()
    bodies = [reading(f"dev{n:03d}", n / 100, location=f"loc{n % 3}") for n in range(130)]
    requests = records.plan_requests(readings_for(bodies, conf), model)
    sizes = [len(r.records) for r in requests]
    assert all(size <= 100 for size in sizes)
    assert sum(sizes) == 130 * per_message
    owners = sorted(owner for r in requests for owner in r.owners)
    assert owners == sorted({o for r in requests for o in r.owners})  # each record once
    assert {index for index, _ in owners} == set(range(130))
    for request in requests:
        assert_valid_write(request)


def test_readings_are_grouped_so_requests_share_dimensions():
    conf = multi_settings()
    bodies = [reading(f"dev{n:03d}", n, location=("east" if n % 2 else "west")) for n in range(200)]
    requests = records.plan_requests(readings_for(bodies, conf), "multi")
    assert len(requests) == 2
    for request in requests:
        locations = [d["Value"] for d in request.common["Dimensions"] if d["Name"] == "Location"]
        assert len(locations) == 1  # every request is one location
        assert all(r["Dimensions"][0]["Name"] == "DeviceId" for r in request.records)


def test_mixed_dimension_sets_keep_what_is_not_shared_in_each_record():
    conf = multi_settings()
    bodies = [
        reading("sensor001", 0, location="hall", deviceType="t"),  # has last_maintenance
        reading("sensor009", 1, location="hall", deviceType="t"),  # not in the registry
    ]
    (request,) = records.plan_requests(readings_for(bodies, conf), "multi")
    assert request.common["Dimensions"] == [
        {"Name": "Location", "Value": "hall"},
        {"Name": "DeviceType", "Value": "t"},
    ]
    by_device = {r["Dimensions"][0]["Value"]: r["Dimensions"] for r in request.records}
    assert by_device["sensor001"] == [
        {"Name": "DeviceId", "Value": "sensor001"},
        {"Name": "last_maintenance", "Value": "2026-09-01"},
    ]
    assert by_device["sensor009"] == [{"Name": "DeviceId", "Value": "sensor009"}]
    assert_valid_write(request)


def test_nothing_shared_means_no_common_dimensions():
    conf = multi_settings()
    bodies = [
        reading("a", 0, location="x", deviceType="p"),
        reading("b", 0, location="y", deviceType="q"),
    ]
    (request,) = records.plan_requests(readings_for(bodies, conf), "multi")
    assert "Dimensions" not in request.common
    assert request.common["Time"] == ms(0)  # same time: shared
    assert all(len(r["Dimensions"]) == 3 and "Time" not in r for r in request.records)
    assert_valid_write(request)


def test_no_readings_no_requests():
    assert records.plan_requests([], "multi") == []


def test_only_isolates_one_record_with_the_common_attributes():
    conf = multi_settings()
    bodies = [reading("a", 0, location="x"), reading("b", 1, location="x")]
    (request,) = records.plan_requests(readings_for(bodies, conf), "multi")
    alone = request.only(1)
    assert alone.records == [request.records[1]]
    assert alone.owners == [request.owners[1]]
    assert alone.common == request.common
    assert_valid_write(alone)


def test_values_are_the_shortest_round_trip_text():
    conf = multi_settings()
    bodies = [reading("a", 0, temperature=0.1, humidity=1e-5, vibration=3, pressure=1013.25)]
    (request,) = records.plan_requests(readings_for(bodies, conf), "multi")
    values = {v["Name"]: v["Value"] for v in request.records[0]["MeasureValues"]}
    assert values == {
        "temperature": "0.1",
        "humidity": "1e-05",
        "pressure": "1013.25",
        "vibration": "3.0",
    }
