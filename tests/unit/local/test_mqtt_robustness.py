"""The broker against clients that misbehave below or beside paho: broken TLS records, packets
the MQTT spec calls malformed, a subscriber that never reads, MQTT 5's keep-alive clamp.

Each test speaks raw bytes (or paho) to a real broker on 127.0.0.1:0 and asserts what a
device or the emulator's log would see; each began as a gap a review found.
"""

from __future__ import annotations

import logging
import queue
import socket
import ssl
import struct
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from broker_world import Device, World

from iotpipe.local.broker import codec
from iotpipe.poll import Backoff, until

WAIT = 10.0
TOPIC = "iot/sensors/dev-1/data"


def _connect_packet(client_id: str, version: int = codec.V311, keep_alive: int = 60) -> bytes:
    props = b"\x00" if version == codec.V5 else b""
    cid = client_id.encode()
    body = codec._s("MQTT") + bytes([version, 0x02]) + struct.pack(">H", keep_alive) + props
    return codec.packet(codec.CONNECT, 0, body + struct.pack(">H", len(cid)) + cid)


class RawTLS:
    """A TLS client over a MemoryBIO, so a test can also write bytes that are not TLS."""

    def __init__(self, world: World, dev: Device) -> None:
        ctx = ssl.create_default_context(cafile=str(world.home / "root.pem"))
        ctx.load_cert_chain(dev.cert, dev.key)
        self.sock = socket.create_connection(("127.0.0.1", world.broker.port), timeout=WAIT)
        self.inc, self.out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = ctx.wrap_bio(self.inc, self.out, server_hostname="127.0.0.1")
        while True:
            try:
                self.tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                self._flush()
                self.inc.write(self.sock.recv(65536))
        self._flush()

    def _flush(self) -> None:
        data = self.out.read()
        if data:
            self.sock.sendall(data)

    def send(self, data: bytes) -> None:
        self.tls.write(data)
        self._flush()

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def recv(self) -> bytes:
        """Application bytes, or b"" once the broker has closed the connection."""
        while True:
            try:
                return self.tls.read(65536)
            except ssl.SSLWantReadError:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return b""
                self.inc.write(chunk)
            except (ssl.SSLError, ConnectionError):
                return b""

    def close(self) -> None:
        self.sock.close()


def _closed_log(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "iotpipe.local.broker" and "closed" in r.msg]


def test_a_broken_tls_record_is_one_log_line_and_no_unhandled_error(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    unhandled: list[dict[str, Any]] = []
    world.broker._loop.set_exception_handler(lambda _loop, ctx: unhandled.append(ctx))
    caplog.set_level(logging.INFO, logger="iotpipe.local.broker")
    raw = RawTLS(world, world.device("dev-1"))
    raw.send_raw(b"\x17\x03\x03\x00\x10" + b"\x00" * 16)  # an application record that fails MAC
    assert raw.recv() == b""
    raw.close()
    try:
        until(
            lambda: unhandled or _closed_log(caplog) or None,
            timeout=WAIT,
            backoff=Backoff.fixed(0.02),
        )
    finally:
        world.broker._loop.set_exception_handler(None)
    assert [c.get("message") for c in unhandled] == []
    assert _closed_log(caplog)


def test_a_publish_with_qos_3_is_malformed_and_never_reaches_the_rules(world: World) -> None:
    raw = RawTLS(world, world.device("dev-1"))
    raw.send(_connect_packet("dev-1"))
    assert raw.recv()[:1] == bytes([codec.CONNACK << 4])
    topic = TOPIC.encode()
    body = struct.pack(">H", len(topic)) + topic + struct.pack(">H", 7) + b"x"
    ping = codec.packet(codec.PINGREQ, 0, b"")
    raw.send(codec.packet(codec.PUBLISH, 0b0110, body) + ping)
    try:
        answer = raw.recv()  # PINGRESP if the broker took the publish, b"" if it closed
    finally:
        raw.close()
    assert answer == b""
    assert world.published.empty()


def test_a_connect_with_an_unknown_protocol_level_is_refused_with_code_1(world: World) -> None:
    raw = RawTLS(world, world.device("dev-1"))
    raw.send(_connect_packet("dev-1", version=3))  # MQTT 3.1 ("MQIsdp") is not IoT's
    assert raw.recv() == codec.packet(codec.CONNACK, 0, b"\x00\x01")
    raw.close()


def test_a_second_packet_before_connack_matters_not_and_pings_are_answered(world: World) -> None:
    raw = RawTLS(world, world.device("dev-1"))
    raw.send(_connect_packet("dev-1") + codec.packet(codec.PINGREQ, 0, b""))
    got = b""
    while len(got) < 6:
        chunk = raw.recv()
        assert chunk, "the broker closed a well-behaved connection"
        got += chunk
    assert got == codec.connack(codec.V311) + codec.PINGRESP_BYTES
    raw.close()


class _V5:
    def __init__(self, world: World, dev: Device, keepalive: int) -> None:
        self.props: queue.Queue[Any] = queue.Queue()
        self.c = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=dev.name, protocol=mqtt.MQTTv5
        )
        self.c.tls_set(str(world.home / "root.pem"), str(dev.cert), str(dev.key))
        self.c.on_connect = lambda c, u, f, rc, p: self.props.put((rc, p))
        self.c.connect("127.0.0.1", world.broker.port, keepalive=keepalive)
        self.c.loop_start()

    def stop(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


def test_mqtt5_connack_tells_a_client_its_keep_alive_was_clamped(world: World) -> None:
    cl = _V5(world, world.device("dev-1"), keepalive=3600)
    try:
        rc, props = cl.props.get(timeout=WAIT)
        assert not rc.is_failure
        assert getattr(props, "ServerKeepAlive", None) == 1200
    finally:
        cl.stop()


def test_a_subscriber_that_never_reads_does_not_grow_the_broker_without_bound(
    world: World,
) -> None:
    sub_dev, pub_dev = world.device("dev-sub"), world.device("dev-1")
    sub = RawTLS(world, sub_dev)
    sub.send(_connect_packet("dev-sub"))
    assert sub.recv()[:1] == bytes([codec.CONNACK << 4])
    flt = b"iot/sensors/+/data"
    sub.send(
        codec.packet(codec.SUBSCRIBE, 2, b"\x00\x01" + struct.pack(">H", len(flt)) + flt + b"\x01")
    )
    assert sub.recv()[:1] == bytes([codec.SUBACK << 4])  # and from now on, never read again
    acks: queue.Queue[int] = queue.Queue()
    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="dev-1")
    pub.tls_set(str(world.home / "root.pem"), str(pub_dev.cert), str(pub_dev.key))
    pub.on_publish = lambda c, u, mid, rc, p: acks.put(mid)
    pub.connect("127.0.0.1", world.broker.port)
    pub.loop_start()
    payload, count = b"x" * (120 * 1024), 400  # ~47 MB toward a reader that takes nothing
    try:
        for _ in range(count):
            pub.publish(TOPIC, payload, qos=1)
        for _ in range(count):
            acks.get(timeout=WAIT)
        session = world.broker._sessions.get("dev-sub")
        buffered = session.writer.transport.get_write_buffer_size() if session else 0
        assert buffered <= 8 * 1024 * 1024, f"{buffered} bytes queued for one subscriber"
    finally:
        pub.disconnect()
        pub.loop_stop()
        sub.close()


def test_stop_returns_even_when_a_device_never_answers(world: World) -> None:
    raw = RawTLS(world, world.device("dev-1"))
    raw.send(_connect_packet("dev-1"))
    assert raw.recv()[:1] == bytes([codec.CONNACK << 4])  # connected, then silent
    try:
        world.broker.stop()
    finally:
        raw.close()


def test_the_broker_serves_after_each_misbehaving_client(world: World) -> None:
    dev = world.device("dev-1")
    for junk in (b"\x00\x00", b"\x30\x02\x00\x05", b"\x10\x05\x00\x04MQT", b"\xe0\x00"):
        raw = RawTLS(world, dev)
        raw.send(junk)
        raw.close()
    raw = RawTLS(world, dev)
    raw.send(_connect_packet("dev-1", version=codec.V5))
    assert raw.recv() == codec.connack(codec.V5)
    raw.close()
    assert world.published.empty()  # none of the junk came after a CONNECT
