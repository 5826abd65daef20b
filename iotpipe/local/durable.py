"""Persistence of the embedded AWS, registered per service: what survives a stop or a crash.

Everything the emulator acknowledged lives under ``<home>/data/`` unless it runs
``--ephemeral``. Each service that keeps state registers one :class:`Part` here (the
control plane's snapshot of moto's backends, Kinesis's segment files, Timestream's DuckDB
file, SQS's journal, the pollers' checkpoints, ...), so a new emulated service is one
registration, not code sprinkled through the patches; ``local status`` reports each part's
disk use and ``local reset`` removes them all.

Order matters and is the registration order: at start every part is opened (restored) in
that order, so data planes restore into the control plane's resources; at stop they are
closed in reverse.

The directory carries ``format.json`` (this format's number, the iotpipe and moto versions
that wrote it). A directory written by another format or moto version, or one that cannot
be read, is never wiped silently: the emulator stops at start with :class:`StateError`,
which names the directory and the two ways out (``iotpipe local reset``, which deletes it,
or ``iotpipe local start --ephemeral``, which leaves it alone).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from iotpipe import __version__
from iotpipe.local.patching import moto_version

FORMAT = 1
DATA_DIR = "data"
FORMAT_FILE = "format.json"


class StateError(Exception):
    """The state directory cannot be used as it is; the message says what to do."""


@dataclass
class Part:
    """One service's persistence.

    ``open(dir)`` restores from ``dir`` (created empty on first use) and starts writing
    there; ``close()`` makes everything durable and stops; ``usage()`` is bytes on disk;
    ``oldest()`` the epoch seconds of the oldest retained record (None: none, or not a
    log of records); ``flush()`` makes everything acknowledged so far durable now.
    """

    name: str
    open: Callable[[Path], None]
    close: Callable[[], None] = lambda: None
    flush: Callable[[], None] = lambda: None
    usage: Callable[[], int] | None = None
    oldest: Callable[[], float | None] = lambda: None


@dataclass
class Persistence:
    """The registered parts, and whether this run persists at all."""

    parts: list[Part] = field(default_factory=list)
    root: Path | None = None  # None: ephemeral (nothing is written)

    def register(self, part: Part) -> Part:
        if any(p.name == part.name for p in self.parts):
            raise ValueError(f"persistence part {part.name!r} is registered twice")
        self.parts.append(part)
        return part

    @property
    def enabled(self) -> bool:
        return self.root is not None

    def dir(self, name: str) -> Path:
        assert self.root is not None
        return self.root / name

    def open(self, home: Path, ephemeral: bool) -> None:
        """Check the directory's format, then restore every part in registration order."""
        if ephemeral:
            self.root = None
            return
        root = home / DATA_DIR
        check_format(root)
        self.root = root
        for part in self.parts:
            where = self.dir(part.name)
            where.mkdir(parents=True, exist_ok=True)
            try:
                part.open(where)
            except StateError:
                raise
            except Exception as exc:
                why = f"{part.name}: {type(exc).__name__}: {exc}"
                raise StateError(unreadable(root, why)) from exc

    def flush(self) -> None:
        if self.enabled:
            for part in self.parts:
                part.flush()

    def close(self) -> None:
        if self.enabled:
            for part in reversed(self.parts):
                part.close()

    def usage(self) -> dict[str, Any]:
        """Per part: bytes on disk and the oldest retained record (for ``local status``)."""
        if not self.enabled:
            return {"persistent": False}
        out: dict[str, Any] = {"persistent": True, "dir": str(self.root), "parts": {}}
        for part in self.parts:
            used = part.usage() if part.usage else tree_size(self.dir(part.name))
            out["parts"][part.name] = {"bytes": used, "oldest": part.oldest()}
        return out


def tree_size(path: Path) -> int:
    total = 0
    for dirpath, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):  # removed while we walk
                total += os.lstat(os.path.join(dirpath, name)).st_size
    return total


def stamp() -> dict[str, Any]:
    return {"format": FORMAT, "iotpipe": __version__, "moto": moto_version()}


def ways_out(root: Path) -> str:
    return (
        f"Nothing was changed in {root}. 'iotpipe local reset' deletes it and starts empty; "
        "'iotpipe local start --ephemeral' runs without it (in memory, as before) and "
        "leaves it as it is."
    )


def unreadable(root: Path, why: str) -> str:
    return f"The embedded AWS's state in {root} cannot be read ({why}). {ways_out(root)}"


def check_format(root: Path) -> None:
    """Create ``format.json`` in a new directory; refuse one written differently."""
    marker = root / FORMAT_FILE
    if not root.exists() or not any(root.iterdir()):
        root.mkdir(parents=True, exist_ok=True)
        write_json_durably(marker, stamp())
        return
    try:
        found = json.loads(marker.read_text(encoding="utf-8"))
        if not isinstance(found, dict):
            raise ValueError("not an object")
    except (OSError, ValueError) as exc:
        raise StateError(unreadable(root, f"{FORMAT_FILE}: {exc}")) from None
    want = stamp()
    if (found.get("format"), found.get("moto")) != (want["format"], want["moto"]):
        raise StateError(
            f"The embedded AWS's state in {root} was written by iotpipe "
            f"{found.get('iotpipe', '?')} with moto {found.get('moto', '?')} (format "
            f"{found.get('format', '?')}); this is iotpipe {want['iotpipe']} with moto "
            f"{want['moto']} (format {want['format']}), which cannot read it. " + ways_out(root)
        )


def write_json_durably(path: Path, data: Any) -> None:
    write_durably(path, json.dumps(data, indent=2).encode())


def write_durably(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so that a crash leaves the old file or the new one,
    never half of either: write a temporary file, fsync it, rename, fsync the directory."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    fsync_dir(path.parent)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def disk_full(exc: BaseException) -> bool:
    """Whether a write failed for want of space (an OSError, or SQLite or DuckDB saying so)."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    text = str(exc).lower()
    return "no space left on device" in text or (
        isinstance(exc, sqlite3.OperationalError) and "full" in text
    )


def open_sqlite(path: Path) -> sqlite3.Connection:
    """A SQLite file whose every commit is durable (WAL, synchronous=FULL), shared by
    threads under the caller's own lock, autocommit unless a transaction is opened."""
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    return db


@contextlib.contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One committed write transaction, or none of it (rolled back on any error)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise


def reset(home: Path) -> bool:
    """Delete the state directory (``local reset``); True if there was one."""
    root = home / DATA_DIR
    if not root.exists():
        return False
    shutil.rmtree(root)
    return True


# The one registry: modules register their part at import (see `server.Emulator`).
PERSISTENCE = Persistence()
