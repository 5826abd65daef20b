"""One command at a time per deployment: an ``flock`` on ``<home>/<deployment>.lock``.

Two ``up`` in one folder used to race: each chose its own suffix, both "succeeded", and
``down`` later removed one of them. The lock makes the choice of a suffix, and every
change, belong to one process at a time. The holder writes who it is (pid, command, start)
into the file, so the one that waits can say whom it waited for. ``flock`` is released by
the kernel when the holder exits or crashes, so a stale record never blocks anyone: only a
live holder does. The descriptor is close-on-exec (Python's default), so the embedded AWS
started during ``up`` never inherits the lock.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from iotpipe.errors import IotpipeError
from iotpipe.poll import Backoff, Clock, until

DEFAULT_TIMEOUT_S = 30.0
TIMEOUT_ENV = "IOTPIPE_LOCK_TIMEOUT"
POLL_S = 0.2


class DeploymentBusy(IotpipeError):
    """Another live process held the deployment's lock for longer than we wait."""


@dataclass(frozen=True)
class Holder:
    pid: int
    command: str
    started_at: str

    def describe(self) -> str:
        return f"pid {self.pid} ({self.command}), since {self.started_at}"


def read_holder(path: Path) -> Holder | None:
    """Who holds (or last held) the lock, as it wrote itself into the file."""
    try:
        data: Any = json.loads(path.read_text(encoding="utf-8"))
        return Holder(int(data["pid"]), str(data["command"]), str(data["started_at"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def timeout_from_env() -> float:
    """``IOTPIPE_LOCK_TIMEOUT`` seconds, else 30; a bad value is the default, not a crash."""
    try:
        value = float(os.environ.get(TIMEOUT_ENV, DEFAULT_TIMEOUT_S))
    except ValueError:
        return DEFAULT_TIMEOUT_S
    return value if 0 <= value < 86_400 else DEFAULT_TIMEOUT_S


def this_command() -> str:
    """What a person would recognise: ``iotpipe up``, cut to a sane length."""
    args = [Path(sys.argv[0]).name if sys.argv else "iotpipe", *sys.argv[1:]]
    if args[0] in ("__main__.py", "-m"):
        args[0] = "iotpipe"
    text = " ".join(args)
    return text if len(text) <= 120 else text[:119] + "…"


class DeploymentLock:
    """An exclusive lock on one deployment; ``with`` it, or ``acquire()``/``release()``."""

    def __init__(
        self,
        path: Path,
        label: str,
        *,
        timeout_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        on_wait: Callable[[str], None] | None = None,
        command: str | None = None,
    ) -> None:
        self.path = path
        self.label = label
        self.timeout_s = timeout_from_env() if timeout_s is None else timeout_s
        self.clock = clock
        self.sleep = sleep
        self.on_wait = on_wait
        self.command = command or this_command()
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        if self._fd is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            self._wait_for(fd)
        except BaseException:
            os.close(fd)
            raise
        record = {
            "pid": os.getpid(),
            "command": self.command,
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(record).encode(), 0)
        self._fd = fd

    def _wait_for(self, fd: int) -> None:
        """Try every ``POLL_S`` and once more at the deadline itself (a pause never passes
        it), then name the holder: the probe raises there, so ``until`` needs no timeout."""
        deadline = self.clock() + self.timeout_s
        told = False

        def locked() -> bool | None:
            nonlocal told
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                pass
            holder = read_holder(self.path)
            who = holder.describe() if holder else "another process"
            if self.clock() >= deadline:
                raise DeploymentBusy(
                    f"Deployment {self.label} is busy: {who} holds its lock ({self.path}). "
                    f"Waited {self.timeout_s:g} s; run the command again once that one has "
                    f"finished, or wait longer with {TIMEOUT_ENV}=<seconds>."
                )
            if not told and self.on_wait is not None:
                self.on_wait(f"Waiting for {who} to finish with deployment {self.label}...")
                told = True
            return None

        def pause(seconds: float) -> None:
            self.sleep(max(0.0, min(seconds, deadline - self.clock())))

        until(
            locked,
            timeout=math.inf,
            backoff=Backoff.fixed(POLL_S),
            clock=Clock(sleep=pause, now=self.clock),
        )

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            os.ftruncate(fd, 0)  # the record describes a holder; there is none now
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def __enter__(self) -> DeploymentLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
