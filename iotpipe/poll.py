"""Waiting and retrying, in one place: every loop that polls a state or retries a call.

AWS changes are eventually consistent (a role reaches Lambda seconds after IAM says it
exists; a stream is CREATING before ACTIVE), so provisioning, traffic and the emulator's
start-up all wait. They used to each write their loop, with different deadlines and jitter
(one said "full jitter" and computed equal jitter). Here a :class:`Backoff` says how long to
pause before attempt *n*, and :func:`until` / :func:`retrying` run the loop with an injected
``sleep`` and ``clock``, so tests run instantly and prove the schedule.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, TypeVar

T = TypeVar("T")
Jitter = Literal["none", "full", "equal"]


@dataclass(frozen=True)
class Backoff:
    """Pause before retry ``attempt`` (0-based): ``min(cap, first * factor**attempt)``,
    jittered. ``full`` draws uniform(0, d) (AWS's recommendation for many competing
    clients); ``equal`` draws uniform(d/2, d) (never retries at once); ``none`` is d."""

    first: float = 0.1
    factor: float = 2.0
    cap: float = 5.0
    jitter: Jitter = "none"
    rng: random.Random = field(default_factory=random.Random, compare=False)

    def delay(self, attempt: int) -> float:
        d = min(self.cap, self.first * self.factor**attempt)
        if self.jitter == "full":
            return self.rng.uniform(0, d)
        if self.jitter == "equal":
            return self.rng.uniform(d / 2, d)
        return d

    @classmethod
    def fixed(cls, interval: float) -> Backoff:
        return cls(first=interval, factor=1.0, cap=interval)


class TimedOut(Exception):
    """:func:`until` gave up; ``last`` is the probe's last value (for the caller's message)."""

    def __init__(self, waited: float, last: object = None) -> None:
        super().__init__(f"gave up after {waited:.1f} s")
        self.waited = waited
        self.last = last


@dataclass(frozen=True)
class Clock:
    """The two things a loop needs from time; tests pass fakes."""

    sleep: Callable[[float], None] = time.sleep
    now: Callable[[], float] = time.monotonic


def until(
    probe: Callable[[], T | None],
    *,
    timeout: float,
    backoff: Backoff | None = None,
    clock: Clock | None = None,
    done: Callable[[T | None], bool] | None = None,
) -> T:
    """Call ``probe`` until ``done(value)`` (default: the value is not None) and return it.

    A probe that raises stops the wait (it knows a state that can never become ready).
    Raises :class:`TimedOut` when the next pause would pass ``timeout``.
    """
    backoff = backoff or Backoff()
    clock = clock or Clock()
    finished = done or (lambda v: v is not None)
    start = clock.now()
    attempt = 0
    while True:
        value = probe()
        if finished(value):
            return value  # type: ignore[return-value]
        pause = backoff.delay(attempt)
        if clock.now() + pause - start > timeout:
            raise TimedOut(clock.now() - start, value)
        clock.sleep(pause)
        attempt += 1


def retrying(
    call: Callable[[], T],
    *,
    retry_if: Callable[[Exception], bool],
    timeout: float | None = None,
    attempts: int | None = None,
    backoff: Backoff | None = None,
    clock: Clock | None = None,
    on_retry: Callable[[Exception, float], None] | None = None,
) -> T:
    """Return ``call()``, retrying while it raises an exception ``retry_if`` accepts.

    Stops (re-raising the last exception) after ``attempts`` calls or when the next pause
    would pass ``timeout`` seconds, whichever comes first; at least one bound is required.
    """
    if timeout is None and attempts is None:
        raise ValueError("retrying needs a timeout or a number of attempts")
    backoff = backoff or Backoff()
    clock = clock or Clock()
    start = clock.now()
    attempt = 0
    while True:
        try:
            return call()
        except Exception as exc:
            if not retry_if(exc):
                raise
            pause = backoff.delay(attempt)
            attempt += 1
            out_of_tries = attempts is not None and attempt >= attempts
            out_of_time = timeout is not None and clock.now() + pause - start > timeout
            if out_of_tries or out_of_time:
                raise
            if on_retry:
                on_retry(exc, pause)
            clock.sleep(pause)
