"""One Kinesis shard's records in append-only segment files, durable on acknowledgement.

Why files and not moto's dict: a stream left running for a day holds millions of records,
and moto's ``Record`` objects cost ~1 KB each in the heap. Here a record is bytes in a
segment file; the heap keeps one 8-byte offset per record (``array('Q')``) and nothing
else, because a shard's sequence numbers are consecutive (`kinesispatch`), so record
``seq`` is entry ``seq - first`` of the segment that starts at ``first``.

Durability policy: a record is written (``os.write``, so readers see it at once) when it
is put, and acknowledged only after an ``fsync`` that covers it. Writers share fsyncs
(leader/follower group commit, `wait_durable`): whoever finds no fsync running takes
every byte written so far into one, the others wait for it, so many concurrent puts cost
one fsync. A crash can leave a record half-written at the tail; each record carries a
CRC, and `open` drops a torn tail (it was never acknowledged). A full disk fails the put
(`DiskFull`) after cutting the file back, so nothing acknowledged is touched.

Record layout: ``<u32 body length><u32 crc32(body)>`` then the body: ``<24-byte seq><f64
arrival><u16 pk len><u16 ehk len (0xFFFF: none)>`` partition key, explicit hash key, data
(moto's base64 text, kept as it is so reads need no re-encoding).
"""

from __future__ import annotations

import bisect
import contextlib
import errno
import os
import struct
import threading
import zlib
from array import array
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

HEAD = struct.Struct("<II")
FIXED = struct.Struct("<24sdHH")
NO_EHK = 0xFFFF
SEGMENT_BYTES = 64 * 1024 * 1024
SUFFIX = ".seg"
Writer = Callable[[int, bytes], int]


class DiskFull(Exception):
    """A write found no space; the put was not done (and nothing acknowledged is lost)."""


class Stored(NamedTuple):
    seq: int
    arrival: float
    partition_key: str
    explicit_hash_key: str | None
    data: str


def encode(seq: int, arrival: float, pk: str, ehk: str | None, data: str) -> bytes:
    pkb, ehkb = pk.encode(), (ehk or "").encode()
    body = (
        FIXED.pack(
            seq.to_bytes(24, "little"), arrival, len(pkb), NO_EHK if ehk is None else len(ehkb)
        )
        + pkb
        + ehkb
        + data.encode()
    )
    return HEAD.pack(len(body), zlib.crc32(body)) + body


def decode(body: bytes) -> Stored:
    raw_seq, arrival, npk, nehk = FIXED.unpack_from(body)
    at = FIXED.size
    pk = body[at : at + npk].decode()
    at += npk
    ehk = None if nehk == NO_EHK else body[at : at + nehk].decode()
    at += 0 if nehk == NO_EHK else nehk
    return Stored(int.from_bytes(raw_seq, "little"), arrival, pk, ehk, body[at:].decode())


class Segment:
    """One file: records ``first .. first + len(offsets) - 1``."""

    def __init__(self, path: Path, first: int, fd: int) -> None:
        self.path, self.first, self.fd = path, first, fd
        self.offsets = array("Q")
        self.end = 0  # bytes of whole records

    @property
    def last(self) -> int:
        return self.first + len(self.offsets) - 1

    def read(self, index: int) -> Stored:
        at = self.offsets[index]
        length, _ = HEAD.unpack(os.pread(self.fd, HEAD.size, at))
        return decode(os.pread(self.fd, length, at + HEAD.size))

    def read_span(self, start: int, count: int) -> list[Stored]:
        """``count`` records from entry ``start``, with one read."""
        lo = self.offsets[start]
        stop = start + count
        hi = self.offsets[stop] if stop < len(self.offsets) else self.end
        blob = os.pread(self.fd, hi - lo, lo)
        out, at = [], 0
        for _ in range(count):
            length, _ = HEAD.unpack_from(blob, at)
            out.append(decode(blob[at + HEAD.size : at + HEAD.size + length]))
            at += HEAD.size + length
        return out

    def arrival(self, index: int) -> float:
        at = self.offsets[index] + HEAD.size
        return float(FIXED.unpack(os.pread(self.fd, FIXED.size, at))[1])

    def scan(self, verify: bool = True) -> None:
        """Index the file's whole records; cut a torn or corrupt tail off (never acked).

        ``verify=False`` (a sealed segment: fsync'ed whole before the next was created)
        walks the length headers without checking each record's CRC, 3x faster at start."""
        blob = b""
        size = os.fstat(self.fd).st_size
        with open(self.fd, "rb", closefd=False) as fh:
            blob = fh.read(size)
        at, offsets, n, unpack = 0, self.offsets, len(blob), HEAD.unpack_from
        while at + HEAD.size <= n:
            length, crc = unpack(blob, at)
            stop = at + HEAD.size + length
            if stop > n or (verify and zlib.crc32(blob[at + HEAD.size : stop]) != crc):
                break
            offsets.append(at)
            at = stop
        self.end = at
        if at != size:
            os.ftruncate(self.fd, at)
            os.fsync(self.fd)


class ShardLog:
    """A shard's records on disk: the dict subset moto and `kinesispatch` use, plus
    `append`/`wait_durable`/`read_after`. Keys are sequence numbers, oldest first."""

    def __init__(
        self, where: Path, write: Writer = os.write, now: Callable[[], float] | None = None
    ) -> None:
        import time

        self.where = where
        self.write = write
        self.now = now or time.time
        self.retention_s: float | None = None  # None: unknown yet, never trim
        self.segments: list[Segment] = []
        self.firsts: list[int] = []
        self.horizon = 0  # sequence numbers below it are trimmed
        self.lock = threading.Lock()  # appends and segment changes
        self.sync = threading.Condition()
        self.written = 0  # appended records (a counter: tickets for wait_durable)
        self.synced = 0
        self.syncing = False
        self.failed: OSError | None = None
        self.failed_upto = 0  # tickets up to it were in a failed fsync: not acknowledged
        self.opened = False
        self.last_trim = 0.0

    # -- life ----------------------------------------------------------------------------
    def open(self) -> ShardLog:
        self.where.mkdir(parents=True, exist_ok=True)
        paths = sorted(self.where.glob("*" + SUFFIX))
        for i, path in enumerate(paths):
            seg = Segment(path, int(path.stem), os.open(path, os.O_RDWR | os.O_APPEND))
            seg.scan(verify=i == len(paths) - 1)  # only the newest can have a torn tail
            if seg.offsets:
                self._add(seg)
            else:
                os.close(seg.fd)
                path.unlink()
        if self.segments:
            self.horizon = self.segments[0].first
        self.opened = True
        return self

    def close(self) -> None:
        with self.lock:
            for seg in self.segments:
                with contextlib.suppress(OSError):
                    os.fsync(seg.fd)
                os.close(seg.fd)
            self.segments, self.firsts = [], []

    def destroy(self) -> None:
        """Close and delete the files (the stream was deleted)."""
        self.close()
        for path in self.where.glob("*"):
            path.unlink()
        with contextlib.suppress(OSError):
            self.where.rmdir()

    def _add(self, seg: Segment) -> None:
        self.segments.append(seg)
        self.firsts.append(seg.first)

    # -- writes --------------------------------------------------------------------------
    def append(self, seq: int, pk: str, ehk: str | None, data: str) -> int:
        """Write one record (caller holds the put lock, so ``seq`` is the next one);
        returns the ticket to pass to `wait_durable`."""
        return self.append_many(seq, [(pk, ehk, data)])

    def append_many(self, first: int, records: list[tuple[str, str | None, str]]) -> int:
        """Write records numbered ``first``, ``first + 1``... with one write (the caller
        holds the put lock); all or none of them are in the file afterwards."""
        now = self.now()
        blobs = [encode(first + i, now, *rec) for i, rec in enumerate(records)]
        blob = b"".join(blobs)
        with self.lock:
            seg = self._tail(first, len(blob))
            view, at = memoryview(blob), seg.end
            try:
                while view:
                    view = view[self.write(seg.fd, bytes(view)) :]
            except OSError as exc:
                with contextlib.suppress(OSError):
                    os.ftruncate(seg.fd, seg.end)
                if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                    raise DiskFull(str(self.where)) from exc
                raise
            for one in blobs:
                seg.offsets.append(at)
                at += len(one)
            seg.end = at
            self.written += len(blobs)
            ticket = self.written
        self.maybe_trim()
        return ticket

    def _tail(self, seq: int, size: int) -> Segment:
        if self.segments and self.segments[-1].end + size <= SEGMENT_BYTES:
            return self.segments[-1]
        if self.segments:
            os.fsync(self.segments[-1].fd)  # what the next group fsyncs is the new file
        path = self.where / f"{seq:056d}{SUFFIX}"
        self.where.mkdir(parents=True, exist_ok=True)
        seg = Segment(path, seq, os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600))
        _fsync_dir(self.where)
        self._add(seg)
        if len(self.segments) == 1:
            self.horizon = seq
        return seg

    def wait_durable(self, ticket: int) -> None:
        """Return once the ticket's record is fsync'ed; one fsync serves every waiter."""
        with self.sync:
            while self.synced < ticket:
                if ticket <= self.failed_upto:
                    raise DiskFull(str(self.where)) from self.failed
                if self.syncing:
                    self.sync.wait()
                    continue
                self.syncing = True
                target = self.written
                seg = self.segments[-1] if self.segments else None
                ok = False
                self.sync.release()
                try:
                    if seg is not None:
                        os.fsync(seg.fd)
                    ok = True
                except OSError as exc:
                    self.failed, ok = exc, False
                finally:
                    self.sync.acquire()
                    self.syncing = False
                    if ok:
                        self.synced = max(self.synced, target)
                    else:  # later puts may succeed once there is space again
                        self.failed_upto = max(self.failed_upto, target)
                    self.sync.notify_all()

    # -- retention -----------------------------------------------------------------------
    def maybe_trim(self) -> None:
        now = self.now()
        if self.retention_s is not None and now - self.last_trim >= 1.0:
            self.last_trim = now
            self.trim(now)

    def trim(self, now: float) -> None:
        """Forget records older than the retention: whole segments go, the horizon moves."""
        if self.retention_s is None:
            return
        cutoff = now - self.retention_s
        with self.lock:
            while (
                len(self.segments) > 1
                and self.segments[0].arrival(len(self.segments[0].offsets) - 1) < cutoff
            ):
                seg = self.segments.pop(0)
                self.firsts.pop(0)
                os.close(seg.fd)
                seg.path.unlink()
            if not self.segments:
                return
            seg = self.segments[0]
            lo, hi = max(0, self.horizon - seg.first), len(seg.offsets)
            while lo < hi:  # first entry not older than the cutoff
                mid = (lo + hi) // 2
                if seg.arrival(mid) < cutoff:
                    lo = mid + 1
                else:
                    hi = mid
            self.horizon = max(self.horizon, seg.first + lo)

    # -- reads ---------------------------------------------------------------------------
    def _find(self, seq: int) -> tuple[Segment, int] | None:
        if seq < self.horizon:
            return None
        i = bisect.bisect_right(self.firsts, seq) - 1
        if i < 0:
            return None
        seg = self.segments[i]
        index = seq - seg.first
        return (seg, index) if index < len(seg.offsets) else None

    def first(self) -> int | None:
        self.maybe_trim()
        with self.lock:
            if not self.segments or self.horizon > self.segments[-1].last:
                return None
            return self.horizon

    def last(self) -> int | None:
        with self.lock:
            return self.segments[-1].last if self.segments else None

    def get_stored(self, seq: int) -> Stored | None:
        with self.lock:
            found = self._find(seq)
            return None if found is None else found[0].read(found[1])

    def read_after(self, after: int, limit: int) -> list[Stored]:
        """Up to ``limit`` records after ``after``: O(limit), one read per segment."""
        out: list[Stored] = []
        with self.lock:
            seq = max(after + 1, self.horizon)
            while len(out) < limit:
                found = self._find(seq)
                if found is None:
                    break
                seg, index = found
                count = min(limit - len(out), len(seg.offsets) - index)
                out.extend(seg.read_span(index, count))
                seq += count
        return out

    def count(self) -> int:
        with self.lock:
            if not self.segments:
                return 0
            return max(0, self.segments[-1].last - self.horizon + 1)

    def seqs(self) -> Iterator[int]:
        first, last = self.first(), self.last()
        if first is None or last is None:
            return iter(())
        return iter(range(first, last + 1))

    def bytes_used(self) -> int:
        with self.lock:
            return sum(seg.end for seg in self.segments)

    def oldest(self) -> float | None:
        first = self.first()
        if first is None:
            return None
        with self.lock:
            found = self._find(first)
            return None if found is None else found[0].arrival(found[1])


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
