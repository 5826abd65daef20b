"""S3 objects copied to files so DuckDB can read them: moto keeps object bytes in memory.

Each object is written once per version, under ``<root>/<digest>/dt=.../hour=.../``
where the digest is of bucket, key and ETag: a changed object gets a new file, and the
``name=value`` directories are what DuckDB's hive partitioning reads the partition
columns from. The index lives in memory, so the directory is emptied at start. A file
whose object changed or disappeared is stale and deleted as soon as no running query
reads it (queries `hold` the files they were planned with).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

Fetch = Callable[["S3File"], "tuple[bytes, str] | None"]  # -> (bytes, etag), None: gone


@dataclass(frozen=True)
class S3File:
    """One object a query may read: where it is in S3 and which partition it is in."""

    bucket: str
    key: str
    size: int
    etag: str
    segments: tuple[str, ...] = ()  # the key's ``name=value`` directories, in order
    account: str = ""  # whose S3 (moto keeps one backend per account)
    region: str = ""


class ObjectCache:
    """bucket/key/etag -> a local file, created on first use, deleted when stale."""

    def __init__(self, root: Path, fetch: Fetch) -> None:
        self.root = root
        self._fetch = fetch
        self._lock = threading.Lock()
        self._index: dict[tuple[str, str], tuple[str, Path]] = {}
        self._in_use: Counter[Path] = Counter()
        self._stale: set[Path] = set()
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True, exist_ok=True)

    def path_for(self, f: S3File, etag: str | None = None) -> Path:
        digest = hashlib.sha256(f"{f.bucket}\0{f.key}\0{etag or f.etag}".encode()).hexdigest()
        name = "".join(c if c.isalnum() or c in "._-" else "_" for c in f.key.rsplit("/", 1)[-1])
        return self.root.joinpath(digest[:32], *f.segments, name or "object")

    def files(self, wanted: Iterable[S3File]) -> list[tuple[S3File, Path]]:
        """Local copies of the objects (fetched when new or changed); gone ones are left out."""
        out = []
        for f in wanted:
            with self._lock:
                known = self._index.get((f.bucket, f.key))
            if known and known[0] == f.etag and known[1].exists():
                out.append((f, known[1]))
                continue
            got = self._fetch(f)
            if got is None:
                self._forget([(f.bucket, f.key)])
                continue
            data, etag = got
            path = self.path_for(f, etag)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{threading.get_ident()}.tmp")
            tmp.write_bytes(data)
            os.replace(tmp, path)
            with self._lock:
                old = self._index.get((f.bucket, f.key))
                self._index[(f.bucket, f.key)] = (etag, path)
                if old and old[1] != path:
                    self._stale.add(old[1])
            out.append((S3File(f.bucket, f.key, len(data), etag, f.segments), path))
        self._sweep()
        return out

    def retain(self, bucket: str, prefix: str, live: set[str]) -> None:
        """Objects under the prefix that are no longer listed: their files are stale."""
        with self._lock:
            gone = [k for k in self._index if k[0] == bucket and k[1].startswith(prefix)]
        self._forget([k for k in gone if k[1] not in live])

    def _forget(self, keys: list[tuple[str, str]]) -> None:
        with self._lock:
            for k in keys:
                entry = self._index.pop(k, None)
                if entry:
                    self._stale.add(entry[1])
        self._sweep()

    def hold(self, paths: Iterable[Path]) -> None:
        with self._lock:
            self._in_use.update(paths)

    def release(self, paths: Iterable[Path]) -> None:
        with self._lock:
            self._in_use.subtract(paths)
            self._in_use += Counter()  # drop zero counts
        self._sweep()

    def _sweep(self) -> None:
        with self._lock:
            free = [p for p in self._stale if not self._in_use[p]]
            self._stale.difference_update(free)
        for p in free:
            p.unlink(missing_ok=True)
            top = self.root / p.relative_to(self.root).parts[0]
            shutil.rmtree(top, ignore_errors=True)

    def cached(self) -> int:
        with self._lock:
            return len(self._index)
