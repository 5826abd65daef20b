"""The lake's and Timestream's switches: validated like every other key, with file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from iotpipe.config import ConfigError, LakeConfig, load, parse


def problems(text: str, tmp_path: Path) -> list[str]:
    path = tmp_path / "iotpipe.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load(path)
    return err.value.problems


def test_defaults_keep_timestream_on_and_the_lake_off():
    config = parse({})
    assert config.timestream.enabled is True
    assert config.lake == LakeConfig(False, 60, 64, 365, 10)


def test_both_stores_may_be_on_and_the_lake_alone_is_enough():
    both = parse({"lake": {"enabled": True}})
    assert both.timestream.enabled and both.lake.enabled
    lake_only = parse({"timestream": {"enabled": False}, "lake": {"enabled": True}})
    assert not lake_only.timestream.enabled


def test_no_store_at_all_is_refused_naming_both_keys(tmp_path):
    (line,) = problems("timestream:\n  enabled: false\n", tmp_path)
    assert line.startswith(f"{tmp_path / 'iotpipe.yaml'}:1: timestream.enabled")
    assert "lake.enabled" in line and "nothing would store" in line


@pytest.mark.parametrize(
    ("key", "value", "allowed"),
    [
        ("buffer_s", 0, "from 1 to 900"),
        ("buffer_s", 901, "from 1 to 900"),
        ("buffer_mb", 63, "from 64 to 128"),
        ("buffer_mb", 129, "from 64 to 128"),
        ("retention_days", 0, "from 1 to 36500"),
        ("scan_limit_gb", 0, "from 1 to"),
        ("enabled", "yes please", "true"),
    ],
)
def test_each_lake_key_is_checked_with_its_range(tmp_path, key, value, allowed):
    (line,) = problems(f"lake:\n  # one key at a time\n  {key}: {value!r}\n", tmp_path)
    assert f":3: lake.{key}:" in line and allowed in line


def test_an_unknown_lake_key_lists_the_allowed_ones(tmp_path):
    (line,) = problems("lake:\n  buffer: 60\n", tmp_path)
    assert "lake.buffer: unknown key" in line and "buffer_s" in line


def test_a_short_buffer_is_for_the_embedded_aws_only(tmp_path):
    assert parse({"lake": {"enabled": True, "buffer_s": 1}}).lake.buffer_s == 1
    (line,) = problems("target: aws\nlake:\n  enabled: true\n  buffer_s: 5\n", tmp_path)
    assert ":4: lake.buffer_s:" in line and "60-900" in line


def test_a_sensor_or_attribute_named_like_a_lake_column_is_refused(tmp_path):
    text = (
        "lake: {enabled: true}\n"
        "sensors:\n  hour: {min: 0, max: 23}\n  temperature: {min: -50, max: 150}\n"
        "devices:\n  s1: {location: a, device_type: b, dt: x}\n"
    )
    lines = problems(text, tmp_path)
    assert any(":3: sensors.hour: is a column of the lake's table" in p for p in lines)
    assert any("devices.s1.dt" in p and "lake" in p for p in lines)


def test_the_same_names_are_fine_without_the_lake():
    assert "hour" in parse({"sensors": {"hour": {"min": 0, "max": 23}}}).sensors
