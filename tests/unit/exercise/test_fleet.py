"""The simulated fleet: reproducible, realistic, and every invalid message labelled."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from iotpipe.config import DEFAULT_SENSORS, Device, SensorRange
from iotpipe.fleet import Fleet, default_devices, iso_ms, iso_ms_series, replay_file, timing

START = datetime(2026, 11, 27, 1, 2, 3, 123000, tzinfo=UTC)


def run(count: int = 300, ratio: float = 0.0, seed: int = 7, devices: int | None = None):
    fleet = Fleet(default_devices(devices, {}), DEFAULT_SENSORS, seed)
    return list(fleet.messages(count, START, timedelta(seconds=1), ratio))


def test_default_fleet_is_the_recipes_three_devices() -> None:
    devices = default_devices(None, {})
    assert [(d.device_id, d.location) for d in devices] == [
        ("sensor001", "factory_floor_1"),
        ("sensor002", "factory_floor_2"),
        ("sensor003", "warehouse"),
    ]
    first = [json.loads(m.data) for m in run(3)]
    assert [set(p) for p in first] == [
        {"deviceId", "timestamp", "temperature", "humidity", "location"}
    ] * 3
    assert first[0]["timestamp"] == "2026-11-27T01:02:03.123Z"


def test_registry_and_count_decide_devices() -> None:
    registry = {"sensor002": Device("dock", "pressure_sensor", {})}
    devices = default_devices(12, registry)
    assert devices[0].device_id == "sensor001" and devices[-1].device_id == "sensor012"
    assert (devices[1].location, devices[1].device_type) == ("dock", "pressure")
    assert {d.device_type for d in devices} == {"temperature", "humidity", "pressure", "vibration"}
    with pytest.raises(ValueError):
        default_devices(0, {})


def test_same_seed_same_bytes_other_seed_other_values() -> None:
    assert [m.data for m in run(seed=1)] == [m.data for m in run(seed=1)]
    assert [m.data for m in run(seed=1)] != [m.data for m in run(seed=2)]


def test_values_drift_within_range_and_are_not_constant() -> None:
    msgs = [m for m in run(3000, devices=8)]
    by_measure: dict[str, list[float]] = {}
    for m in msgs:
        for k, v in m.values.items():
            lo, hi = DEFAULT_SENSORS[k].min, DEFAULT_SENSORS[k].max
            assert lo <= v <= hi
            by_measure.setdefault(k, []).append(v)
    assert set(by_measure) == {"temperature", "humidity", "pressure", "vibration"}
    temps = [m.values["temperature"] for m in msgs if m.device_id == "sensor001"]
    steps = [abs(a - b) for a, b in itertools.pairwise(temps)]
    assert 0 < sum(steps) / len(steps) < 1.0  # a walk, not white noise over the range
    assert len(set(temps)) > 50


def test_exclusive_ranges_are_kept_strictly() -> None:
    sensors = {"humidity": SensorRange(0, 100, inclusive=False), "temperature": SensorRange(20, 21)}
    fleet = Fleet(default_devices(None, {}), sensors, 3)
    for m in fleet.messages(500, START, timedelta(seconds=1)):
        assert 20 <= m.values["temperature"] <= 21
        assert 0 < m.values["humidity"] < 100


def test_invalid_messages_are_labelled_and_nothing_in_them_is_valid() -> None:
    msgs = run(4000, ratio=0.05)
    invalid = [m for m in msgs if m.invalid]
    assert msgs[3].invalid == "recipe_invalid001"
    recipe = json.loads(msgs[3].data)
    assert (recipe["deviceId"], recipe["temperature"], recipe["humidity"]) == (
        "invalid001",
        999,
        150,
    )
    assert 0.03 < len(invalid) / len(msgs) < 0.07
    kinds = {m.invalid for m in invalid}
    assert kinds == {
        "recipe_invalid001",
        "out_of_range",
        "malformed_json",
        "not_an_object",
        "not_a_number",
        "missing_device_id",
    }
    for m in invalid:
        assert not m.values
        if m.invalid == "malformed_json":
            with pytest.raises(ValueError):
                json.loads(m.data)
        elif m.invalid == "out_of_range":
            body = json.loads(m.data)
            for k, v in body.items():
                if k in DEFAULT_SENSORS:
                    assert not DEFAULT_SENSORS[k].min <= v <= DEFAULT_SENSORS[k].max


def test_no_invalid_messages_at_ratio_zero() -> None:
    assert not any(m.invalid for m in run(500, ratio=0.0))


def test_timing_never_in_the_future_and_unique_milliseconds() -> None:
    now = datetime(2026, 11, 27, tzinfo=UTC)
    start, step = timing(1000, 50, now)
    assert (start, step) == (now, timedelta(milliseconds=20))
    start, step = timing(1000, None, now)
    assert start + step * 1000 == now and step == timedelta(milliseconds=1)
    start, step = timing(1000, 20000, now)
    assert step == timedelta(milliseconds=1) and start + step * 1000 == now
    msgs = list(Fleet(default_devices(None, {}), DEFAULT_SENSORS, 1).messages(2000, start, step))
    assert len({m.timestamp for m in msgs}) == 2000


def test_iso_ms_format() -> None:
    assert iso_ms(datetime(2026, 1, 2, 3, 4, 5, 678999, tzinfo=UTC)) == "2026-01-02T03:04:05.678Z"


def test_replay_keeps_bytes_and_keys_by_device(tmp_path: Path) -> None:
    lines = ['{"deviceId": "a1", "temperature": 1}\n', "\n", "garbage{\r\n", "[1, 2]"]
    (tmp_path / "d.jsonl").write_text("".join(lines))
    msgs = list(replay_file(tmp_path / "d.jsonl", None, "kinesis"))
    assert [(m.partition_key, m.data) for m in msgs] == [
        ("a1", b'{"deviceId": "a1", "temperature": 1}'),
        ("replay", b"garbage{"),
        ("replay", b"[1, 2]"),
    ]


@pytest.mark.parametrize(
    ("start", "interval"),
    [
        (datetime(2026, 1, 2, 3, 4, 5, 678999, tzinfo=UTC), timedelta(milliseconds=1)),
        (datetime(2026, 12, 31, 23, 59, 59, 998000, tzinfo=UTC), timedelta(microseconds=700)),
        (datetime(2026, 3, 1, 0, 0, 0, 500, tzinfo=UTC), timedelta(milliseconds=-3)),
        (datetime(2026, 6, 1, 12, 0, tzinfo=timezone(timedelta(hours=-5))), timedelta(seconds=61)),
    ],
)
def test_iso_ms_series_matches_iso_ms_per_message(start: datetime, interval: timedelta) -> None:
    """The per-second prefix cache gives exactly what formatting each time gives."""
    expected = [iso_ms(start + interval * k) for k in range(3000)]
    assert list(iso_ms_series(start, interval, 3000)) == expected
