"""The lake's presets (pure SQL): partition filters from the injected clock, the probe's
exclusion, since/device/limit as Timestream's presets have them; valid Trino that, once
transpiled as the embedded AWS does, answers the same question on DuckDB."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import pytest
import sqlglot

from iotpipe.stores import lakesql
from iotpipe.stores.lakesql import LakeScope, by_device_sql, per_minute_sql, recent_sql
from lambda_handler.enrich import PROBE_DEVICE_PREFIX

NOW = datetime(2026, 12, 2, 0, 10, tzinfo=UTC)
MEASURES = ("temperature", "humidity")
PRESETS = [recent_sql, by_device_sql, per_minute_sql]


def scope(**kw: Any) -> LakeScope:
    return LakeScope(
        **{"database": "db", "table": "telemetry", "measures": MEASURES, "now": NOW, **kw}
    )


@pytest.mark.parametrize("sql", PRESETS)
def test_every_preset_prunes_partitions_from_the_injected_clock(sql: Any) -> None:
    # 00:10 - 1 h - 15 min of clock skew = 22:55 the day before
    text = sql(scope(since="1h"))
    assert "dt >= '2026-12-01' AND (dt > '2026-12-01' OR hour >= 22)" in text
    assert "time > current_timestamp - INTERVAL '1' HOUR" in text
    week = sql(scope(since="7d"))
    assert "dt >= '2026-11-24' AND (dt > '2026-11-24' OR hour >= 23)" in week
    assert "INTERVAL '7' DAY" in week
    sqlglot.parse_one(text, read="trino")  # valid Trino


@pytest.mark.parametrize("sql", PRESETS)
def test_every_preset_leaves_probe_rows_out_unless_a_probe_device_is_asked_for(sql: Any) -> None:
    text = sql(scope())
    exclusion = f"device_id NOT LIKE '{PROBE_DEVICE_PREFIX}%'"
    assert text.count(exclusion) == (len(MEASURES) if sql is per_minute_sql else 1)
    probe = sql(scope(device=f"{PROBE_DEVICE_PREFIX}ab12"))
    assert "NOT LIKE" not in probe and f"device_id = '{PROBE_DEVICE_PREFIX}ab12'" in probe
    assert "device_id = 'o''brien'" in sql(scope(device="o'brien"))  # quoted, not injected


def test_intervals_use_the_largest_whole_unit() -> None:
    assert lakesql.interval(90) == "INTERVAL '90' SECOND"
    assert lakesql.interval(900) == "INTERVAL '15' MINUTE"
    assert lakesql.interval(7200) == "INTERVAL '2' HOUR"
    assert lakesql.interval(0.001) == "INTERVAL '1' SECOND"


def test_recent_limits_and_names_the_columns() -> None:
    text = recent_sql(scope(limit=25, attributes=("firmware",)))
    assert text.startswith(
        'SELECT time, device_id, location, device_type, firmware, "temperature", "humidity" '
        'FROM "db"."telemetry" WHERE '
    )
    assert text.endswith("ORDER BY time DESC LIMIT 25")


def test_renames_give_timestream_names_for_the_same_concepts() -> None:
    names = lakesql.renames(("temperature", "CO2"))
    assert names["device_id"] == "DeviceId" and names["device_type"] == "DeviceType"
    assert names["co2"] == "CO2" and names["avg_co2"] == "avg_CO2"
    assert "temperature" not in names


# --- the same SQL on DuckDB, as the embedded AWS runs it -------------------------------------


@pytest.fixture
def lake() -> Any:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute("CREATE SCHEMA db")
    con.execute(
        "CREATE TABLE db.telemetry (time TIMESTAMP, device_id VARCHAR, location VARCHAR, "
        "device_type VARCHAR, temperature DOUBLE, humidity DOUBLE, dt VARCHAR, hour INTEGER)"
    )
    now = datetime.now(UTC).replace(tzinfo=None, second=0, microsecond=0)
    rows = [
        (now - timedelta(minutes=5), "sensor001", 20.0, 40.0),
        (now - timedelta(minutes=5, seconds=-10), "sensor001", 22.0, None),
        (now - timedelta(minutes=4), "sensor002", 30.0, 50.0),
        (now - timedelta(minutes=3), f"{PROBE_DEVICE_PREFIX}x", 99.0, 99.0),
        (now - timedelta(hours=3), "sensor003", 10.0, 10.0),  # outside 1h
    ]
    for t, dev, temp, hum in rows:
        con.execute(
            "INSERT INTO db.telemetry VALUES (?, ?, 'f1', 'ts', ?, ?, ?, ?)",
            [t, dev, temp, hum, t.strftime("%Y-%m-%d"), t.hour],
        )
    yield con
    con.close()


def on_duckdb(con: Any, sql: str) -> list[dict[str, Any]]:
    cur = con.execute(sqlglot.transpile(sql, read="trino", write="duckdb")[0])
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]


def test_presets_answer_the_question_on_duckdb(lake: Any) -> None:
    live = scope(now=datetime.now(UTC))
    recent = on_duckdb(lake, recent_sql(live))
    assert [r["device_id"] for r in recent] == ["sensor002", "sensor001", "sensor001"]
    by_device = on_duckdb(lake, by_device_sql(live))
    assert by_device == [
        {"device_id": "sensor001", "avg_temperature": 21.0, "avg_humidity": 40.0, "messages": 2},
        {"device_id": "sensor002", "avg_temperature": 30.0, "avg_humidity": 50.0, "messages": 1},
    ]
    per_minute = on_duckdb(lake, per_minute_sql(live))
    humidity = [
        r for r in per_minute if r["measure"] == "humidity" and r["device_id"] == "sensor001"
    ]
    assert [r["samples"] for r in humidity] == [1]  # the NULL humidity is no sample
    assert {r["device_id"] for r in per_minute} == {"sensor001", "sensor002"}
    count = on_duckdb(lake, lakesql.count_sql("db", "telemetry", "1h", datetime.now(UTC)))
    assert count == [{"n": 4}]  # probe rows included
    probe = on_duckdb(
        lake,
        lakesql.probe_sql(
            "db", "telemetry", f"{PROBE_DEVICE_PREFIX}x", "temperature", datetime.now(UTC)
        ),
    )
    assert [r["v"] for r in probe] == [99.0]
