"""The collector's bulk thresholds: set where data moves, given back where it stops."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator

import pytest

from iotpipe import gcpolicy
from iotpipe.fleet import Message
from iotpipe.traffic import BatchCounts, deliver

DEFAULT = (700, 10, 10)


@pytest.fixture(autouse=True)
def default_thresholds() -> Iterator[None]:
    before = gc.get_threshold()
    gc.set_threshold(*DEFAULT)
    yield
    gc.set_threshold(*before)


def test_bulk_sets_the_thresholds_and_gives_the_previous_ones_back() -> None:
    gc.set_threshold(1234, 5, 6)
    with gcpolicy.bulk():
        assert gc.get_threshold() == gcpolicy.BULK_THRESHOLDS
    assert gc.get_threshold() == (1234, 5, 6)


def test_bulk_gives_them_back_when_the_body_raises() -> None:
    with pytest.raises(RuntimeError), gcpolicy.bulk():
        raise RuntimeError("boom")
    assert gc.get_threshold() == DEFAULT


def test_overlapping_stretches_restore_only_when_the_last_one_ends() -> None:
    """Two threads: the first to finish must not put the defaults back under the other."""
    inside, release = threading.Event(), threading.Event()
    seen: list[tuple[int, ...]] = []

    def other() -> None:
        with gcpolicy.bulk():
            inside.set()
            release.wait(5)
            seen.append(gc.get_threshold())

    t = threading.Thread(target=other)
    t.start()
    assert inside.wait(5)
    with gcpolicy.bulk():
        pass  # this stretch ends first...
    assert gc.get_threshold() == gcpolicy.BULK_THRESHOLDS  # ...the other still runs
    release.set()
    t.join(5)
    assert seen == [gcpolicy.BULK_THRESHOLDS]
    assert gc.get_threshold() == DEFAULT


def test_send_test_delivery_runs_under_bulk_thresholds_and_restores_them() -> None:
    class Recording:
        max_records, max_bytes = 500, 5 * 1024 * 1024
        thresholds: list[tuple[int, ...]] = []

        def send(self, batch: list[Message]) -> BatchCounts:
            self.thresholds.append(gc.get_threshold())
            return BatchCounts(sent=len(batch))

    sink = Recording()
    summary = deliver([Message("d1", b"{}", "t")], sink, workers=1)
    assert summary.sent == 1
    assert sink.thresholds == [gcpolicy.BULK_THRESHOLDS]
    assert gc.get_threshold() == DEFAULT


def test_a_bulk_process_keeps_the_thresholds_for_good() -> None:
    gcpolicy.for_bulk_process()
    assert gc.get_threshold() == gcpolicy.BULK_THRESHOLDS


def test_freezing_start_up_leaves_its_objects_out_of_later_collections() -> None:
    built_at_start = [object() for _ in range(10)]
    try:
        gcpolicy.freeze_startup()
        assert gc.get_freeze_count() >= len(built_at_start)
    finally:
        gc.unfreeze()
