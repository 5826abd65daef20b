"""SQS messages that survive a restart or a crash: part "sqs", one SQLite file.

The queues themselves (their attributes, policies, redrive) are moto's and come back with
the control-plane snapshot (`snapshot`); their messages live here, in
``data/sqs/messages.sqlite`` (WAL, ``synchronous=FULL``), one row per message: the queue
(account/region/name), the message's moto state pickled (attributes, sent timestamp,
receive count, first receive, visibility, delay, receipt handles, group and deduplication
ids) and, apart, its payload: body and message attributes, written with the send and
never again, which `sqsdurable` then drops from the heap (a deep failure queue cost
~1.4 KB of RSS a message, most of it those two). The snapshot pickles every message as a
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
    state BLOB NOT NULL,
    payload BLOB
);
CREATE INDEX IF NOT EXISTS messages_queue ON messages(queue);
"""
# What a message carries but only a receive (or the send's reply) reads: kept in the row's
# ``payload``, written once, and not in the heap (`sqsdurable` drops them after the commit).
PAYLOAD = ("body", "message_attributes")


class DiskFull(Exception):
    """A write could not be made durable because the disk is full; the request failed."""


def queue_key(queue: Any) -> str:
    return f"{queue.account_id}/{queue.region}/{queue.name}"


def _state(message: Any) -> bytes:
    """The message's moto state (plain values only), without going through its reducer,
    and without its `PAYLOAD` (see `_payload`)."""
    return _pickled({k: v for k, v in vars(message).items() if k not in PAYLOAD})


def _payload(message: Any) -> bytes | None:
    """Its body and message attributes if it still holds them (None: the row has them)."""
    held = {k: vars(message)[k] for k in PAYLOAD if k in vars(message)}
    return _pickled(held) if held else None


def _pickled(value: dict[str, Any]) -> bytes:
    return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)


def _split_payloads(db: sqlite3.Connection) -> None:
    """A file of the version before payloads had their column: add it and move each row's
    body and message attributes there, in one transaction (an update rewrites the state
    only, so left inside it they would be lost at the first receive)."""
    with transaction(db):
        db.execute("ALTER TABLE messages ADD COLUMN payload BLOB")
        rows = db.execute("SELECT id, state FROM messages").fetchall()
        for message_id, blob in rows:
            state = pickle.loads(blob)  # noqa: S301 (our own file)
            held = {k: state.pop(k) for k in PAYLOAD if k in state}
            db.execute(
                "UPDATE messages SET state = ?, payload = ? WHERE id = ?",
                (_pickled(state), _pickled(held), message_id),
            )


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
        if "payload" not in {row[1] for row in db.execute("PRAGMA table_info(messages)")}:
            _split_payloads(db)
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
            "INSERT INTO messages(id, queue, state, payload) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(id) DO UPDATE SET queue=excluded.queue, state=excluded.state, "
            "payload=coalesce(excluded.payload, messages.payload)",
            [(m.id, key, _state(m), _payload(m)) for m in messages],
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

    def payload(self, message_id: str) -> dict[str, Any]:
        """The `PAYLOAD` fields of a saved message ({} if it is not saved)."""
        if self._db is None:
            return {}
        with self._lock:
            row = self._db.execute(
                "SELECT payload FROM messages WHERE id = ?", (message_id,)
            ).fetchone()
        if row is None or row[0] is None:
            return {}
        return dict(pickle.loads(row[0]))  # noqa: S301 (our own file)

    def count(self) -> int:
        if self._db is None:
            return 0
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM messages").fetchone()[0])
