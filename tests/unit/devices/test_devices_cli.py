"""The ``devices`` group through click, on moto in-process (the deployment is injected)."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from iotpipe.cli.app import App
from iotpipe.cli.devices import devices
from iotpipe.resources.base import Context
from iotpipe.resources.devicepolicy import DevicePolicy
from iotpipe.state import State
from iotpipe.target import Deployment


@pytest.fixture
def run(ctx: Context, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    DevicePolicy(ctx).create()
    dep = Deployment(ctx.config, ctx.gateway, ctx.names, State(tmp_path / "home" / "state.json"))
    monkeypatch.setattr(App, "deployment", lambda self, **kw: dep)
    monkeypatch.setenv("IOTPIPE_HOME", str(tmp_path / "home"))

    def invoke(*args: str) -> Any:
        return CliRunner().invoke(devices, list(args), obj=App(), catch_exceptions=False)

    return invoke


def test_add_list_remove(run: Any, tmp_path: Path) -> None:
    added = run("add", "s1", "--location", "hall", "--attr", "rack=r2", "-o", "json")
    assert added.exit_code == 0, added.output
    data = json.loads(added.stdout)
    key = Path(data["private_key"])
    assert key.parent == tmp_path / "home" / "devices" / "iot-telemetry-abc123"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert data["root_ca"] is None and data["client_id"] == "iot-telemetry-abc123-s1"

    again = run("add", "s1")
    assert again.exit_code == 0 and "already exists" in again.stderr

    listed = json.loads(run("list", "-o", "json").stdout)
    assert [d["attributes"] for d in listed] == [{"location": "hall", "rack": "r2"}]

    refused = run("remove", "s1")  # no terminal, no --yes: nothing is touched
    assert refused.exit_code == 2 and key.exists()
    assert len(json.loads(run("list", "-o", "json").stdout)) == 1

    removed = run("remove", "s1", "--yes", "-o", "json")
    assert json.loads(removed.stdout)["removed"] is True
    assert not key.exists() and json.loads(run("list", "-o", "json").stdout) == []


def test_bad_attribute_is_exit_2(run: Any) -> None:
    result = run("add", "s1", "--attr", "note=has space")
    assert result.exit_code == 2 and "no spaces" in result.stderr
    assert json.loads(run("list", "-o", "json").stdout) == []


def test_attributes_a_config_entry_overrides_are_named_not_silently_dropped(run: Any) -> None:
    """sensor001 is one of the built-in devices (location factory_floor_1): its entry wins
    in the function's registry, so `devices add --location` says it does not apply."""
    added = run("add", "sensor001", "--location", "hall_a", "--type", "temperature_sensor")
    assert added.exit_code == 0, added.output
    assert "wins over location=hall_a: the function keeps location=factory_floor_1" in (
        " ".join(added.stderr.split())
    )
    assert "device_type" not in added.stderr  # the same value: nothing to say
    assert "Run 'iotpipe up'" not in added.stderr  # the registry would not change
    plain = run("add", "s9", "--location", "hall_a")  # not in the config: nothing to say
    assert plain.exit_code == 0 and "wins over" not in plain.stderr
    assert "Run 'iotpipe up'" in plain.stderr  # but the registry gains it at the next up


def test_config_overrides_is_the_differing_fields_only() -> None:
    from iotpipe.devices.registry import config_overrides

    configured = {"d1": {"location": "a", "device_type": "t"}}
    given = {"location": "b", "device_type": "t", "rack": "r1"}
    assert config_overrides(configured, "d1", given) == {"location": "a"}
    assert config_overrides(configured, "d2", given) == {}


def test_the_device_table_never_cuts_the_thing_name(run: Any) -> None:
    """The thing name is the MQTT client id a user copies: in 80 columns it wraps."""
    from rich.console import Console

    from iotpipe.cli.devices import _table
    from iotpipe.devices import DeviceInfo

    name = "iot-telemetry-abc123-sensor-with-a-long-name-0001"
    attrs = {"device_type": "temperature_sensor", "location": "hall"}
    info = DeviceInfo("sensor-with-a-long-name-0001", name, attrs, [("c0ffee" * 10, "ACTIVE")])
    console = Console(width=80, record=True)
    console.print(_table([info]))
    text = console.export_text()
    assert "…" not in text
    cells = [line.split("│") for line in text.splitlines() if line.startswith("│")]
    assert "".join(c[2].strip() for c in cells) == name  # the thing column, read down
