"""SQS messages that survive a restart or a crash: part "sqs", one SQLite file.

The queues themselves (their attributes, policies, redrive) are moto's and come back with
the control-plane snapshot (`snapshot`); their messages live here, in
``data/sqs/messages.sqlite`` (WAL, ``synchronous=FULL``), one row per message: the queue
(account/region/name), and the message's whole moto state pickled (body, attributes,
message attributes, sent timestamp, receive count, first receive, visibility, delay,
receipt handles, group and deduplication ids). The snapshot pickles every message as a
placeholder (`register_reducer`), so the control plane stays small however deep a queue
is, and at ``open`` each restored queue gets its messages back from here, in send order.

Durability policy: every SendMessage (and each entry of SendMessageBatch) is committed,
and so fsync'ed, before its message id is returned; a failed commit (a full disk) takes
the message back out of the queue and fails the request, so nothing acknowledged is lost
and nothing unacknowledged is delivered. Receives (receive count, visibility, new receipt
handle), ChangeMessageVisibility, DeleteMessage, moves to a dead-letter queue, PurgeQueue
and DeleteQueue are committed the same way right after moto applied them. A clean stop
therefore brings back exactly what was queued. After a ``kill -9`` the guarantee is
at-least-once: a message deleted (or received) in the instant before the crash, between
moto's change and its commit, may come back as it was before (visible again, with its
earlier receive count). Receipt handles issued before a restart stay valid.

In ephemeral mode (`durable.PERSISTENCE` disabled) nothing here runs: every hook calls
moto's own method and returns.
"""

from __future__ import annotations

import pickle
import sqlite3
import threading
from pathlib import Path
from typing import Any

from iotpipe.local.durable import disk_full, open_sqlite, transaction

FILE = "messages.sqlite"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    queue TEXT NOT NULL,
    state BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_queue ON messages(queue);
"""


class DiskFull(Exception):
    """A write could not be made durable because the disk is full; the request failed."""


def queue_key(queue: Any) -> str:
    return f"{queue.account_id}/{queue.region}/{queue.name}"


def _state(message: Any) -> bytes:
    """The message's moto state (plain values only), without going through its reducer."""
    return pickle.dumps(dict(vars(message)), protocol=pickle.HIGHEST_PROTOCOL)


class SqsStore:
    """The message table; every call commits (SQLite serializes: one connection, one lock)."""

    def __init__(self) -> None:
        self._db: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self.dir: Path | None = None

    @property
    def enabled(self) -> bool:
        return self._db is not None

    def open(self, where: Path) -> None:
        self.dir = where
        db = open_sqlite(where / FILE)
        db.executescript(_SCHEMA)
        self._db = db

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                self._db.close()
            self._db = None

    def usage(self) -> int:
        if self.dir is None:
            return 0
        return sum(p.stat().st_size for p in self.dir.glob(FILE + "*") if p.exists())

    def _run(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        """One committed transaction; a full disk is `DiskFull` (nothing of it applied)."""
        with self._lock:
            db = self._db
            if db is None:
                return
            try:
                with transaction(db):
                    db.executemany(sql, rows)
            except BaseException as exc:
                if disk_full(exc):
                    raise DiskFull(f"the embedded AWS's disk is full ({self.dir}): {exc}") from exc
                raise

    # -- writes -----------------------------------------------------------------------
    def save(self, queue: Any, messages: list[Any]) -> None:
        """Insert or update these messages of `queue` (keeps their place in send order)."""
        key = queue_key(queue)
        self._run(
            "INSERT INTO messages(id, queue, state) VALUES (?, ?, ?) "
            "ON CONFLICT(id) DO UPDATE SET queue=excluded.queue, state=excluded.state",
            [(m.id, key, _state(m)) for m in messages],
        )

    def forget(self, ids: list[str]) -> None:
        self._run("DELETE FROM messages WHERE id = ?", [(i,) for i in ids])

    def forget_queue(self, queue: Any) -> None:
        self._run("DELETE FROM messages WHERE queue = ?", [(queue_key(queue),)])

    # -- reads ------------------------------------------------------------------------
    def load(self) -> dict[str, list[dict[str, Any]]]:
        """queue key -> the states of its messages, in send order."""
        assert self._db is not None
        found: dict[str, list[dict[str, Any]]] = {}
        with self._lock:
            rows = self._db.execute("SELECT queue, state FROM messages ORDER BY seq").fetchall()
        for key, blob in rows:
            found.setdefault(key, []).append(pickle.loads(blob))  # noqa: S301 (our own file)
        return found

    def count(self) -> int:
        if self._db is None:
            return 0
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM messages").fetchone()[0])
