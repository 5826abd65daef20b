"""One MQTT connection's state in the broker: who it is, what it subscribed to, and the
publishes waiting for their PUBACK (in order: `MqttBroker._acknowledge` sends them)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import iotpipe.local.broker.codec as codec
from iotpipe.local.broker.codec import Publish

KEEP_ALIVE_BOUNDS = (30, 1200)


@dataclass(eq=False)
class Session:
    writer: asyncio.StreamWriter
    cert: bytes
    version: int = codec.V311
    client_id: str = ""
    will: Publish | None = None
    filters: dict[str, int] = field(default_factory=dict)
    next_id: int = 0
    keep_alive: int = KEEP_ALIVE_BOUNDS[1]
    dropped: int = 0  # deliveries dropped because the subscriber did not read
    # publishes the rules took, in order, with their waits; `MqttBroker._acknowledge` acks
    acks: asyncio.Queue[tuple[Publish, asyncio.Future[None] | None]] | None = None
    acker: asyncio.Task[None] | None = None
    unacked: int = 0  # in ``acks`` or being finished

    def send(self, data: bytes) -> None:
        if not self.writer.is_closing():
            self.writer.write(data)

    def packet_id(self) -> int:
        self.next_id = self.next_id % 65535 + 1
        return self.next_id
