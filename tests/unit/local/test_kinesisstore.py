"""The Kinesis segment store: index, group commit, torn tails, retention, full disk, heap."""

from __future__ import annotations

import errno
import os
import threading
import tracemalloc
from pathlib import Path

import pytest

from iotpipe.local import segments
from iotpipe.local.segments import DiskFull, ShardLog

FIRST = 49 * 10**54 + 1


class Clock:
    def __init__(self, t: float = 1_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def fill(log: ShardLog, n: int, start: int = FIRST, data: str = "ZGF0YQ==") -> list[int]:
    tickets = [log.append(start + i, f"pk{i}", None, data) for i in range(n)]
    return tickets


def test_append_read_by_range_and_reopen(tmp_path: Path) -> None:
    log = ShardLog(tmp_path).open()
    fill(log, 10)
    log.append(FIRST + 10, "k", "123", "eA==")
    assert log.count() == 11 and log.first() == FIRST and log.last() == FIRST + 10
    got = log.read_after(FIRST + 2, 4)
    assert [r.seq for r in got] == [FIRST + 3, FIRST + 4, FIRST + 5, FIRST + 6]
    assert got[0].partition_key == "pk3" and got[0].explicit_hash_key is None
    assert log.get_stored(FIRST + 10).explicit_hash_key == "123"  # type: ignore[union-attr]
    assert log.get_stored(FIRST + 11) is None
    log.close()
    again = ShardLog(tmp_path).open()
    assert [r.seq for r in again.read_after(0, 100)] == list(range(FIRST, FIRST + 11))


def test_segments_roll_over_and_reads_cross_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("iotpipe.local.segments.SEGMENT_BYTES", 500)
    log = ShardLog(tmp_path).open()
    fill(log, 50)
    assert len(list(tmp_path.glob("*.seg"))) > 3
    assert [r.seq for r in log.read_after(FIRST - 1, 100)] == list(range(FIRST, FIRST + 50))
    log.close()
    checked: list[int] = []
    crc = segments.zlib.crc32
    monkeypatch.setattr(segments.zlib, "crc32", lambda b: checked.append(1) or crc(b))
    again = ShardLog(tmp_path).open()
    assert [r.seq for r in again.read_after(0, 100)] == list(range(FIRST, FIRST + 50))
    # only the newest segment is checked record by record (only it can have a torn tail)
    assert len(checked) == len(again.segments[-1].offsets) < 50


def test_group_commit_shares_fsyncs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = ShardLog(tmp_path).open()
    fsyncs = []
    real = os.fsync
    gate = threading.Event()

    def slow_fsync(fd: int) -> None:
        fsyncs.append(fd)
        gate.wait(0.05)  # a slow disk: others pile up behind the leader
        real(fd)

    monkeypatch.setattr("iotpipe.local.segments.os.fsync", slow_fsync)
    lock = threading.Lock()
    seqs = iter(range(FIRST, FIRST + 10**6))
    done: list[int] = []

    def writer() -> None:
        for _ in range(20):
            with lock:
                ticket = log.append(next(seqs), "p", None, "eA==")
            log.wait_durable(ticket)
            assert log.synced >= ticket
            done.append(ticket)

    threads = [threading.Thread(target=writer) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(done) == 160
    assert len(fsyncs) < 160 / 2  # shared, not one per put


def test_torn_tail_is_cut_at_open(tmp_path: Path) -> None:
    log = ShardLog(tmp_path).open()
    fill(log, 5)
    log.close()
    (seg,) = tmp_path.glob("*.seg")
    size = seg.stat().st_size
    with open(seg, "ab") as fh:
        fh.write(b"\x40\x00\x00\x00garbage-half-record")
    again = ShardLog(tmp_path).open()
    assert again.count() == 5
    assert seg.stat().st_size == size
    again.append(FIRST + 5, "p", None, "eA==")
    again.close()
    assert [r.seq for r in ShardLog(tmp_path).open().read_after(0, 10)][-1] == FIRST + 5


def test_corrupt_last_record_is_dropped(tmp_path: Path) -> None:
    log = ShardLog(tmp_path).open()
    fill(log, 3)
    log.close()
    (seg,) = tmp_path.glob("*.seg")
    raw = bytearray(seg.read_bytes())
    raw[-1] ^= 0xFF
    seg.write_bytes(bytes(raw))
    assert ShardLog(tmp_path).open().count() == 2


def test_retention_trims_segments_and_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("iotpipe.local.segments.SEGMENT_BYTES", 400)
    clock = Clock()
    log = ShardLog(tmp_path, now=clock).open()
    log.retention_s = 3600
    fill(log, 30)  # at t0
    clock.t += 1800
    fill(log, 30, start=FIRST + 30)  # at t0 + 30 min
    files = len(list(tmp_path.glob("*.seg")))
    clock.t += 2000  # the first 30 are now older than an hour
    assert log.first() == FIRST + 30
    assert len(list(tmp_path.glob("*.seg"))) < files
    assert [r.seq for r in log.read_after(0, 100)] == list(range(FIRST + 30, FIRST + 60))
    assert log.get_stored(FIRST) is None and log.count() == 30
    assert log.oldest() == pytest.approx(1_000_000.0 + 1800)


def test_no_retention_known_means_no_trim(tmp_path: Path) -> None:
    clock = Clock()
    log = ShardLog(tmp_path, now=clock).open()
    fill(log, 3)
    clock.t += 10**7
    assert log.first() == FIRST


def test_full_disk_fails_the_put_and_keeps_what_was_acked(tmp_path: Path) -> None:
    calls = {"n": 0}

    def write(fd: int, data: bytes) -> int:
        calls["n"] += 1
        if calls["n"] > 3:
            os.write(fd, data[:7])  # half a record reached the disk
            raise OSError(errno.ENOSPC, "No space left on device")
        return os.write(fd, data)

    log = ShardLog(tmp_path, write=write).open()
    log.wait_durable(fill(log, 3)[-1])
    with pytest.raises(DiskFull, match=str(tmp_path)):
        log.append(FIRST + 3, "p", None, "eA==")
    assert log.count() == 3
    log.close()
    assert [r.seq for r in ShardLog(tmp_path).open().read_after(0, 10)] == [
        FIRST,
        FIRST + 1,
        FIRST + 2,
    ]


def test_200k_records_keep_the_heap_small(tmp_path: Path) -> None:
    log = ShardLog(tmp_path).open()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    fill(log, 200_000, data="eyJ0ZW1wIjogMjEuNSwgImRldmljZSI6ICJkZXYtMDAxIn0=")
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert log.count() == 200_000
    assert held < 200_000 * 16, held  # the offsets array (8 B/record), no record objects


def test_a_failed_fsync_fails_its_puts_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = ShardLog(tmp_path).open()
    log.wait_durable(log.append(FIRST, "p", None, "eA=="))
    real = os.fsync
    monkeypatch.setattr(
        "iotpipe.local.segments.os.fsync",
        lambda fd: (_ for _ in ()).throw(OSError(errno.ENOSPC, "full")),
    )
    ticket = log.append(FIRST + 1, "p", None, "eA==")
    with pytest.raises(DiskFull):
        log.wait_durable(ticket)
    monkeypatch.setattr("iotpipe.local.segments.os.fsync", real)
    log.wait_durable(log.append(FIRST + 2, "p", None, "eA=="))
    assert log.synced == 3


def test_the_dict_view_moto_reads(tmp_path: Path) -> None:
    from iotpipe.local import kinesispatch  # noqa: F401  (sets kinesisstore.MAKE)
    from iotpipe.local.kinesisstore import MAKE, DiskRecords

    log = ShardLog(tmp_path).open()
    fill(log, 5)
    view = DiskRecords(("a", "r", "s", "shardId-0"), log, lambda s: MAKE[0](s))
    assert len(view) == 5 and FIRST + 4 in view and FIRST + 5 not in view
    assert list(view) == list(range(FIRST, FIRST + 5))
    assert next(reversed(view)) == FIRST + 4
    rec = view[FIRST + 1]
    assert (rec.sequence_number, rec.partition_key, rec.data) == (FIRST + 1, "pk1", "ZGF0YQ==")
    assert rec.to_json()["Data"] == b"data"
    assert [k for k, _ in view.items()] == list(view.keys())
    with pytest.raises(KeyError):
        view[FIRST + 9]
    assert view.__reduce__()[1] == ("a", "r", "s", "shardId-0")


def test_a_batch_is_one_write_numbered_in_order_and_all_or_nothing(tmp_path: Path) -> None:
    writes: list[int] = []

    def write(fd: int, data: bytes) -> int:
        writes.append(len(data))
        if len(writes) == 2:
            os.write(fd, data[: len(data) // 2])  # half the batch reached the disk
            raise OSError(errno.ENOSPC, "No space left on device")
        return os.write(fd, data)

    log = ShardLog(tmp_path, write=write).open()
    log.wait_durable(log.append_many(FIRST, [(f"pk{i}", None, "eA==") for i in range(5)]))
    assert len(writes) == 1
    assert [(r.seq, r.partition_key) for r in log.read_after(0, 10)] == [
        (FIRST + i, f"pk{i}") for i in range(5)
    ]
    with pytest.raises(DiskFull):
        log.append_many(FIRST + 5, [("a", None, "eA=="), ("b", None, "eA==")])
    assert log.count() == 5
    log.close()
    assert ShardLog(tmp_path).open().count() == 5
