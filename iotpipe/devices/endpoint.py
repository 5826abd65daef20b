"""Where a deployment's devices connect, and the CA they trust there.

On AWS: the account's ``iot:Data-ATS`` endpoint on port 8883 and Amazon Root CA 1. On the
embedded AWS: its broker on 127.0.0.1 and the emulator's CA, which the emulator publishes
at ``GET /_iotpipe/mqtt`` (public facts: a host, a port, a CA certificate).
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from iotpipe.devices.identity import MQTT_PORT, AddResult, Scope, add_device, amazon_root_ca
from iotpipe.errors import IotpipeError
from iotpipe.target import Deployment


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int


def device_dir(dep: Deployment) -> Path:
    """Where `devices add` writes a deployment's device files by default: beside its state
    (so the demo's, in the demo's own home, never land in the user's)."""
    return dep.state.path.parent / "devices" / dep.names.deployment


DEVICE_FILE_ENDINGS = (".cert.pem", ".private.key", "root-ca.pem")


def device_files(dep: Deployment) -> list[Path]:
    """The certificates, private keys and CA that `devices add` wrote in `device_dir`
    (files written elsewhere with ``--out`` are the user's to remove)."""
    folder = device_dir(dep)
    if not folder.is_dir():
        return []
    return sorted(
        p for p in folder.iterdir() if p.is_file() and p.name.endswith(DEVICE_FILE_ENDINGS)
    )


def remove_device_files(dep: Deployment, files: list[Path]) -> None:
    """Delete ``files`` (after ``down`` deleted their certificates) and the folder if empty."""
    for path in files:
        path.unlink(missing_ok=True)
    folder = device_dir(dep)
    if folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()


def local_mqtt(endpoint_url: str) -> dict[str, Any]:
    """The embedded AWS's MQTT endpoint and CA (``GET /_iotpipe/mqtt``: public facts)."""
    url = f"{endpoint_url.rstrip('/')}/_iotpipe/mqtt"
    try:
        with urllib.request.urlopen(url, timeout=10) as reply:  # noqa: S310 - our own http URL
            info: dict[str, Any] = json.loads(reply.read())
    except (OSError, ValueError) as exc:
        raise IotpipeError(
            f"the embedded AWS at {endpoint_url} has no MQTT endpoint ({exc}); "
            "restart it with `iotpipe local stop` and any command"
        ) from exc
    return info


def _embedded(dep: Deployment) -> bool:
    """On the embedded AWS over HTTP (moto in-process, in unit tests, has no broker)."""
    return bool(dep.gateway.local and dep.gateway.endpoint_url)


def endpoint_for(dep: Deployment) -> Endpoint:
    """The embedded broker, or the account's ATS endpoint on port 8883 (never the legacy
    VeriSign ``iot:Data`` one, which Amazon Root CA 1 does not sign)."""
    if _embedded(dep):
        info = local_mqtt(str(dep.gateway.endpoint_url))
        return Endpoint(str(info["host"]), int(info["port"]))
    address = dep.gateway.client("iot").describe_endpoint(endpointType="iot:Data-ATS")
    return Endpoint(str(address["endpointAddress"]), MQTT_PORT)


def root_ca_for(dep: Deployment) -> Callable[[], str] | None:
    """What gives the CA certificate (PEM) a device must trust; None where no device can
    connect (moto in-process, in unit tests)."""
    if _embedded(dep):
        return lambda: str(local_mqtt(str(dep.gateway.endpoint_url))["ca_pem"])
    if dep.gateway.local:
        return None
    return amazon_root_ca


def scope_of(dep: Deployment) -> Scope:
    return Scope(dep.names, dep.config.iot_rule.topic, dep.names.tags(dict(dep.config.tags)))


def add_to(
    dep: Deployment,
    device_id: str,
    attributes: dict[str, str] | None = None,
    out_dir: Path | None = None,
) -> AddResult:
    """`devices add` on a resolved deployment: the device, its files, where it connects."""
    where = endpoint_for(dep)
    return add_device(
        dep.gateway.client("iot"),
        scope_of(dep),
        device_id,
        attributes or {},
        out_dir or device_dir(dep),
        root_ca_for(dep),
        (where.host, where.port),
    )
