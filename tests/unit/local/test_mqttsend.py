"""`send-test --via mqtt`'s sink: one connection per identity, counted by PUBACK."""

from __future__ import annotations

from pathlib import Path

from broker_world import World

from iotpipe.fleet import Message
from iotpipe.mqttsend import Endpoint, MqttSink, find_identities, require_identities


def _identities(world: World, folder: Path, ids: list[str]) -> None:
    folder.mkdir()
    (folder / "root-ca.pem").write_text(world.ca.ca_pem)
    for device_id in ids:
        dev = world.device(f"dep-{device_id}")
        (folder / f"{device_id}.cert.pem").write_text(dev.cert.read_text())
        (folder / f"{device_id}.private.key").write_text(dev.key.read_text())


def _message(device_id: str, body: bytes = b"{}") -> Message:
    return Message(device_id, body, "2026-12-02T00:00:00Z")


def test_each_device_publishes_on_its_own_topic_and_counts_by_puback(
    world: World, tmp_path: Path
) -> None:
    _identities(world, tmp_path / "devs", ["s1", "s2"])
    ids = find_identities(tmp_path / "devs")
    assert [i.device_id for i in ids] == ["s1", "s2"]
    sink = MqttSink(
        ids, Endpoint("127.0.0.1", world.broker.port), "iot/sensors/+/data", lambda d: f"dep-{d}"
    )
    out = sink.send([_message("s1"), _message("s2"), _message("elsewhere")])
    sink.close()
    assert (out.sent, out.failed) == (3, 0)
    topics = sorted(world.published.get_nowait()[1] for _ in range(3))
    assert topics[:2] == ["iot/sensors/dep-s1/data", "iot/sensors/dep-s1/data"] or topics[1:] == [
        "iot/sensors/dep-s2/data",
        "iot/sensors/dep-s2/data",
    ]


def test_a_refused_identity_fails_its_messages_and_says_why(world: World, tmp_path: Path) -> None:
    _identities(world, tmp_path / "devs", ["s1"])
    ids = find_identities(tmp_path / "devs")
    # the thing name does not match the certificate's owner: IoT refuses the connect
    sink = MqttSink(
        ids, Endpoint("127.0.0.1", world.broker.port), "iot/sensors/+/data", lambda d: f"other-{d}"
    )
    out = sink.send([_message("s1"), _message("s1")])
    sink.close()
    assert (out.sent, out.failed) == (0, 2)
    assert sum(out.errors.values()) == 2 and world.published.empty()


def test_no_identities_is_a_usage_error_that_says_how_to_add_one(tmp_path: Path) -> None:
    import pytest

    from iotpipe.errors import UsageError

    with pytest.raises(UsageError, match="devices add"):
        require_identities(tmp_path / "none", "dep")
