"""Firehose delivery checkpoints persisted (iotpipe.local.firehosestate)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from iotpipe.local.firehosestate import FILE, Checkpoints


def stream(created: str = "t1") -> SimpleNamespace:
    return SimpleNamespace(
        delivery_stream_arn="arn:aws:firehose:r:1:deliverystream/d", create_timestamp=created
    )


def test_checkpoints_survive_a_reopen_and_a_recreated_stream_starts_afresh(tmp_path):
    saved = Checkpoints()
    saved.open(tmp_path)
    saved.put(stream(), {"shardId-000000000000": 41})
    saved.close()
    assert json.loads((tmp_path / FILE).read_text())

    again = Checkpoints()
    again.open(tmp_path)
    assert again.get(stream()) == {"shardId-000000000000": 41}
    assert again.get(stream("t2")) is None  # deleted and re-created under the same name


def test_deleted_streams_are_dropped_and_memory_only_writes_nothing(tmp_path):
    kept = Checkpoints()
    kept.put(stream(), {"s": 1})  # not opened: ephemeral
    assert not (tmp_path / FILE).exists()
    kept.open(tmp_path)
    kept.put(stream("t2"), {"s": 2}, live={"arn:aws:firehose:r:1:deliverystream/d@t2"})
    assert list(json.loads((tmp_path / FILE).read_text())) == [
        "arn:aws:firehose:r:1:deliverystream/d@t2"
    ]


def test_a_damaged_file_fails_the_open(tmp_path):
    (tmp_path / FILE).write_text("[1, 2]")
    with pytest.raises(ValueError, match="not an object"):
        Checkpoints().open(tmp_path)
