"""S3 objects on disk: content-addressed blob files plus one SQLite index (part "s3").

Layout under ``data/s3/``: ``blobs/<2 hex>/<sha256>`` holds an object's bytes (written to
a temporary file, fsync'ed, renamed, directory fsync'ed: `durable.write_durably`), and
``objects.sqlite`` (WAL, ``synchronous=FULL``) one row per object version: the bucket
(account/partition/name), key, version id, the blob's hash and moto's metadata of the key
(size, ETag, content type and other headers, last modified, ACL, checksums) pickled.

Why content-addressed: the same bytes under two keys (a copy, an identical result file)
are stored once; a blob is removed when no row names it any more.

Durability policy: `save` writes and fsyncs the blob, then commits its row, before it
returns, so a PutObject acknowledged by its response is on disk; a crash between the two
leaves a blob no row names (removed by `sweep` at open), never a row without its bytes.
A full disk is `DiskFull`; nothing of that object is recorded.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pickle
import sqlite3
import threading
from pathlib import Path
from typing import Any

from iotpipe.local.durable import (
    disk_full,
    fsync_dir,
    open_sqlite,
    transaction,
    write_durably,
)

INDEX = "objects.sqlite"
BLOBS = "blobs"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    bucket TEXT NOT NULL,
    name TEXT NOT NULL,
    version TEXT NOT NULL,
    blob TEXT NOT NULL,
    state BLOB NOT NULL,
    UNIQUE (bucket, name, version)
);
CREATE INDEX IF NOT EXISTS objects_blob ON objects(blob);
"""


class DiskFull(Exception):
    """An object could not be made durable because the disk is full; it was not stored."""


class S3Store:
    """The blobs and their index; every write is durable when it returns."""

    def __init__(self) -> None:
        self.dir: Path | None = None
        self._db: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self._db is not None

    def open(self, where: Path) -> None:
        self.dir = where
        (where / BLOBS).mkdir(exist_ok=True)
        db = open_sqlite(where / INDEX)
        db.executescript(_SCHEMA)
        self._db = db
        self.sweep()

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                self._db.close()
            self._db = None

    def blob_path(self, digest: str) -> Path:
        assert self.dir is not None
        return self.dir / BLOBS / digest[:2] / digest

    def usage(self) -> int:
        if self.dir is None:
            return 0
        return sum(p.stat().st_size for p in self.dir.rglob("*") if p.is_file())

    # -- writes -----------------------------------------------------------------------
    def save(self, bucket: str, name: str, version: str, data: bytes, state: Any) -> None:
        """The object's bytes, then its row: durable when this returns."""
        digest = hashlib.sha256(data).hexdigest()
        path = self.blob_path(digest)
        meta = pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)
        try:
            if not path.exists():
                if not path.parent.exists():
                    path.parent.mkdir(exist_ok=True)
                    fsync_dir(path.parent.parent)
                write_durably(path, data)
            old = self._blob_of(bucket, name, version)
            self._run(
                "INSERT INTO objects(bucket, name, version, blob, state) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT(bucket, name, version) DO UPDATE SET blob=excluded.blob, "
                "state=excluded.state",
                (bucket, name, version, digest, meta),
            )
        except BaseException as exc:
            if disk_full(exc):
                raise DiskFull(f"the embedded AWS's disk is full ({self.dir}): {exc}") from exc
            raise
        if old is not None and old != digest:
            self._drop_blob(old)  # the bytes this version had before an overwrite

    def _blob_of(self, bucket: str, name: str, version: str) -> str | None:
        assert self._db is not None
        with self._lock:
            found = self._db.execute(
                "SELECT blob FROM objects WHERE bucket = ? AND name = ? AND version = ?",
                (bucket, name, version),
            ).fetchone()
        return None if found is None else str(found[0])

    def update_state(self, bucket: str, name: str, version: str, state: Any) -> None:
        """New metadata for a stored version (moto sets headers after the put)."""
        meta = pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)
        try:
            self._run(
                "UPDATE objects SET state = ? WHERE bucket = ? AND name = ? AND version = ?",
                (meta, bucket, name, version),
            )
        except BaseException as exc:
            if disk_full(exc):
                raise DiskFull(f"the embedded AWS's disk is full ({self.dir}): {exc}") from exc
            raise

    def forget(self, bucket: str, name: str, version: str | None = None) -> None:
        """Drop one version (or every version of the key) and blobs nothing else names."""
        where, args = "bucket = ? AND name = ?", [bucket, name]
        if version is not None:
            where, args = where + " AND version = ?", [*args, version]
        self._forget(where, args)

    def forget_bucket(self, bucket: str) -> None:
        self._forget("bucket = ?", [bucket])

    def _forget(self, where: str, args: list[str]) -> None:
        assert self._db is not None
        with self._lock:
            blobs = {
                r[0] for r in self._db.execute(f"SELECT blob FROM objects WHERE {where}", args)
            }
        self._run(f"DELETE FROM objects WHERE {where}", tuple(args))
        for digest in blobs:
            self._drop_blob(digest)

    def _drop_blob(self, digest: str) -> None:
        assert self._db is not None
        with self._lock:
            used = self._db.execute("SELECT 1 FROM objects WHERE blob = ? LIMIT 1", (digest,))
            if used.fetchone() is None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.blob_path(digest))

    def _run(self, sql: str, args: tuple[Any, ...]) -> None:
        with self._lock:
            db = self._db
            if db is None:
                return
            with transaction(db):
                db.execute(sql, args)

    def sweep(self) -> int:
        """Remove blobs no row names (a crash between a blob and its row); how many."""
        assert self._db is not None and self.dir is not None
        with self._lock:
            named = {r[0] for r in self._db.execute("SELECT DISTINCT blob FROM objects")}
        removed = 0
        for path in (self.dir / BLOBS).glob("*/*"):
            if path.name not in named:
                path.unlink()
                removed += 1
        return removed

    # -- reads ------------------------------------------------------------------------
    def load(self) -> dict[str, list[tuple[str, str, Any]]]:
        """bucket -> (key, blob hash, saved state) of each version, in write order."""
        assert self._db is not None
        with self._lock:
            rows = self._db.execute(
                "SELECT bucket, name, blob, state FROM objects ORDER BY seq"
            ).fetchall()
        found: dict[str, list[tuple[str, str, Any]]] = {}
        for bucket, name, digest, state in rows:
            found.setdefault(bucket, []).append((name, digest, pickle.loads(state)))  # noqa: S301
        return found

    def read(self, digest: str) -> bytes:
        return self.blob_path(digest).read_bytes()

    def count(self) -> int:
        if self._db is None:
            return 0
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM objects").fetchone()[0])
