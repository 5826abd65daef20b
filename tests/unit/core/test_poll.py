"""The one waiting helper: schedules, deadlines and retry bounds, on a fake clock."""

from __future__ import annotations

import random

import pytest
from fake_clock import FakeClock

from iotpipe.poll import Backoff, TimedOut, retrying, until


def test_backoff_grows_to_the_cap_without_jitter() -> None:
    b = Backoff(first=1, factor=2, cap=5)
    assert [b.delay(n) for n in range(5)] == [1, 2, 4, 5, 5]


def test_full_jitter_draws_from_zero_and_equal_jitter_from_half() -> None:
    full = Backoff(first=4, factor=1, cap=4, jitter="full", rng=random.Random(1))
    equal = Backoff(first=4, factor=1, cap=4, jitter="equal", rng=random.Random(1))
    fulls = [full.delay(0) for _ in range(200)]
    equals = [equal.delay(0) for _ in range(200)]
    assert min(fulls) < 1 and max(fulls) <= 4
    assert min(equals) >= 2 and max(equals) <= 4


def test_until_returns_the_first_ready_value_and_pauses_between() -> None:
    fc = FakeClock()
    values = iter([None, None, "ready"])
    got = until(lambda: next(values), timeout=10, backoff=Backoff.fixed(0.5), clock=fc.clock)
    assert got == "ready"
    assert fc.pauses == [0.5, 0.5]


def test_until_times_out_with_the_last_value() -> None:
    fc = FakeClock()
    with pytest.raises(TimedOut) as err:
        until(
            lambda: "CREATING",
            timeout=3,
            backoff=Backoff.fixed(1),
            clock=fc.clock,
            done=lambda v: v == "ACTIVE",
        )
    assert err.value.last == "CREATING"
    assert fc.t <= 3


def test_retrying_retries_only_what_it_is_told_and_stops_at_attempts() -> None:
    fc = FakeClock()
    calls = []

    def flaky() -> int:
        calls.append(1)
        raise ConnectionError("busy")

    with pytest.raises(ConnectionError):
        retrying(
            flaky,
            retry_if=lambda e: isinstance(e, ConnectionError),
            attempts=3,
            clock=fc.clock,
        )
    assert len(calls) == 3 and len(fc.pauses) == 2

    with pytest.raises(KeyError):
        retrying(lambda: {}["x"], retry_if=lambda e: False, attempts=5, clock=fc.clock)


def test_retrying_returns_after_a_retryable_failure_and_reports_it() -> None:
    fc = FakeClock()
    seen: list[float] = []
    outcomes = iter([ValueError("not yet"), 7])

    def call() -> int:
        v = next(outcomes)
        if isinstance(v, Exception):
            raise v
        return v

    got = retrying(
        call,
        retry_if=lambda e: isinstance(e, ValueError),
        timeout=10,
        clock=fc.clock,
        on_retry=lambda e, p: seen.append(p),
    )
    assert got == 7 and seen == [0.1]


def test_retrying_needs_a_bound() -> None:
    with pytest.raises(ValueError):
        retrying(lambda: 1, retry_if=lambda e: True)
