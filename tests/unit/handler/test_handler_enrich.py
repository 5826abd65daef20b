"""Enrichment: message, then registry, then defaults; never empty; within limits."""

from __future__ import annotations

from handler_helpers import multi_settings

from lambda_handler import enrich, settings
from lambda_handler.reasons import Problem


def test_registry_fills_location_type_and_extra_attributes():
    dims = enrich.dimensions({}, "sensor001", multi_settings())
    assert dims == (
        ("DeviceId", "sensor001"),
        ("Location", "factory_floor_1"),
        ("DeviceType", "temperature_sensor"),
        ("last_maintenance", "2026-09-01"),
    )


def test_the_message_overrides_the_registry():
    body = {"location": "warehouse", "deviceType": "humidity_sensor"}
    dims = dict(enrich.dimensions(body, "sensor001", multi_settings()))
    assert dims["Location"] == "warehouse"
    assert dims["DeviceType"] == "humidity_sensor"
    assert dims["last_maintenance"] == "2026-09-01"


def test_unknown_device_gets_the_defaults():
    dims = enrich.dimensions({}, "sensor999", multi_settings())
    assert dims == (("DeviceId", "sensor999"), ("Location", "unknown"), ("DeviceType", "unknown"))


def test_recipe_defaults_without_settings():
    dims = enrich.dimensions({"location": "factory_floor_2"}, "sensor002", settings.Settings())
    assert dims == (
        ("DeviceId", "sensor002"),
        ("Location", "factory_floor_2"),
        ("DeviceType", "temperature_sensor"),
    )


def test_unknown_device_can_be_quarantined():
    problem = enrich.dimensions({}, "sensor999", multi_settings(unknown_devices="quarantine"))
    assert problem.reason == "unknown_device"
    assert "sensor999" in problem.detail
    assert enrich.dimensions({}, "sensor001", multi_settings(unknown_devices="quarantine"))


def test_probe_devices_pass_a_registry_that_quarantines_unknown_devices():
    strict = multi_settings(unknown_devices="quarantine")
    dims = enrich.dimensions({}, f"{enrich.PROBE_DEVICE_PREFIX}ab12", strict)
    assert dims[0] == ("DeviceId", "iotpipe-probe-ab12")
    assert isinstance(enrich.dimensions({}, "iotpipe-prob-ab12", strict), Problem)


def test_values_are_never_empty():
    body = {"location": "   ", "deviceType": ""}
    dims = dict(enrich.dimensions(body, "sensor002", multi_settings()))
    assert dims["Location"] == "factory_floor_2"
    assert dims["DeviceType"] == "env_sensor"


def test_non_string_values_from_the_message_are_ignored():
    dims = dict(enrich.dimensions({"location": 3, "deviceType": None}, "x", multi_settings()))
    assert (dims["Location"], dims["DeviceType"]) == ("unknown", "unknown")


def test_control_characters_are_removed_and_whitespace_trimmed():
    assert enrich.clean(" hall\x00 \u200b7\n") == "hall 7"
    assert enrich.clean("\x01\x02") is None


def test_values_are_trimmed_to_timestreams_limit_on_a_character_boundary():
    long = "\u00e9" * 3000  # 6,000 bytes
    value = dict(enrich.dimensions({"location": long}, "x", multi_settings()))["Location"]
    assert len(value.encode()) <= enrich.MAX_DIMENSION_VALUE_BYTES
    assert value == "\u00e9" * 1024
    assert enrich.trim("short") == "short"
    assert enrich.trim("a" * 2048) == "a" * 2048
