"""Add, list and remove the devices of one deployment (IoT things with a certificate).

``add`` attaches the certificate to the thing before attaching the policy: the private key
is returned only once and is written first, and a certificate attached to its thing can
always be found (and removed) through the thing group, even if the command stops there.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from importlib import resources
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from iotpipe.aws import error_code, is_not_found, tag_list
from iotpipe.devicepolicy import device_topic
from iotpipe.devices.scheme import device_id_of, group_name, policy_name, thing_name
from iotpipe.errors import IotpipeError, UsageError
from iotpipe.naming import Names
from iotpipe.poll import Backoff, Clock, retrying
from iotpipe.state import write_private

MQTT_PORT = 8883
# Detaching a principal is asynchronous on AWS (REFERENCE.md): deletes retry this long.
DETACH_TIMEOUT = 60.0
_STILL_ATTACHED = (
    "InvalidRequestException",
    "DeleteConflictException",
    "CertificateStateException",
)


def amazon_root_ca() -> str:
    """Amazon Root CA 1 (RSA-2048), shipped as package data: the root of IoT Core's ATS
    endpoints, SHA-256 8ecde688...98196e (checked by the tests)."""
    return resources.files("iotpipe").joinpath("data/AmazonRootCA1.pem").read_text()


@dataclass(frozen=True)
class Scope:
    """One deployment as the device commands see it."""

    names: Names
    topic_filter: str  # the config's iot_rule.topic
    tags: Mapping[str, str] = field(default_factory=dict)
    clock: Clock = field(default_factory=Clock)


@dataclass(frozen=True)
class AddResult:
    device_id: str
    thing: str
    created: bool  # False: the device existed, nothing was changed
    endpoint: str
    port: int
    client_id: str
    topic: str
    certificate_id: str | None
    cert_path: Path
    key_path: Path
    root_ca_path: Path | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "device_id": self.device_id,
            "thing": self.thing,
            "created": self.created,
            "endpoint": self.endpoint,
            "port": self.port,
            "client_id": self.client_id,
            "topic": self.topic,
            "certificate_id": self.certificate_id,
            "cert": str(self.cert_path),
            "private_key": str(self.key_path),
            "root_ca": str(self.root_ca_path) if self.root_ca_path else None,
        }


@dataclass(frozen=True)
class DeviceInfo:
    device_id: str
    thing: str
    attributes: dict[str, str]
    certificates: list[tuple[str, str]]  # (certificate id, status)

    def to_dict(self) -> dict[str, Any]:
        return {
            "device_id": self.device_id,
            "thing": self.thing,
            "attributes": self.attributes,
            "certificates": [{"id": c, "status": s} for c, s in self.certificates],
        }


def key_paths(out_dir: Path, device_id: str) -> tuple[Path, Path, Path]:
    return (
        out_dir / f"{device_id}.cert.pem",
        out_dir / f"{device_id}.private.key",
        out_dir / "root-ca.pem",
    )


def ensure_group(iot: Any, scope: Scope) -> None:
    """The deployment's thing group (tagged), how every command finds its things."""
    try:
        iot.create_thing_group(thingGroupName=group_name(scope.names), tags=tag_list(scope.tags))
    except ClientError as exc:
        if error_code(exc) != "ResourceAlreadyExistsException":
            raise


def _principals(iot: Any, thing: str) -> list[str]:
    pages = iot.get_paginator("list_thing_principals").paginate(thingName=thing)
    return [arn for page in pages for arn in page.get("principals", [])]


def _describe_thing(iot: Any, thing: str) -> dict[str, Any] | None:
    try:
        return dict(iot.describe_thing(thingName=thing))
    except ClientError as exc:
        if is_not_found(exc):
            return None
        raise


def _check_policy(iot: Any, scope: Scope) -> None:
    try:
        iot.get_policy(policyName=policy_name(scope.names))
    except ClientError as exc:
        if is_not_found(exc):
            raise IotpipeError(
                f"The device policy {policy_name(scope.names)} does not exist yet: "
                "run 'iotpipe up' first."
            ) from None
        raise


def add_device(
    iot: Any,
    scope: Scope,
    device_id: str,
    attributes: Mapping[str, str],
    out_dir: Path,
    root_ca: Callable[[], str] | None,
    endpoint: tuple[str, int] | None = None,
) -> AddResult:
    """Create the device, or report the existing one unchanged (never a second
    certificate). ``root_ca`` gives the CA PEM devices trust (Amazon Root CA 1 on AWS, the
    emulator's CA locally); None writes no root-ca.pem."""
    thing = thing_name(scope.names, device_id)
    _writable(out_dir)  # before any AWS call: a private key is returned only once
    _check_policy(iot, scope)
    current = _describe_thing(iot, thing)
    principals = _principals(iot, thing) if current is not None else []
    cert_id: str | None = principals[0].rsplit("/", 1)[-1] if principals else None
    cert_path, key_path, ca_path = key_paths(out_dir, device_id)
    created = not principals
    if created:
        if current is None:
            iot.create_thing(thingName=thing, attributePayload={"attributes": dict(attributes)})
        ensure_group(iot, scope)
        iot.add_thing_to_thing_group(thingGroupName=group_name(scope.names), thingName=thing)
        cert_id = _issue_certificate(iot, scope, thing, cert_path, key_path)
    ca_written: Path | None = None
    if root_ca is not None and (created or not ca_path.exists()):
        _write_public(ca_path, root_ca())
        ca_written = ca_path
    elif ca_path.exists():
        ca_written = ca_path
    if endpoint is None:
        address = iot.describe_endpoint(endpointType="iot:Data-ATS")["endpointAddress"]
        endpoint = (str(address), MQTT_PORT)
    return AddResult(
        device_id, thing, created, endpoint[0], endpoint[1], thing,
        device_topic(scope.topic_filter, thing), cert_id, cert_path, key_path, ca_written,
    )  # fmt: skip


def _write_public(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.write_text(text)


def _writable(folder: Path) -> None:
    """The folder exists (0700) and takes a private file, or a UsageError says why."""
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        probe = folder / f".iotpipe-write-check.{os.getpid()}"
        write_private(probe, "")
        probe.unlink()
    except OSError as exc:
        raise UsageError(
            f"Cannot write the device's files to {folder}: {exc.strerror or exc}. "
            "Nothing was created; choose another folder with --out."
        ) from None


def _issue_certificate(iot: Any, scope: Scope, thing: str, cert_path: Path, key_path: Path) -> str:
    made = iot.create_keys_and_certificate(setAsActive=True)
    try:
        write_private(key_path, made["keyPair"]["PrivateKey"])  # returned only this once
        _write_public(cert_path, made["certificatePem"])
    except OSError as exc:  # a key nobody holds must not stay an active certificate
        iot.update_certificate(certificateId=made["certificateId"], newStatus="INACTIVE")
        iot.delete_certificate(certificateId=made["certificateId"])
        raise IotpipeError(
            f"Could not write {key_path} ({exc.strerror or exc}); the new certificate was "
            "deleted. Run the command again once the folder is writable."
        ) from None
    arn = made["certificateArn"]
    iot.attach_thing_principal(thingName=thing, principal=arn)
    iot.attach_policy(policyName=policy_name(scope.names), target=arn)
    return str(made["certificateId"])


def group_things(iot: Any, scope: Scope) -> list[str]:
    """Every thing of the deployment ([] when its group does not exist)."""
    pages = iot.get_paginator("list_things_in_thing_group").paginate(
        thingGroupName=group_name(scope.names)
    )
    try:
        return sorted(thing for page in pages for thing in page.get("things", []))
    except ClientError as exc:
        if is_not_found(exc):
            return []
        raise


def list_devices(iot: Any, scope: Scope) -> list[DeviceInfo]:
    out = []
    for thing in group_things(iot, scope):
        described = _describe_thing(iot, thing)
        if described is None:
            continue
        certs = []
        for arn in _principals(iot, thing):
            cert_id = arn.rsplit("/", 1)[-1]
            desc = iot.describe_certificate(certificateId=cert_id)["certificateDescription"]
            certs.append((cert_id, str(desc.get("status"))))
        attrs = {str(k): str(v) for k, v in described.get("attributes", {}).items()}
        out.append(DeviceInfo(device_id_of(scope.names, thing), thing, attrs, certs))
    return out


def remove_device(iot: Any, scope: Scope, device_id: str) -> bool:
    """Tear one device down; False if it did not exist."""
    return teardown_thing(iot, scope, thing_name(scope.names, device_id))


def teardown_thing(iot: Any, scope: Scope, thing: str) -> bool:
    """AWS's teardown order (REFERENCE.md section 6): detach each certificate from the
    thing and from its policies, make it INACTIVE, delete it, then delete the thing.
    Deletes retry while AWS still sees the (asynchronous) detach as attached."""
    if _describe_thing(iot, thing) is None:
        return False
    for arn in _principals(iot, thing):
        cert_id = arn.rsplit("/", 1)[-1]
        iot.detach_thing_principal(thingName=thing, principal=arn)
        pages = iot.get_paginator("list_attached_policies").paginate(target=arn)
        for page in pages:
            for policy in page.get("policies", []):
                iot.detach_policy(policyName=policy["policyName"], target=arn)
        iot.update_certificate(certificateId=cert_id, newStatus="INACTIVE")
        _retry_attached(scope, partial(iot.delete_certificate, certificateId=cert_id))
    _retry_attached(scope, lambda: iot.delete_thing(thingName=thing))
    return True


def _retry_attached(scope: Scope, call: Callable[[], Any]) -> None:
    def still_attached(exc: Exception) -> bool:
        return isinstance(exc, ClientError) and error_code(exc) in _STILL_ATTACHED

    try:
        retrying(
            call,
            retry_if=still_attached,
            timeout=DETACH_TIMEOUT,
            backoff=Backoff(first=0.5, cap=5.0),
            clock=scope.clock,
        )
    except ClientError as exc:
        if not is_not_found(exc):
            raise


def remove_all(iot: Any, scope: Scope) -> list[str]:
    """Every thing of the deployment and its certificates, then the group: ``down``."""
    removed = [thing for thing in group_things(iot, scope) if teardown_thing(iot, scope, thing)]
    try:
        iot.delete_thing_group(thingGroupName=group_name(scope.names))
    except ClientError as exc:
        if not is_not_found(exc):
            raise
    return removed
