"""A broker world for tests: an emulator CA, devices, and an authorizer like IoT's registry."""

from __future__ import annotations

import hashlib
import queue
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from iotpipe.local.broker import MqttBroker
from iotpipe.local.ca import EmulatorCA


@dataclass
class Device:
    name: str
    cert: Path
    key: Path


class World:
    """A broker whose authorizer knows certificates by fingerprint, like IoT's registry."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.ca = EmulatorCA.load_or_create(home)
        (home / "root.pem").write_text(self.ca.ca_pem)
        self.owners: dict[str, str] = {}  # certificate id -> thing name
        self.asked: list[str] = []
        self.published: queue.Queue[tuple[str, str, bytes]] = queue.Queue()
        self.durable: Callable[[], None] | None = None
        self.broker = MqttBroker(self.ca.server_context(), self.authorize, self.on_publish)

    def on_publish(self, client_id: str, topic: str, payload: bytes) -> Callable[[], None] | None:
        self.published.put((client_id, topic, payload))
        return self.durable  # what the emulator returns: the wait for an fsync, or None

    def authorize(self, der: bytes, client_id: str, action: str, topic: str | None) -> bool:
        self.asked.append(action)
        owner = self.owners.get(hashlib.sha256(der).hexdigest())
        if owner is None or owner != client_id:
            return False
        if action in ("iot:Connect", "iot:Subscribe", "iot:Receive"):
            return True
        return topic == f"iot/sensors/{client_id}/data"

    def device(self, name: str, registered: bool = True, ca: EmulatorCA | None = None) -> Device:
        cert, _, key = (ca or self.ca).issue_new()
        paths = Device(name, self.home / f"{name}.pem", self.home / f"{name}.key")
        paths.cert.write_text(cert)
        paths.key.write_text(key)
        if registered:
            self.owners[EmulatorCA.fingerprint(cert)] = name
        return paths
