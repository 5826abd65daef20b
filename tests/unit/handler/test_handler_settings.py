"""Settings: recipe defaults without a file, the version-1 format, and loud errors."""

from __future__ import annotations

import json
import sys

import pytest

from lambda_handler import settings
from lambda_handler.settings import SensorRule, SettingsError


def test_without_a_file_the_recipe_rules_apply(monkeypatch, tmp_path):
    monkeypatch.delenv("IOTPIPE_SETTINGS", raising=False)
    monkeypatch.setattr(settings, "DEFAULT_PATH", tmp_path / "absent.json")
    conf = settings.load()
    assert conf.record_model == "single"
    temperature, humidity = conf.sensors
    assert (temperature.name, temperature.min, temperature.max) == ("temperature", -50, 150)
    assert not temperature.inclusive  # the recipe drops -50 and 150 themselves
    assert (humidity.name, humidity.min, humidity.max, humidity.inclusive) == (
        "humidity",
        0,
        100,
        True,
    )
    assert conf.default_location == "factory_floor_1"
    assert conf.default_device_type == "temperature_sensor"
    assert conf.unknown_devices == "accept"
    assert conf.magnetic_writes is False and conf.memory_retention_hours == 24


def test_settings_json_beside_the_module_is_read(monkeypatch, tmp_path):
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"version": 1, "record_model": "multi"}))
    monkeypatch.delenv("IOTPIPE_SETTINGS", raising=False)
    monkeypatch.setattr(settings, "DEFAULT_PATH", path)
    assert settings.load().record_model == "multi"


def test_iotpipe_settings_names_the_file(monkeypatch, tmp_path):
    path = tmp_path / "elsewhere.json"
    path.write_text(json.dumps({"version": 1, "numeric_strings": True}))
    monkeypatch.setenv("IOTPIPE_SETTINGS", str(path))
    conf = settings.load()
    assert conf.numeric_strings is True
    assert conf.source == str(path)


def test_a_named_file_that_is_missing_is_an_error_not_a_fallback(monkeypatch, tmp_path):
    monkeypatch.setenv("IOTPIPE_SETTINGS", str(tmp_path / "typo.json"))
    with pytest.raises(SettingsError, match="no such file"):
        settings.load()


def test_full_document_round_trip():
    conf = settings.from_dict(
        {
            "version": 1,
            "record_model": "multi",
            "sensors": {
                "temperature": {"min": -50, "max": 150, "inclusive": True},
                "pressure": {"min": 300, "max": None},
            },
            "devices": {
                "sensor001": {
                    "location": "factory_floor_1",
                    "device_type": "temperature_sensor",
                    "last_maintenance": "2026-09-01",
                    "rack": 7,
                    "retired": None,
                }
            },
            "unknown_devices": "quarantine",
            "defaults": {"location": "unknown", "device_type": "unknown"},
            "numeric_strings": False,
            "memory_retention_hours": 12,
            "magnetic_writes": True,
            "magnetic_retention_days": 365,
        }
    )
    assert [s.name for s in conf.sensors] == ["temperature", "pressure"]
    assert conf.sensors[1].max is None and conf.sensors[1].hi == sys.float_info.max
    device = conf.devices["sensor001"]
    assert device.location == "factory_floor_1" and device.device_type == "temperature_sensor"
    assert device.extra == (("last_maintenance", "2026-09-01"), ("rack", "7"))
    assert (conf.default_location, conf.default_device_type) == ("unknown", "unknown")
    assert conf.unknown_devices == "quarantine"
    assert (conf.memory_retention_hours, conf.magnetic_writes) == (12, True)
    assert conf.magnetic_retention_days == 365


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ([], "JSON object"),
        ({"record_model": "multi"}, "version"),
        ({"version": 2}, "version"),
        ({"version": 1, "record_model": "wide"}, "record_model"),
        ({"version": 1, "colour": "red"}, "unknown keys"),
        ({"version": 1, "sensors": {}}, "sensors"),
        ({"version": 1, "sensors": {"time": {"min": 0}}}, "reserved"),
        ({"version": 1, "sensors": {"ts_x": {"min": 0}}}, "reserved"),
        ({"version": 1, "sensors": {"metrics": {"min": 0}}}, "clashes"),
        ({"version": 1, "sensors": {"t": {"min": 5, "max": 1}}}, "min is greater"),
        ({"version": 1, "sensors": {"t": {"min": True}}}, "finite number"),
        ({"version": 1, "sensors": {"t": {"min": float("nan")}}}, "finite number"),
        ({"version": 1, "sensors": {"t": {"inclusive": "yes"}}}, "inclusive"),
        ({"version": 1, "sensors": {"t": {"low": 1}}}, "min, max, inclusive"),
        ({"version": 1, "devices": {"d": {"DeviceId": "x"}}}, "clashes"),
        ({"version": 1, "devices": {"d": {"temperature": "x"}}}, "clashes"),
        ({"version": 1, "devices": {"d": {"measure_name_x": "x"}}}, "reserved"),
        ({"version": 1, "devices": {"d": {"a" * 61: "x"}}}, "1-60 bytes"),
        ({"version": 1, "devices": {"d": {"tags": ["a"]}}}, "string or number"),
        ({"version": 1, "devices": {"d": {"location": ""}}}, "string or number"),
        ({"version": 1, "devices": {"d": "factory"}}, "must be an object"),
        ({"version": 1, "unknown_devices": "drop"}, "unknown_devices"),
        ({"version": 1, "numeric_strings": "no"}, "numeric_strings"),
        ({"version": 1, "memory_retention_hours": 0}, "memory_retention_hours"),
        ({"version": 1, "memory_retention_hours": 9000}, "memory_retention_hours"),
        ({"version": 1, "magnetic_retention_days": 0}, "magnetic_retention_days"),
        ({"version": 1, "magnetic_retention_days": 73_001}, "an integer 1-73000"),
        ({"version": 1, "magnetic_retention_days": True}, "magnetic_retention_days"),
        ({"version": 1, "defaults": {"location": ""}}, "defaults.location"),
    ],
)
def test_bad_documents_are_refused_with_the_key(doc, message):
    with pytest.raises(SettingsError, match=message):
        settings.from_dict(doc)


def test_unreadable_json_is_a_settings_error(monkeypatch, tmp_path):
    path = tmp_path / "settings.json"
    path.write_text("{not json")
    monkeypatch.setenv("IOTPIPE_SETTINGS", str(path))
    with pytest.raises(SettingsError, match="cannot read"):
        settings.load()


@pytest.mark.parametrize(
    ("rule", "value", "inside"),
    [
        (SensorRule("t", -50, 150, inclusive=False), -50.0, False),
        (SensorRule("t", -50, 150, inclusive=False), 149.9, True),
        (SensorRule("t", -50, 150, inclusive=True), 150.0, True),
        (SensorRule("t", None, 10, inclusive=True), -1e300, True),
        (SensorRule("t", 0, None, inclusive=True), -0.1, False),
    ],
)
def test_sensor_rule_bounds(rule, value, inside):
    assert (rule.violation(value) is None) is inside


def test_violation_names_the_interval():
    assert SensorRule("h", 0, 100).violation(150.0) == "150.0 not in [0, 100]"
    assert SensorRule("t", -50, 150, False).violation(999.0) == "999.0 not in (-50, 150)"
    assert SensorRule("p", 0.5, None).describe() == "[0.5, inf]"
