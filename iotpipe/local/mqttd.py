"""The emulator's MQTT service: the CA, the broker, IoT's authorization and the rules.

One broker on 127.0.0.1 serves every account and region of the emulator (on AWS each
region has its own endpoint): a connecting certificate is looked up in the registries to
find its account and region, whose policies then decide, and whose topic rules run for
each accepted publish, exactly as an HTTP publish runs them (`iotrules.on_publish`).
"""

from __future__ import annotations

import resource
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from iotpipe.local import iotcerts, iotidentity, iotrules, kinesisstore
from iotpipe.local.broker import MqttBroker
from iotpipe.local.ca import EmulatorCA

HOST = "127.0.0.1"
MAX_REMEMBERED = 20_000  # certificates whose region is remembered before starting over
DEFAULT_PORT = 0  # any free port: several emulators (tests, demo) may run side by side


@dataclass
class _Where:
    account: str
    region: str
    authorizer: iotidentity.Authorizer


class RegionalAuthorizer:
    """Finds each certificate's account and region once, then asks that region's policies;
    remembers which client id connected where, for the rules of its publishes."""

    def __init__(self) -> None:
        self._by_cert: dict[bytes, _Where] = {}
        self._authorizers: dict[tuple[str, str], iotidentity.Authorizer] = {}
        self._by_client: dict[str, tuple[str, str]] = {}
        self._lock = threading.Lock()

    def _where(self, cert_der: bytes) -> _Where | None:
        hit = self._by_cert.get(cert_der)
        if hit is not None:
            return hit
        found = iotidentity.locate(cert_der)
        if found is None:
            return None  # unknown (or deleted): looked up again next time
        with self._lock:
            if len(self._by_cert) >= MAX_REMEMBERED:
                self._by_cert.clear()
            auth = self._authorizers.setdefault(found, iotidentity.Authorizer(*found))
            where = _Where(found[0], found[1], auth)
            self._by_cert[cert_der] = where
        return where

    def __call__(self, cert_der: bytes, client_id: str, action: str, topic: str | None) -> bool:
        where = self._where(cert_der)
        if where is None or not where.authorizer(cert_der, client_id, action, topic):
            return False
        if action == "iot:Connect":
            self._by_client[client_id] = (where.account, where.region)
        return True

    def on_publish(self, client_id: str, topic: str, payload: bytes) -> Callable[[], None] | None:
        """Run the rules (on the broker's loop); what they put becomes durable off it."""
        account, region = self._by_client[client_id]
        iotrules.on_publish(account, region, topic, payload, client_id)
        pending = kinesisstore.take_pending()
        return (lambda: kinesisstore.wait_for(pending)) if pending else None


def raise_open_files_limit(wanted: int = 65536) -> int:
    """A broker holds one socket per device: lift the soft limit on open files (often 1,024,
    which a fleet of a few hundred devices reaches) up to the hard one. Returns the limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        return target
    return soft


class MqttService:
    """Started by the emulator after its patches; `info()` goes into local.json and status."""

    def __init__(self, home: Path, port: int = DEFAULT_PORT) -> None:
        self.max_open_files = raise_open_files_limit()
        self.ca = EmulatorCA.load_or_create(home)
        iotcerts.configure(ca=self.ca, host=HOST)
        self.auth = RegionalAuthorizer()
        self.broker = MqttBroker(
            self.ca.server_context(), self.auth, self.auth.on_publish, host=HOST, port=port
        )

    def start(self) -> None:
        self.broker.start()

    def stop(self) -> None:
        self.broker.stop()

    def info(self) -> dict[str, Any]:
        return {
            "host": HOST,
            "port": self.broker.port,
            "ca": str(self.ca.home / "ca.pem"),
            "connections": self.broker.connections,
            "accepted": self.broker.accepted,
            "max_open_files": self.max_open_files,
        }
