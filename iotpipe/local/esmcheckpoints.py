"""Where each event source mapping's poller resumes per shard, kept in a fsynced file.

Part "checkpoints" (see `durable`): ``data/checkpoints/checkpoints.json``, rewritten with
`durable.write_durably` (temporary file, fsync, rename, fsync of the directory).

A poller's checkpoint after a batch (`advance`) is written in the background while its
next batch runs: the write is two fsyncs (~3-6 ms here), and done in line it was a fifth
of every batch's cycle with the pipeline busy. `advance` first waits until the shard's
previous checkpoint is durable, so after a ``kill -9`` a shard repeats at most the batch
in flight and the one finished just before it (Timestream rewrites of identical records
are idempotent: rows stay exactly once; a quarantined message may be sent again, with
its sequence number). A clean stop writes every checkpoint (`close`). `set` and `save`
return once durable (a mapping's creation, tests).
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path

from iotpipe.local.durable import PERSISTENCE, Part, write_durably

log = logging.getLogger("iotpipe.local")
Key = tuple[str, str]  # (mapping uuid, shard id)
WAIT_S = 5.0  # at most, for the previous checkpoint (a failing disk must not stop pollers)


class Checkpoints:
    """Every mapping's per-shard checkpoint, kept in a dict and (persistent) in a file."""

    FILE = "checkpoints.json"

    def __init__(self) -> None:
        self.starts: dict[Key, int] = {}
        self._path: Path | None = None
        self._file_lock = threading.Lock()  # one write at a time
        self._cv = threading.Condition()  # guards the counters below
        self._changes = 0  # updates made (counted after `starts` holds them)
        self._written = 0  # updates covered by the last completed write
        self._tickets: dict[Key, int] = {}  # each shard's last background update
        self._writer: threading.Thread | None = None

    def open(self, where: Path) -> None:
        self._path = where / self.FILE
        self.starts.clear()
        if self._path.exists():
            saved = json.loads(self._path.read_text(encoding="utf-8"))
            for key, seq in saved.items():
                uuid, shard = key.split("|", 1)
                self.starts[(uuid, shard)] = int(seq)
        if self._writer is None:
            self._writer = threading.Thread(
                target=self._write_loop, name="checkpoints", daemon=True
            )
            self._writer.start()

    def close(self) -> None:
        self.save()
        with self._cv:
            self._path = None
            self._cv.notify_all()
        if self._writer is not None:
            self._writer.join(timeout=10)
            self._writer = None

    def set(self, uuid: str, shard_id: str, seq: int) -> None:
        """Record a checkpoint; returns once it is durable."""
        self.starts[(uuid, shard_id)] = seq
        self.save()

    def advance(self, uuid: str, shard_id: str, seq: int) -> None:
        """Record a poller's checkpoint, written in the background (see the module doc)."""
        key = (uuid, shard_id)
        with self._cv:
            previous = self._tickets.get(key, 0)
            self._cv.wait_for(lambda: self._written >= previous or self._path is None, WAIT_S)
            self.starts[key] = seq
            if self._path is None:  # ephemeral: memory is all there is
                return
            self._changes += 1
            self._tickets[key] = self._changes
            self._cv.notify_all()

    def save(self) -> None:
        """Write every checkpoint; returns once durable (a write in progress may cover it)."""
        with self._cv:
            if self._path is None:
                return
            self._changes += 1
            wanted = self._changes
        self._write(wanted)

    def _write(self, wanted: int) -> None:
        with self._file_lock:
            with self._cv:
                path, covering = self._path, self._changes
                if path is None or self._written >= wanted:
                    return  # a write that started after the change covered it
            data = {f"{u}|{s}": seq for (u, s), seq in list(self.starts.items())}
            write_durably(path, json.dumps(data).encode())
            with self._cv:
                self._written = max(self._written, covering)
                self._cv.notify_all()

    def _write_loop(self) -> None:
        while True:
            with self._cv:
                self._cv.wait_for(lambda: self._written < self._changes or self._path is None)
                if self._path is None:
                    return
                wanted = self._changes
            try:
                self._write(wanted)
            except OSError as e:  # pollers wait at most WAIT_S; retried
                log.warning("mapping checkpoints not saved yet (will retry): %s", e)
                with self._cv:
                    self._cv.wait(1.0)


CHECKPOINTS = Checkpoints()
PERSISTENCE.register(Part("checkpoints", open=CHECKPOINTS.open, close=CHECKPOINTS.close))
