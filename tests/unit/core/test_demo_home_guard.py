"""A kept demo is reached with IOTPIPE_HOME=.iotpipe/demo, which reads the folder's config.
A walkthrough found that with an AWS config there, `down --yes` found the user's own
deployment by name and deleted it. A demo's home now refuses configs that target AWS."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from iotpipe.config import Config
from iotpipe.demo import DEMO_MARK, demo_guard, keep_hint, mark_demo_home
from iotpipe.errors import UsageError


def test_a_demo_home_refuses_a_config_that_targets_aws(tmp_path: Path) -> None:
    demo_cfg = tmp_path / "demo.yaml"
    demo_cfg.write_text("name: iot-telemetry\n")
    mark_demo_home(tmp_path, Config(source=str(demo_cfg)))
    assert json.loads((tmp_path / DEMO_MARK).read_text())["config"] == str(demo_cfg.resolve())
    with pytest.raises(UsageError, match=r"demo's home.*-c .*demo\.yaml"):
        demo_guard(tmp_path, Config(target="aws", source="iotpipe.yaml"))
    demo_guard(tmp_path, Config(target="local"))  # the demo's own kind of config: fine


def test_an_ordinary_home_is_not_guarded(tmp_path: Path) -> None:
    assert not (tmp_path / DEMO_MARK).exists()
    assert demo_guard(tmp_path, Config(target="aws")) is None  # no UsageError raised


def test_keep_hint_names_the_config_the_demo_ran_with(tmp_path: Path) -> None:
    demo_cfg = tmp_path / "mine.yaml"
    demo_cfg.write_text("name: x1\n")
    assert f"-c {demo_cfg.resolve()}" in keep_hint(Config(source=str(demo_cfg)))
    assert " -c " not in keep_hint(Config())  # built-in defaults: nothing to name


def test_down_in_a_demo_home_with_an_aws_config_touches_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from iotpipe.cli import main

    home = tmp_path / ".iotpipe" / "demo"
    mark_demo_home(home, Config())
    aws_cfg = tmp_path / "iotpipe.yaml"
    aws_cfg.write_text("name: iot-telemetry\ntarget: aws\n")
    monkeypatch.setenv("IOTPIPE_HOME", str(home))
    monkeypatch.chdir(tmp_path)
    called = []
    monkeypatch.setattr("iotpipe.cli.app.make_gateway", lambda *a, **k: called.append(a))
    result = CliRunner().invoke(main, ["down", "--yes"])
    assert result.exit_code == 2, result.output
    assert "demo's home" in result.output and "Traceback" not in result.output
    assert called == []  # no gateway: nothing reached AWS
