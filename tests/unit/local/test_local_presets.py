"""`iotpipe query` presets run on the embedded Timestream for both record models."""

import dataclasses
import time

import pytest

from iotpipe.local.tsquery import QueryEngine
from iotpipe.local.tsstore import TimestreamStore

query = pytest.importorskip("iotpipe.stores.timestream")

A, R = "123456789012", "us-east-1"
MEASURES = ("temperature", "humidity", "pressure", "vibration")


def load(model: str) -> QueryEngine:
    store = TimestreamStore()
    store.create_table(A, R, "db", "sensor-data")
    now = int(time.time() * 1000)
    records = []
    for i in range(20):
        dims = [
            {"Name": "DeviceId", "Value": f"sensor00{i % 2}"},
            {"Name": "Location", "Value": "f1"},
            {"Name": "DeviceType", "Value": "temperature_sensor"},
        ]
        values = {"temperature": 20 + i, "humidity": 40 + i, "pressure": 1000 + i}
        if model == "single":
            records += [
                {
                    "Dimensions": dims,
                    "MeasureName": m,
                    "MeasureValue": str(v),
                    "MeasureValueType": "DOUBLE",
                    "Time": str(now - i * 1000),
                }
                for m, v in values.items()
            ]
        else:
            records.append(
                {
                    "Dimensions": dims,
                    "MeasureName": "metrics",
                    "MeasureValueType": "MULTI",
                    "Time": str(now - i * 1000),
                    "MeasureValues": [
                        {"Name": m, "Value": str(v), "Type": "DOUBLE"} for m, v in values.items()
                    ],
                }
            )
    for start in range(0, len(records), 100):
        store.write(A, R, "db", "sensor-data", records[start : start + 100])
    return QueryEngine(store)


@pytest.mark.parametrize("model", ["single", "multi"])
@pytest.mark.parametrize("name", sorted(query.SQL_PRESETS))
def test_preset_runs(model, name):
    engine = load(model)
    measures = MEASURES if model == "single" else MEASURES[:3]  # multi: only existing columns
    scope = query.Scope(database="db", table="sensor-data", model=model, measures=measures)
    out = engine.query(A, R, query.SQL_PRESETS[name](scope))
    assert out["Rows"], f"{name} returned no rows"
    cols = [c["Name"] for c in out["ColumnInfo"]]
    if name == "by-device":
        row = dict(zip(cols, [d.get("ScalarValue") for d in out["Rows"][0]["Data"]], strict=True))
        assert row["DeviceId"] == "sensor000" and float(row["avg_temperature"]) == 29.0
        assert row["messages"] == "10"


@pytest.mark.parametrize("model", ["single", "multi"])
@pytest.mark.parametrize("name", sorted(query.SQL_PRESETS))
def test_presets_leave_verify_probe_rows_out(model, name):
    engine = load(model)
    store = engine._store
    now = int(time.time() * 1000)
    dims = [{"Name": "DeviceId", "Value": f"{query.PROBE_DEVICE_PREFIX}ab12"}]
    if model == "single":
        probe = {"MeasureName": "temperature", "MeasureValue": "50.1", "MeasureValueType": "DOUBLE"}
    else:
        probe = {
            "MeasureName": "metrics",
            "MeasureValueType": "MULTI",
            "MeasureValues": [{"Name": "temperature", "Value": "50.1", "Type": "DOUBLE"}],
        }
    store.write(A, R, "db", "sensor-data", [{"Dimensions": dims, "Time": str(now), **probe}])
    measures = MEASURES if model == "single" else MEASURES[:3]
    scope = query.Scope(database="db", table="sensor-data", model=model, measures=measures)
    for sql, wanted in (
        (query.SQL_PRESETS[name](scope), False),
        (query.SQL_PRESETS[name](dataclasses.replace(scope, device=dims[0]["Value"])), True),
    ):
        out = engine.query(A, R, sql)
        cols = [c["Name"] for c in out["ColumnInfo"]]
        devices = {r["Data"][cols.index("DeviceId")].get("ScalarValue") for r in out["Rows"]}
        assert (dims[0]["Value"] in devices) is wanted, (sql, devices)
