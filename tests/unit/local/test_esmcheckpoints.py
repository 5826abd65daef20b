"""Mapping checkpoints: a poller's is written while its next batch runs, but never more than
one behind; `set`, `save` and `close` return durable."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from iotpipe.local import esmcheckpoints
from iotpipe.local.esmcheckpoints import Checkpoints

KEY = ("uuid-1", "shardId-000000000000")


def reopened(where: Path) -> dict[tuple[str, str], int]:
    """What a restart would resume from (the file as it is; nothing written)."""
    saved = json.loads((where / Checkpoints.FILE).read_text())
    return {tuple(k.split("|", 1)): v for k, v in saved.items()}  # type: ignore[misc]


class HeldWrites:
    """write_durably, held at a gate: what a slow fsync looks like to the pollers."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.started = threading.Event()
        self.real = esmcheckpoints.write_durably

    def __call__(self, path: Path, data: bytes) -> None:
        self.started.set()
        assert self.gate.wait(10)
        self.real(path, data)


@pytest.fixture
def held_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Checkpoints, HeldWrites]:
    """Checkpoints under tmp_path whose first write stalls until the test opens the gate."""
    cp = Checkpoints()
    cp.open(tmp_path)
    held = HeldWrites()
    monkeypatch.setattr(esmcheckpoints, "write_durably", held)
    return cp, held


def test_advance_returns_before_the_write_and_the_next_waits_for_it(
    tmp_path: Path, held_store: tuple[Checkpoints, HeldWrites]
) -> None:
    cp, held = held_store
    cp.advance(*KEY, 100)  # returns while its write is held
    assert held.started.wait(5)
    second = threading.Thread(target=cp.advance, args=(*KEY, 200))
    second.start()
    second.join(0.3)
    assert second.is_alive()  # one checkpoint behind at most: it waits for 100's write
    held.gate.set()
    second.join(5)
    assert not second.is_alive()
    cp.close()  # a clean stop writes the latest
    assert reopened(tmp_path) == {KEY: 200}


def test_other_shards_do_not_wait_for_each_other(
    tmp_path: Path, held_store: tuple[Checkpoints, HeldWrites]
) -> None:
    cp, held = held_store
    cp.advance(*KEY, 1)
    assert held.started.wait(5)
    cp.advance("uuid-1", "shardId-000000000001", 5)  # its own first: no wait
    held.gate.set()
    cp.close()
    assert reopened(tmp_path) == {KEY: 1, ("uuid-1", "shardId-000000000001"): 5}


def test_the_background_write_lands_without_a_close(tmp_path: Path) -> None:
    cp = Checkpoints()
    cp.open(tmp_path)
    cp.advance(*KEY, 7)
    cp.advance(*KEY, 8)  # returns once 7 is durable
    assert reopened(tmp_path)[KEY] in (7, 8)
    cp.close()


def test_without_a_home_checkpoints_live_in_memory_only() -> None:
    cp = Checkpoints()  # --ephemeral: the part is never opened
    cp.advance(*KEY, 3)
    cp.advance(*KEY, 4)
    cp.save()
    assert cp.starts == {KEY: 4}


def test_a_deleted_mappings_checkpoints_are_pruned_and_a_live_ones_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """They used to stay in the file for good, one per shard of every mapping ever made."""
    from types import SimpleNamespace

    from iotpipe.local import esm

    store = Checkpoints()
    store.open(tmp_path)
    monkeypatch.setattr(esm, "CHECKPOINTS", store)
    store.set("live", "shardId-000000000000", 7)
    store.set("gone", "shardId-000000000000", 9)
    live = SimpleNamespace(uuid="live", event_source_arn="arn:aws:kinesis:us-east-1:1:stream/s")
    monkeypatch.setattr(esm.moto, "all_event_source_mappings", lambda: [("1", "r", live)])
    monkeypatch.setattr(esm.moto, "all_latest_functions", lambda: [])
    monkeypatch.setattr(esm.EsmManager, "_stream", staticmethod(lambda e: None))  # no pollers
    try:
        esm.EsmManager(SimpleNamespace(prune=lambda live: None)).sync()  # type: ignore[arg-type]
        assert reopened(tmp_path) == {("live", "shardId-000000000000"): 7}
    finally:
        store.close()
