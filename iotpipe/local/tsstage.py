"""Staged Timestream writes: a WriteRecords is acknowledged once journaled, not once in DuckDB.

Why: a DuckDB statement costs ~2 ms however few rows it has (plan, schedule, commit's
fsync), so committing every WriteRecords of 100 rows capped the emulator near 5,000 rows/s.
Rows that are certainly new are instead appended to a journal (one fsync per group of
requests) and inserted into DuckDB in large batches by `tsstore`'s applier, and before
any query (read your writes).

"Certainly new" is decided by `SeriesClock`, per table: the (series, time) pairs of the
newest ``RECENT`` rows stored or staged, and per series (measure name and dimensions,
hashed) a floor, the latest time it has forgotten. A row later than its series' floor
and not among the recent pairs cannot be a repeat, so it needs no lookup: that is every
row of a device whose readings arrive roughly in time order (Kinesis keeps order per
partition key; concurrent PutRecords reorder a little, within the window). Anything
else (a retried batch, a new Version, late data, two rows of one series at one time)
takes the exact path: staged rows applied first, then the join of `tswrite`; the other
rows of the same request are still staged. Errors only
ever go one way (a hash collision merges two series' floors), which costs time, never a
wrong answer. Memory: ``RECENT`` pairs plus one integer per series, whatever the table
holds; at start the floors are rebuilt from DuckDB with one GROUP BY.

Journal layout: files ``<n>.log`` of frames ``<u32 length><u32 crc32(body)>`` + body, a
pickle of ``(table key, rows)`` written by this process only (the directory is the
owner's, mode 0700). A torn tail was never acknowledged and is ignored. A file is deleted
once every row in it is committed to DuckDB; at start the remaining ones are replayed
through the exact path, which skips identical repeats, so a crash between the DuckDB
commit and the delete writes nothing twice.
"""

from __future__ import annotations

import contextlib
import errno
import os
import pickle
import struct
import zlib
from collections import deque
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from iotpipe.local.durable import fsync_dir
from iotpipe.local.segments import DiskFull

SUFFIX = ".log"
RECENT = 65_536  # (series, time) pairs a table's clock keeps exactly
HEAD = struct.Struct("<II")
Rows = list[tuple[int, dict[str, Any], int]]  # (record index, row, version), as in tswrite.Job
TableKey = tuple[str, str, str, str]
Pair = tuple[int, int]  # (series, time in µs)


def series_of(measure_name: str, dims: Iterable[tuple[str, Any]]) -> int:
    """A series' hash: the same for the same dimensions in any order (this process only)."""
    return hash((measure_name, frozenset(dims)))


def row_series(row: dict[str, Any]) -> int:
    return series_of(row["measure_name"], ((n, row[n]) for n in row["__dims__"]))


class SeriesClock:
    """Which (series, time) pairs one table may hold: the newest ``RECENT`` exactly, and
    per series a floor at or below which any time may be stored."""

    def __init__(self, floors: dict[int, int] | None = None) -> None:
        self._floor = floors or {}  # series -> the latest time no longer kept exactly
        self._recent: set[Pair] = set()
        self._order: deque[Pair] = deque()

    def __len__(self) -> int:
        return len(self._floor) + len(self._recent)

    def classify(self, rows: Iterable[dict[str, Any]]) -> tuple[list[Pair], list[bool]]:
        """Each row's (series, time) pair, and whether it is certainly new (later rows of
        the same batch count: a pair twice is new once). Nothing changes until `advance`."""
        floor, recent, mine = self._floor, self._recent, set()
        pairs, new = [], []
        for row in rows:
            pair = (row_series(row), row["time"])
            pairs.append(pair)
            fresh = pair[1] > floor.get(pair[0], pair[1] - 1)
            new.append(fresh and pair not in recent and pair not in mine)
            mine.add(pair)
        return pairs, new

    def advance(self, pairs: Iterable[Pair]) -> None:
        """These pairs are stored (or may be): remember them, forgetting the oldest."""
        recent, order, floor = self._recent, self._order, self._floor
        for pair in pairs:
            if pair not in recent:
                recent.add(pair)
                order.append(pair)
        while len(order) > RECENT:
            series, t = old = order.popleft()
            recent.discard(old)
            if t > floor.get(series, t - 1):
                floor[series] = t

    def advance_rows(self, rows: Iterable[dict[str, Any]]) -> None:
        self.advance((row_series(row), row["time"]) for row in rows)


class Journal:
    """Append-only files of staged rows (see the module docstring)."""

    def __init__(self, where: Path) -> None:
        self.where = where
        where.mkdir(parents=True, exist_ok=True)
        found = sorted(int(p.stem) for p in where.glob("*" + SUFFIX))
        self.left = found  # files from before this start: replay, then `drop_through`
        self.number = (found[-1] + 1) if found else 1
        self._fd = self._create(self.number)

    def _create(self, number: int) -> int:
        fd = os.open(
            self.where / f"{number}{SUFFIX}", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600
        )
        fsync_dir(self.where)
        return fd

    def append(self, entries: list[tuple[TableKey, Rows]]) -> None:
        """Write the entries and fsync them (the caller acknowledges only after this)."""
        blob = b"".join(_frame(pickle.dumps(e, protocol=pickle.HIGHEST_PROTOCOL)) for e in entries)
        start = os.lseek(self._fd, 0, os.SEEK_END)
        try:
            view = memoryview(blob)
            while view:
                view = view[os.write(self._fd, view) :]
            os.fsync(self._fd)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, start)
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise DiskFull(f"{self.where}: the disk is full") from exc
            raise

    def rotate(self) -> int:
        """Start a new file; returns the number of the last one that may hold staged rows."""
        done = self.number
        os.close(self._fd)
        self.number += 1
        self._fd = self._create(self.number)
        return done

    def drop_through(self, number: int) -> None:
        """Every row in files up to ``number`` is in DuckDB: delete them."""
        for path in self.where.glob("*" + SUFFIX):
            if int(path.stem) <= number and int(path.stem) != self.number:
                path.unlink()
        self.left = [n for n in self.left if n > number]

    def replay(self) -> Iterator[tuple[TableKey, Rows]]:
        """What files from before this start hold, oldest first (torn tails skipped)."""
        for number in self.left:
            blob = (self.where / f"{number}{SUFFIX}").read_bytes()
            at = 0
            while at + HEAD.size <= len(blob):
                length, crc = HEAD.unpack_from(blob, at)
                body = blob[at + HEAD.size : at + HEAD.size + length]
                if len(body) != length or zlib.crc32(body) != crc:
                    break
                yield pickle.loads(body)  # noqa: S301 - our own file, in a 0700 home
                at += HEAD.size + length

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self._fd)


def _frame(body: bytes) -> bytes:
    return HEAD.pack(len(body), zlib.crc32(body)) + body
