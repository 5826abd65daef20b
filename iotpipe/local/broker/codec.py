"""MQTT 3.1.1 and 5 packets: the subset a device and IoT Core exchange. Pure functions.

Only what IoT Core supports is decoded (no QoS 2 flow, no AUTH exchange); MQTT 5
properties the broker does not act on are skipped by length, which the format allows.
A malformed packet raises :class:`MalformedPacket` and the server closes that connection.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

CONNECT, CONNACK, PUBLISH, PUBACK = 1, 2, 3, 4
SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK = 8, 9, 10, 11
PINGREQ, PINGRESP, DISCONNECT = 12, 13, 14
V311, V5 = 4, 5

# Reason codes (MQTT 5) and their 3.1.1 CONNACK equivalents where one exists.
NOT_AUTHORIZED = 0x87
BAD_CLIENT_ID = 0x85
UNSUPPORTED_VERSION = 0x84
SESSION_TAKEN_OVER = 0x8E
KEEP_ALIVE_TIMEOUT = 0x8D
PACKET_TOO_LARGE = 0x95
QOS_NOT_SUPPORTED = 0x9B
PROTOCOL_ERROR = 0x82
SUB_FAILURE_311 = 0x80
_CONNACK_311 = {NOT_AUTHORIZED: 5, BAD_CLIENT_ID: 2, UNSUPPORTED_VERSION: 1}


class MalformedPacket(ValueError):
    """The bytes are not the MQTT packet they claim to be."""


@dataclass
class Reader:
    """A cursor over one packet's body."""

    data: bytes
    pos: int = 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise MalformedPacket("packet ends early")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def byte(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        return int(struct.unpack(">H", self.take(2))[0])

    def blob(self) -> bytes:
        return self.take(self.u16())

    def text(self) -> str:
        try:
            return self.blob().decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedPacket("a string is not UTF-8") from exc

    def varint(self) -> int:
        value, shift = 0, 0
        for _ in range(4):
            b = self.byte()
            value |= (b & 0x7F) << shift
            if not b & 0x80:
                return value
            shift += 7
        raise MalformedPacket("variable-length integer longer than 4 bytes")

    def skip_properties(self, version: int) -> None:
        if version == V5:
            self.take(self.varint())

    def rest(self) -> bytes:
        return self.take(len(self.data) - self.pos)

    @property
    def done(self) -> bool:
        return self.pos >= len(self.data)


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _s(text: str) -> bytes:
    raw = text.encode()
    return struct.pack(">H", len(raw)) + raw


def packet(kind: int, flags: int, body: bytes) -> bytes:
    return bytes([kind << 4 | flags]) + varint(len(body)) + body


@dataclass
class Connect:
    version: int
    client_id: str
    keep_alive: int
    clean: bool
    will: Publish | None = None


@dataclass
class Publish:
    topic: str
    payload: bytes
    qos: int = 0
    retain: bool = False
    packet_id: int | None = None


@dataclass
class Subscribe:
    packet_id: int
    filters: list[tuple[str, int]] = field(default_factory=list)


def parse_connect(body: bytes) -> Connect:
    r = Reader(body)
    if r.text() != "MQTT":
        raise MalformedPacket("not MQTT 3.1.1 or 5 (protocol name)")
    version, flags, keep_alive = r.byte(), r.byte(), r.u16()
    if version not in (V311, V5):
        return Connect(version, "", keep_alive, True)
    r.skip_properties(version)
    client_id = r.text()
    will = None
    if flags & 0x04:
        r.skip_properties(version)
        topic, payload = r.text(), r.blob()
        will = Publish(topic, payload, (flags >> 3) & 3, bool(flags & 0x20))
    if flags & 0x80:
        r.blob()  # user name: IoT authenticates by certificate, not by name
    if flags & 0x40:
        r.blob()
    return Connect(version, client_id, keep_alive, bool(flags & 0x02), will)


def parse_publish(flags: int, body: bytes, version: int) -> Publish:
    r = Reader(body)
    qos = (flags >> 1) & 3
    if qos == 3:
        raise MalformedPacket("PUBLISH with QoS 3 (both QoS bits set) [MQTT-3.3.1-4]")
    topic = r.text()
    packet_id = r.u16() if qos else None
    r.skip_properties(version)
    return Publish(topic, r.rest(), qos, bool(flags & 1), packet_id)


def parse_subscribe(body: bytes, version: int) -> Subscribe:
    r = Reader(body)
    sub = Subscribe(r.u16())
    r.skip_properties(version)
    while not r.done:
        sub.filters.append((r.text(), r.byte() & 3))
    if not sub.filters:
        raise MalformedPacket("SUBSCRIBE with no topic filter")
    return sub


def parse_unsubscribe(body: bytes, version: int) -> tuple[int, list[str]]:
    r = Reader(body)
    packet_id = r.u16()
    r.skip_properties(version)
    filters = []
    while not r.done:
        filters.append(r.text())
    return packet_id, filters


def _props(version: int) -> bytes:
    return b"\x00" if version == V5 else b""


SERVER_KEEP_ALIVE = 0x13  # MQTT 5 CONNACK property: the keep-alive the server will use


def connack(
    version: int, reason: int = 0, session_present: bool = False, keep_alive: int | None = None
) -> bytes:
    """``keep_alive``: MQTT 5 only, sent when the server changed the client's request."""
    if version != V5:
        code = _CONNACK_311.get(reason, 5 if reason else 0)
        return packet(CONNACK, 0, bytes([int(session_present), code]))
    props = (
        b"" if keep_alive is None else bytes([SERVER_KEEP_ALIVE]) + struct.pack(">H", keep_alive)
    )
    return packet(CONNACK, 0, bytes([int(session_present), reason]) + varint(len(props)) + props)


def puback(version: int, packet_id: int, reason: int = 0) -> bytes:
    tail = bytes([reason]) + b"\x00" if version == V5 and reason else b""
    return packet(PUBACK, 0, struct.pack(">H", packet_id) + tail)


def suback(version: int, packet_id: int, codes: list[int]) -> bytes:
    return packet(SUBACK, 0, struct.pack(">H", packet_id) + _props(version) + bytes(codes))


def unsuback(version: int, packet_id: int, count: int) -> bytes:
    codes = bytes(count) if version == V5 else b""
    return packet(UNSUBACK, 0, struct.pack(">H", packet_id) + _props(version) + codes)


def publish(version: int, msg: Publish) -> bytes:
    flags = msg.qos << 1 | int(msg.retain)
    pid = struct.pack(">H", msg.packet_id) if msg.qos and msg.packet_id else b""
    return packet(PUBLISH, flags, _s(msg.topic) + pid + _props(version) + msg.payload)


def disconnect(version: int, reason: int) -> bytes:
    return packet(DISCONNECT, 0, bytes([reason, 0]) if version == V5 else b"")


PINGRESP_BYTES = packet(PINGRESP, 0, b"")


def topic_matches(topic_filter: str, topic: str) -> bool:
    """MQTT filter matching; ``#`` does not match the parent topic (IoT Core's rule)."""
    f_parts, t_parts = topic_filter.split("/"), topic.split("/")
    for i, part in enumerate(f_parts):
        if part == "#":
            return len(t_parts) > i
        if i >= len(t_parts) or (part != "+" and part != t_parts[i]):
            return False
    return len(f_parts) == len(t_parts)
