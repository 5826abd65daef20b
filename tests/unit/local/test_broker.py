"""The embedded MQTT broker against paho-mqtt, a client nobody here wrote (3.1.1 and 5)."""

from __future__ import annotations

import queue
import socket
import ssl
import threading
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from broker_world import Device, World

from iotpipe.local.ca import EmulatorCA

WAIT = 10.0


class Client:
    """paho with events instead of sleeps."""

    def __init__(
        self, world: World, dev: Device, version: int = mqtt.MQTTv311, cid: str = ""
    ) -> None:
        self.c = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=cid or dev.name, protocol=version
        )
        self.c.tls_set(str(world.home / "root.pem"), str(dev.cert), str(dev.key))
        self.connected: queue.Queue[Any] = queue.Queue()
        self.closed = threading.Event()
        self.acks: queue.Queue[Any] = queue.Queue()
        self.messages: queue.Queue[Any] = queue.Queue()
        self.subacks: queue.Queue[Any] = queue.Queue()
        self.c.on_connect = lambda c, u, f, rc, p: self.connected.put(rc)
        self.c.on_disconnect = lambda c, u, f, rc, p: self.closed.set()
        self.c.on_publish = lambda c, u, mid, rc, p: self.acks.put((mid, rc))
        self.c.on_message = lambda c, u, m: self.messages.put(m)
        self.c.on_subscribe = lambda c, u, mid, rcs, p: self.subacks.put(rcs)
        self.port = world.broker.port

    def connect(self) -> Any:
        self.c.connect("127.0.0.1", self.port, keepalive=60)
        self.c.loop_start()
        return self.connected.get(timeout=WAIT)

    def stop(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


@pytest.mark.parametrize("version", [mqtt.MQTTv311, mqtt.MQTTv5])
def test_a_device_publishes_qos1_and_the_rules_get_it_before_the_ack(
    world: World, version: int
) -> None:
    dev = world.device("dev-1")
    cl = Client(world, dev, version)
    assert not cl.connect().is_failure
    info = cl.c.publish("iot/sensors/dev-1/data", b'{"t": 21}', qos=1)
    mid, rc = cl.acks.get(timeout=WAIT)
    assert mid == info.mid and not rc.is_failure
    assert world.published.get_nowait() == ("dev-1", "iot/sensors/dev-1/data", b'{"t": 21}')
    cl.stop()


def test_the_puback_waits_until_what_the_rules_stored_is_durable(world: World) -> None:
    durable, waited = threading.Event(), threading.Event()

    def wait() -> None:  # the emulator's wait for an fsync, run off the broker's loop
        waited.set()
        assert durable.wait(WAIT)

    world.durable = wait
    cl = Client(world, world.device("dev-1"))
    assert not cl.connect().is_failure
    cl.c.publish("iot/sensors/dev-1/data", b"{}", qos=1)
    assert waited.wait(WAIT)
    other = Client(world, world.device("dev-2"))  # the loop still serves others meanwhile
    assert not other.connect().is_failure
    with pytest.raises(queue.Empty):
        cl.acks.get(timeout=0.3)  # not acknowledged before it is durable
    durable.set()
    assert not cl.acks.get(timeout=WAIT)[1].is_failure
    cl.stop()
    other.stop()


def test_a_connection_is_read_on_while_its_acks_wait_and_they_come_in_order(
    world: World,
) -> None:
    """The rules take every publish of the in-flight window before the first is durable;
    the PUBACKs then follow in publish order."""
    durable = threading.Event()
    world.durable = lambda: (durable.wait(WAIT), None)[1]
    cl = Client(world, world.device("dev-1"))
    assert not cl.connect().is_failure
    mids = [cl.c.publish("iot/sensors/dev-1/data", b"%d" % i, qos=1).mid for i in range(5)]
    taken = [world.published.get(timeout=WAIT)[2] for _ in range(5)]
    assert taken == [b"0", b"1", b"2", b"3", b"4"]  # all five read while none is durable
    assert cl.acks.empty()
    durable.set()
    acks = [cl.acks.get(timeout=WAIT) for _ in range(5)]
    assert [mid for mid, _ in acks] == mids
    assert not any(rc.is_failure for _, rc in acks)
    assert world.broker.accepted == 5
    cl.stop()


def test_a_refusal_behind_a_waiting_publish_is_acknowledged_after_it(world: World) -> None:
    """MQTT 5: a denied publish's PUBACK (0x87) must not overtake the one ahead of it."""
    durable = threading.Event()
    world.durable = lambda: (durable.wait(WAIT), None)[1]
    cl = Client(world, world.device("dev-1"), mqtt.MQTTv5)
    assert not cl.connect().is_failure
    first = cl.c.publish("iot/sensors/dev-1/data", b"ok", qos=1).mid
    denied = cl.c.publish("iot/sensors/dev-2/data", b"not mine", qos=1).mid
    assert world.published.get(timeout=WAIT)[2] == b"ok"
    with pytest.raises(queue.Empty):
        cl.acks.get(timeout=0.3)  # the refusal waits behind the first publish
    durable.set()
    (mid1, rc1), (mid2, rc2) = cl.acks.get(timeout=WAIT), cl.acks.get(timeout=WAIT)
    assert (mid1, mid2) == (first, denied)
    assert not rc1.is_failure and int(rc2.value) == 0x87
    assert not cl.closed.is_set()
    cl.stop()


def test_a_publish_that_cannot_be_made_durable_is_not_acknowledged(world: World) -> None:
    """MQTT 5 is told with a PUBACK reason code and stays connected; 3.1.1, which has no
    such code, is disconnected, as for any refused publish."""

    def disk_full() -> None:
        raise OSError("No space left on device")

    world.durable = disk_full
    v5 = Client(world, world.device("dev-5"), mqtt.MQTTv5)
    assert not v5.connect().is_failure
    v5.c.publish("iot/sensors/dev-5/data", b"x", qos=1)
    _, rc = v5.acks.get(timeout=WAIT)
    assert rc.is_failure and int(rc.value) == 0x80
    assert not v5.closed.is_set()
    old = Client(world, world.device("dev-3"))
    assert not old.connect().is_failure
    old.c.publish("iot/sensors/dev-3/data", b"x", qos=1)
    assert old.closed.wait(WAIT)
    assert old.acks.empty()
    assert world.broker.accepted == 0
    v5.stop()
    old.stop()


def test_a_subscriber_receives_what_is_published(world: World) -> None:
    a, b = Client(world, world.device("dev-a"), mqtt.MQTTv5), Client(world, world.device("dev-b"))
    a.connect()
    b.connect()
    b.c.subscribe("iot/sensors/+/data", qos=1)
    assert [
        int(rc.value) if hasattr(rc, "value") else rc for rc in b.subacks.get(timeout=WAIT)
    ] == [1]
    a.c.publish("iot/sensors/dev-a/data", b"x", qos=1)
    msg = b.messages.get(timeout=WAIT)
    assert (msg.topic, msg.payload) == ("iot/sensors/dev-a/data", b"x")
    a.stop()
    b.stop()


def test_a_connect_as_another_thing_is_refused(world: World) -> None:
    dev = world.device("dev-1")
    world.device("dev-2")
    for version in (mqtt.MQTTv311, mqtt.MQTTv5):
        cl = Client(world, dev, version, cid="dev-2")
        rc = cl.connect()
        cl.stop()  # no reconnect loop left behind (it would sleep in other tests' time)
        assert rc.is_failure and "authori" in str(rc).lower()


def test_an_unregistered_certificate_is_refused(world: World) -> None:
    cl = Client(world, world.device("ghost", registered=False))
    rc = cl.connect()
    cl.stop()
    assert rc.is_failure


def _tls_handshake(world: World, dev: Device) -> str:
    ctx = ssl.create_default_context(cafile=str(world.home / "root.pem"))
    ctx.load_cert_chain(dev.cert, dev.key)
    try:
        with (
            socket.create_connection(("127.0.0.1", world.broker.port), timeout=WAIT) as raw,
            ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
        ):
            tls.sendall(b"\x10\x00")  # TLS 1.3 reports a refused certificate on first I/O
            return "open" if tls.recv(16) else "closed"
    except (ssl.SSLError, ConnectionError) as exc:
        return f"refused: {exc}"


def test_a_self_signed_or_foreign_certificate_fails_the_tls_handshake(
    world: World, tmp_path: Path
) -> None:
    stranger = EmulatorCA.load_or_create(tmp_path / "stranger")
    dev = world.device("dev-x", ca=stranger)
    assert _tls_handshake(world, dev) != "open"
    assert world.asked == []  # refused by TLS itself: never reached MQTT or the policies


def test_publishing_to_another_devices_topic_is_refused(world: World) -> None:
    world.device("dev-2")
    v5 = Client(world, world.device("dev-1"), mqtt.MQTTv5)
    v5.connect()
    v5.c.publish("iot/sensors/dev-2/data", b"x", qos=1)
    _, rc = v5.acks.get(timeout=WAIT)
    assert rc.is_failure and "authori" in str(rc).lower()  # MQTT 5: PUBACK 0x87
    v5.stop()
    v3 = Client(world, world.device("dev-3"))
    v3.connect()
    v3.c.publish("iot/sensors/dev-2/data", b"x", qos=1)
    assert v3.closed.wait(WAIT)  # 3.1.1: the connection is closed
    assert world.published.empty()


def test_qos2_and_oversized_payloads_are_refused(world: World) -> None:
    q2 = Client(world, world.device("dev-1"))
    q2.connect()
    q2.c.publish("iot/sensors/dev-1/data", b"x", qos=2)
    assert q2.closed.wait(WAIT)
    big = Client(world, world.device("dev-2"), mqtt.MQTTv5)
    big.connect()
    big.c.publish("iot/sensors/dev-2/data", b"x" * (128 * 1024 + 1), qos=1)
    assert big.closed.wait(WAIT)
    assert world.published.empty()


def test_a_second_connection_with_the_same_client_id_closes_the_first(world: World) -> None:
    dev = world.device("dev-1")
    first, second = Client(world, dev), Client(world, dev)
    first.connect()
    second.connect()
    assert first.closed.wait(WAIT)
    second.c.publish("iot/sensors/dev-1/data", b"ok", qos=1)
    second.acks.get(timeout=WAIT)
    assert world.broker.connections == 1
    second.stop()


def test_garbage_closes_that_connection_and_the_broker_keeps_serving(world: World) -> None:
    dev = world.device("dev-1")
    ctx = ssl.create_default_context(cafile=str(world.home / "root.pem"))
    ctx.load_cert_chain(dev.cert, dev.key)
    with (
        socket.create_connection(("127.0.0.1", world.broker.port), timeout=WAIT) as raw,
        ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        tls.sendall(b"\x10\xff\xff\xff\xff\x7f garbage")
        assert tls.recv(16) == b""
    cl = Client(world, dev)
    assert not cl.connect().is_failure
    cl.stop()


def test_durable_waits_share_thread_hops_and_fail_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    from iotpipe.local.broker import waits as server
    from iotpipe.local.broker.waits import DurableWaits

    hops: list[int] = []
    run_all = server._run_all
    monkeypatch.setattr(server, "_run_all", lambda waits: hops.append(len(waits)) or run_all(waits))
    gate = threading.Event()

    def ok() -> None:
        gate.wait(WAIT)

    def full() -> None:
        raise OSError("the disk is full")

    async def main() -> list[object]:
        waits = DurableWaits()
        first = asyncio.ensure_future(waits.wait(ok))
        await asyncio.sleep(0)  # the first group is running (blocked on the gate)
        rest = [asyncio.ensure_future(waits.wait(w)) for w in (ok, full, ok)]
        await asyncio.sleep(0)
        gate.set()
        return await asyncio.gather(first, *rest, return_exceptions=True)

    results = asyncio.run(main())
    assert results[:2] == [None, None] and results[3] is None
    assert isinstance(results[2], OSError)  # only that publish fails
    assert hops == [1, 3]  # two thread hops: the first alone, then the three together
