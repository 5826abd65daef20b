"""A clock for `iotpipe.poll` loops that moves only when someone sleeps: no test waits."""

from __future__ import annotations

from iotpipe.poll import Clock


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0
        self.pauses: list[float] = []

    def sleep(self, s: float) -> None:
        self.pauses.append(s)
        self.t += s

    def now(self) -> float:
        return self.t

    @property
    def clock(self) -> Clock:
        return Clock(sleep=self.sleep, now=self.now)
