"""The demo's bookkeeping on a plain moto server: a stage that fails still ends with 'down'
(nothing left behind) and exit code 1. Plain moto runs no function, so Timestream never
fills and the wait times out - on an injected clock, so the test does not wait."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from iotpipe.aws import Gateway
from iotpipe.config import Config
from iotpipe.demo import DemoOptions, run_demo
from iotpipe.engine import Engine
from iotpipe.target import resolve

pytestmark = pytest.mark.integration


class QuietView:
    def __init__(self) -> None:
        self.shown: list[str] = []

    @contextmanager
    def steps(self, title: str) -> Iterator[Any]:
        self.shown.append(title)
        yield lambda *a: None

    @contextmanager
    def progress(self, total: int) -> Iterator[Any]:
        yield lambda outcome: None

    def sent(self, summary: Any) -> None:
        self.shown.append("sent")

    def result(self, title: str, result: Any) -> None:
        self.shown.append(title)

    def checks(self, checks: Any) -> None:
        self.shown.append("checks")

    def note(self, text: str) -> None:
        pass


def test_a_failed_stage_still_tears_down(
    moto_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IOTPIPE_HOME", str(tmp_path))
    # No event source mapping: moto would try to run the function in Docker per record.
    config = Config(name="demofail", target="aws")
    gateway = Gateway(region="us-east-1", endpoint_url=moto_endpoint, local=True)
    dep = resolve(config, gateway, create_suffix=True)
    monkeypatch.setattr("iotpipe.resources.mapping.EventSourceMapping.enabled", lambda self: False)
    now = [0.0]

    def sleep(s: float) -> None:
        now[0] += s

    view = QuietView()
    report = run_demo(
        dep, DemoOptions(messages=20, timeout_s=10), view, sleep=sleep, clock=lambda: now[0]
    )
    stages = [(s.name, s.ok) for s in report.stages]
    assert stages == [
        ("up", True),
        ("send-test", True),
        ("wait for the pipeline", False),
        ("down", True),
    ]
    assert report.exit_code == 1 and "0 of" in (report.error or "")
    assert view.shown[0].startswith("up ") and view.shown[-1].startswith("down ")
    assert {s.action for s in Engine(dep).plan().steps} <= {"create", "absent"}  # all gone


def test_the_demo_never_touches_the_deployment_next_to_it(
    moto_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 8, item 1: the demo used to reuse the folder's deployment, report its rows and
    then run `down` on it. Even with a config that fixes the suffix, it has its own."""
    from iotpipe.demo import demo_deployment, demo_home
    from iotpipe.target import TargetOptions

    monkeypatch.setenv("IOTPIPE_HOME", str(tmp_path))
    monkeypatch.setattr("iotpipe.resources.mapping.EventSourceMapping.enabled", lambda self: False)
    config = Config(name="shared", target="local", suffix="user01")
    user_gw = Gateway(region="us-east-1", endpoint_url=moto_endpoint, local=True)
    user = resolve(config, user_gw, create_suffix=True)
    Engine(user).apply()
    tw = user_gw.client("timestream-write")
    tw.write_records(
        DatabaseName=user.names.database,
        TableName=user.names.table,
        Records=[
            {
                "Dimensions": [{"Name": "DeviceId", "Value": "users-own-device"}],
                "MeasureName": "temperature",
                "MeasureValue": "21.5",
                "MeasureValueType": "DOUBLE",
                "Time": str(int(__import__("time").time() * 1000)),
            }
        ],
    )

    def inventory() -> dict[str, Any]:
        return {
            "plan": [(s.key, s.action) for s in Engine(user).plan().steps],
            "state": user.state.path.read_text(),
            "streams": user_gw.client("kinesis").list_streams()["StreamNames"],
        }

    before = inventory()
    now = [0.0]

    def sleep(s: float) -> None:
        now[0] += s

    def demo(dep: Any, options: DemoOptions) -> Any:
        return run_demo(dep, options, QuietView(), sleep=sleep, clock=lambda: now[0])

    opts = TargetOptions(endpoint_url=moto_endpoint)
    with demo_deployment(config, opts, keep=False) as dep:
        assert dep.names.suffix != "user01" and dep.names.database != user.names.database
        assert dep.state.path.parent == demo_home()
        report = demo(dep, DemoOptions(messages=10, timeout_s=5))
    assert report.deployment == dep.names.deployment != user.names.deployment
    assert [s.name for s in report.stages][-1] == "down"
    after = inventory()
    assert after["plan"] == before["plan"], (after["plan"], before["plan"])
    assert after == before  # every resource and the state of the user's deployment
    assert all(a == "unchanged" for _, a in before["plan"] if a != "absent")

    # `demo --keep` keeps its own deployment only, and says how to reach it.
    from iotpipe.demo import keep_hint

    with demo_deployment(config, opts, keep=True) as kept:
        report = demo(kept, DemoOptions(messages=5, timeout_s=1, keep=True))
    assert "down" not in [s.name for s in report.stages]
    assert kept.names.suffix not in (dep.names.suffix, "user01")
    assert kept.names.stream in user_gw.client("kinesis").list_streams()["StreamNames"]
    assert inventory()["plan"] == before["plan"] and inventory()["state"] == before["state"]
    assert f"IOTPIPE_HOME={demo_home()}" in keep_hint(config)

    # The next demo must not take over the kept one (it used to reuse the suffix in the
    # demo's state, then ran `down` on it): it gets a deployment of its own again.
    with demo_deployment(config, opts, keep=False) as again:
        report = demo(again, DemoOptions(messages=5, timeout_s=1))
    assert again.names.suffix != kept.names.suffix
    assert [s.name for s in report.stages][-1] == "down"
    assert kept.names.stream in user_gw.client("kinesis").list_streams()["StreamNames"]
    assert again.names.stream not in user_gw.client("kinesis").list_streams()["StreamNames"]
