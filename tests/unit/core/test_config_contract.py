"""The config refuses exactly the names the deployed function's settings would refuse.

A name the config let through and the function's settings refused was a deployment that
failed every invocation; the two now share lambda_handler.contract, and this checks that
they agree on each kind of name, both ways.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from iotpipe import config
from iotpipe.config import ConfigError
from iotpipe.package import settings_from_config
from lambda_handler import contract
from lambda_handler import settings as function_settings

SENSOR_NAMES = ["temperature", "measure_name", "measure_name_x", "ts_x", "DeviceId", "metrics"]
ATTRIBUTE_NAMES = [
    "floor",
    "DeviceId",
    "Location",
    "DeviceType",
    "ts_zone",
    "measure_name",
    "measure_namex",
    "humidity",
    "a" * 60,
    "a" * 61,
]


def config_accepts(tmp_path: Path, text: str) -> config.Config | None:
    path = tmp_path / "iotpipe.yaml"
    path.write_text(text)
    try:
        return config.load(path, {})
    except ConfigError:
        return None


def function_accepts(doc: dict) -> bool:
    try:
        function_settings.from_dict(doc)
    except function_settings.SettingsError:
        return False
    return True


@pytest.mark.parametrize("name", SENSOR_NAMES)
def test_sensor_names_the_function_refuses_are_refused_by_the_config(
    tmp_path: Path, name: str
) -> None:
    cfg = config_accepts(tmp_path, f"sensors:\n  {name}: {{min: 0, max: 1}}\n")
    doc = settings_from_config(cfg or config.Config())
    doc["sensors"] = {name: {"min": 0, "max": 1, "inclusive": True}}
    assert (cfg is not None) == function_accepts(doc), name


@pytest.mark.parametrize("name", ATTRIBUTE_NAMES)
def test_attribute_names_the_function_refuses_are_refused_by_the_config(
    tmp_path: Path, name: str
) -> None:
    text = f"sensors:\n  humidity: {{min: 0, max: 100}}\ndevices:\n  s1: {{{name}: x}}\n"
    cfg = config_accepts(tmp_path, text)
    doc = settings_from_config(cfg or config.Config())
    doc["sensors"] = {"humidity": {"min": 0, "max": 100, "inclusive": True}}
    doc["devices"] = {"s1": {name: "x"}}
    assert (cfg is not None) == function_accepts(doc), name


def test_the_shared_names_are_the_functions_own() -> None:
    # One declaration: the settings module uses the contract's objects, not copies.
    assert function_settings.BASE_DIMENSIONS is contract.BASE_DIMENSIONS
    assert function_settings.MULTI_MEASURE_NAME is contract.MULTI_MEASURE_NAME
    assert config.TimestreamConfig().record_model in contract.RECORD_MODELS
