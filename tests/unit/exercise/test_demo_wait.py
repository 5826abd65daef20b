"""demo's wait for rows: the shared poll schedule on an injected clock, and its message."""

from __future__ import annotations

from typing import Any

import pytest
from fake_clock import FakeClock

from iotpipe import demo
from iotpipe.errors import IotpipeError


def counts(monkeypatch: pytest.MonkeyPatch, values: list[int]) -> None:
    it = iter(values)
    last = [0]

    def count_rows(dep: Any, store: str | None = None) -> int:
        last[0] = next(it, last[0])
        return last[0]

    monkeypatch.setattr(demo, "count_rows", count_rows)


def test_waits_with_a_growing_pause_until_the_rows_are_there(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    counts(monkeypatch, [0, 3, 7, 9, 12])
    fc = FakeClock()
    assert demo.wait_for_rows(None, 10, 60, fc.sleep, fc.now) == 12  # type: ignore[arg-type]
    assert fc.pauses == [0.25, 0.375, 0.5625, 0.84375]


def test_gives_up_at_the_timeout_saying_how_many_rows_arrived(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    counts(monkeypatch, [0, 4])
    fc = FakeClock()
    with pytest.raises(IotpipeError, match="Timestream has 4 of 10 expected rows after 20 s"):
        demo.wait_for_rows(None, 10, 20, fc.sleep, fc.now)  # type: ignore[arg-type]
    assert fc.t <= 20 and max(fc.pauses) == 2.0


def test_the_lake_is_named_when_it_is_the_store_that_lags(monkeypatch: pytest.MonkeyPatch) -> None:
    counts(monkeypatch, [0, 2])
    fc = FakeClock()
    with pytest.raises(IotpipeError, match="the lake has 2 of 5 expected rows"):
        demo.wait_for_rows(None, 5, 10, fc.sleep, fc.now, "lake")  # type: ignore[arg-type]
