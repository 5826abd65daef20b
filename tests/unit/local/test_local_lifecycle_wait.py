"""`lifecycle`'s waits run on `iotpipe.poll` with an injected clock: no real sleeping here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from iotpipe.local import lifecycle
from iotpipe.local.lifecycle import LocalError
from iotpipe.poll import Clock


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.pauses: list[float] = []

    def sleep(self, s: float) -> None:
        self.pauses.append(s)
        self.now += s


class FakeProc:
    pid = 4242

    def __init__(self, exits_after: int | None = None) -> None:
        self.polls = 0
        self.exits_after = exits_after

    def poll(self) -> int | None:
        self.polls += 1
        if self.exits_after is not None and self.polls > self.exits_after:
            return 3
        return None


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeTime:
    t = FakeTime()
    monkeypatch.setattr(lifecycle, "CLOCK", Clock(sleep=t.sleep, now=lambda: t.now))
    return t


def test_a_start_that_never_answers_times_out_with_the_log(
    fake: FakeTime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    terminated: list[int] = []
    monkeypatch.setattr(lifecycle, "_terminate", terminated.append)
    log = tmp_path / "local.log"
    log.write_text("still importing moto\n")
    with pytest.raises(LocalError, match=r"did not answer within 30 s(.|\n)*still importing moto"):
        lifecycle._wait_ready(tmp_path, FakeProc(), log)  # type: ignore[arg-type]
    assert terminated == [FakeProc.pid]
    assert fake.now <= lifecycle.READY_TIMEOUT_S
    assert fake.pauses[:3] == pytest.approx([0.02, 0.03, 0.045])  # quick at first
    assert max(fake.pauses) == pytest.approx(0.2)


def test_an_emulator_that_exits_during_start_says_its_status(
    fake: FakeTime, tmp_path: Path
) -> None:
    with pytest.raises(LocalError, match="exited during start \\(status 3\\)"):
        lifecycle._wait_ready(tmp_path, FakeProc(exits_after=2), tmp_path / "x.log")  # type: ignore[arg-type]
    assert len(fake.pauses) == 2


def test_ready_returns_the_running_emulator(
    fake: FakeTime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state: dict[str, Any] = {"pid": FakeProc.pid, "endpoint": "http://127.0.0.1:1", "port": 1}
    state["started_at"] = 5.0
    answers = iter([False, True])
    monkeypatch.setattr(lifecycle, "read_state", lambda home: state)
    monkeypatch.setattr(lifecycle, "_answers", lambda endpoint: next(answers))
    info = lifecycle._wait_ready(tmp_path, FakeProc(), tmp_path / "x.log")  # type: ignore[arg-type]
    assert (info.endpoint, info.pid, info.port) == ("http://127.0.0.1:1", FakeProc.pid, 1)
    assert fake.pauses == [0.02]


def test_wait_gone_gives_up_after_its_timeout(
    fake: FakeTime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lifecycle, "_alive", lambda pid: True)
    assert lifecycle._wait_gone(1, 1.0) is False
    assert 0.95 <= fake.now <= 1.0
    monkeypatch.setattr(lifecycle, "_alive", lambda pid: False)
    assert lifecycle._wait_gone(1, 1.0) is True
