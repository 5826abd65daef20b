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
