"""`send-test --via mqtt`: the simulated fleet published over MQTT, one connection per device.

A device talks MQTT over mutual TLS with its own certificate, as its own thing: so each
identity made by `iotpipe devices add` gets one paho connection (client id = thing name),
and a message goes out on its device's own topic at QoS 1. A message counts as sent when
the broker's PUBACK arrives (on IoT Core and the embedded broker alike, that is after the
rules took it); a refused connection or a missing PUBACK counts it as failed, never lost
silently. Messages whose device has no identity are carried by the identities in turn (the
fleet is built from the identities, so that happens only with --file).
"""

from __future__ import annotations

import ssl
import threading
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

from iotpipe.devices.endpoint import Endpoint, device_dir, endpoint_for
from iotpipe.devices.scheme import thing_name
from iotpipe.errors import UsageError
from iotpipe.fleet import Message
from iotpipe.target import Deployment
from iotpipe.traffic import BatchCounts, topic_for

PUBACK_TIMEOUT_S = 10.0
CONNECT_TIMEOUT_S = 10.0
MAX_PAYLOAD = 128 * 1024


@dataclass(frozen=True)
class Identity:
    """One device's files, as `devices add` wrote them."""

    device_id: str
    cert: Path
    key: Path
    root_ca: Path


def mqtt_sink(dep: Deployment, folder: Path | None = None) -> MqttSink:
    """The sink `send-test --via mqtt` and the MQTT probe use."""
    identities = require_identities(folder or device_dir(dep), dep.names.deployment)
    return MqttSink(
        identities,
        endpoint_for(dep),
        dep.config.iot_rule.topic,
        lambda device_id: thing_name(dep.names, device_id),
    )


def find_identities(folder: Path) -> list[Identity]:
    """Every ``<id>.cert.pem`` with its ``<id>.private.key`` and the folder's root-ca.pem."""
    root = folder / "root-ca.pem"
    if not folder.is_dir() or not root.is_file():
        return []
    found = []
    for cert in sorted(folder.glob("*.cert.pem")):
        device_id = cert.name.removesuffix(".cert.pem")
        key = folder / f"{device_id}.private.key"
        if key.is_file():
            found.append(Identity(device_id, cert, key, root))
    return found


def require_identities(folder: Path, deployment: str) -> list[Identity]:
    found = find_identities(folder)
    if not found:
        raise UsageError(
            f"No device identities in {folder}: --via mqtt sends as real devices. "
            "Add some first, e.g. `iotpipe devices add sensor001` (one per device)."
        )
    return found


class _Connection:
    """One device's paho client; publishes wait for their PUBACK."""

    def __init__(self, ident: Identity, client_id: str, endpoint: Endpoint) -> None:
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311
        )
        self.client.tls_set(
            str(ident.root_ca), str(ident.cert), str(ident.key), tls_version=ssl.PROTOCOL_TLS_CLIENT
        )
        self._ready = threading.Event()
        self.refused: str | None = None
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = lambda *a: self._ready.set()
        self.client.connect(endpoint.host, endpoint.port, keepalive=60)
        self.client.loop_start()
        if not self._ready.wait(CONNECT_TIMEOUT_S):
            self.refused = "ConnectTimeout"
        elif not self.client.is_connected() and self.refused is None:
            self.refused = "ConnectionRefused"

    def _on_connect(self, client: Any, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        if rc.is_failure:
            self.refused = f"Connect{str(rc).title().replace(' ', '')}"
        self._ready.set()

    def publish(self, topic: str, payload: bytes) -> str | None:
        """None when acknowledged, else an error code for the summary."""
        if self.refused:
            return self.refused
        info = self.client.publish(topic, payload, qos=1)
        try:
            info.wait_for_publish(PUBACK_TIMEOUT_S)
        except (RuntimeError, ValueError):
            return "NotConnected"
        return None if info.is_published() else "NoPuback"

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class MqttSink:
    """A `traffic.Sink`: batches of messages, each published by its device's connection."""

    max_records = 50
    max_bytes = 50 * MAX_PAYLOAD

    def __init__(
        self,
        identities: Iterable[Identity],
        endpoint: Endpoint,
        topic_filter: str,
        thing_of: Any,
    ) -> None:
        self._ids = {i.device_id: i for i in identities}
        self._order = list(self._ids)
        self._endpoint, self._filter, self._thing_of = endpoint, topic_filter, thing_of
        self._conns: dict[str, _Connection] = {}
        self._lock = threading.Lock()

    @property
    def device_ids(self) -> list[str]:
        return list(self._order)

    def _connection(self, device_id: str) -> tuple[_Connection, str]:
        if device_id not in self._ids:  # --file: carry it with an identity, deterministically
            device_id = self._order[zlib.crc32(device_id.encode()) % len(self._order)]
        with self._lock:
            conn = self._conns.get(device_id)
            if conn is None:
                thing = self._thing_of(device_id)
                conn = _Connection(self._ids[device_id], thing, self._endpoint)
                self._conns[device_id] = conn
        return conn, self._thing_of(device_id)

    def send(self, batch: list[Message]) -> BatchCounts:
        out = BatchCounts()
        for m in batch:
            if len(m.data) > MAX_PAYLOAD:
                code: str | None = "PayloadTooLarge"
            else:
                conn, thing = self._connection(m.device_id)
                code = conn.publish(topic_for(self._filter, thing), m.data)
            out.count(code)
        return out

    def close(self) -> None:
        for conn in self._conns.values():
            conn.close()
