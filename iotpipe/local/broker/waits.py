"""What the broker waits for before a PUBACK, run off its event loop a group at a time.

Why: the topic rules return a blocking wait (an fsync of what they stored); one thread
hop per publish (``asyncio.to_thread``) queued the waits on the default pool's few
threads and cut MQTT throughput to a third. A group shares one hop, and its first wait's
fsync usually covers the rest (the stores group-commit).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable


class DurableWaits:
    """The publish hook's blocking waits; a failing wait fails its own publish only."""

    def __init__(self) -> None:
        self._waiting: list[tuple[Callable[[], None], asyncio.Future[None]]] = []
        self._draining = False
        self._drainer: asyncio.Task[None] | None = None

    async def wait(self, durable: Callable[[], None]) -> None:
        await self.submit(durable)

    def submit(self, durable: Callable[[], None]) -> asyncio.Future[None]:
        """Queue ``durable`` for the next group; the future resolves when it has run."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        self._waiting.append((durable, done))
        if not self._draining:
            self._draining = True
            self._drainer = loop.create_task(self._drain())
        return done

    async def _drain(self) -> None:
        try:
            while self._waiting:
                group, self._waiting = self._waiting, []
                errors = await asyncio.to_thread(_run_all, [w for w, _ in group])
                for (_, done), error in zip(group, errors, strict=True):
                    if error is None:
                        done.set_result(None)
                    else:
                        done.set_exception(error)
        finally:
            self._draining = False


def _run_all(waits: list[Callable[[], None]]) -> list[BaseException | None]:
    errors: list[BaseException | None] = []
    for wait in waits:
        try:
            wait()
            errors.append(None)
        except Exception as exc:  # that publish fails; the others of the group do not
            errors.append(exc)
    return errors
