"""Who a connecting device is, read from moto's IoT registry, and what it may do.

The broker knows only the client certificate the TLS handshake verified and the client id
of CONNECT. IoT Core decides from its registry: the certificate (by certificateId, the
SHA-256 of the DER) must be ACTIVE; its attached policies are evaluated (`iotauth`) with the
thing named by the client id, if that thing has this certificate as a principal.

The moto internals this reads, all through `motointernals`:

- ``moto.iot.models.iot_backends[account][region]`` (an ``IoTBackend``)
- ``IoTBackend.certificates``: dict certificateId -> ``FakeCertificate`` with
  ``.certificate_id``, ``.arn``, ``.status``, ``.certificate_pem``. The key is SHA-256 of the
  DER only with moto config ``iot.use_valid_cert``; otherwise of the PEM text, so a lookup
  tries both and finally compares DER.
- ``IoTBackend.principal_policies``: dict (principal ARN, policy name) -> (principal,
  ``FakePolicy``); ``FakePolicy.versions`` (``FakePolicyVersion.version_id``,
  ``.document``), ``.default_version_id``, ``.document`` (a JSON string from the API).
- ``IoTBackend.thing_groups``: dict ARN -> ``FakeThingGroup`` with ``.arn``, ``.things``
  (dict thing ARN -> FakeThing), ``.metadata["rootToParentThingGroups"]`` (``groupArn``).
- ``IoTBackend.principal_things``: dict (principal ARN, thing name) -> (principal,
  ``FakeThing``); ``FakeThing.thing_name``, ``.arn``, ``.attributes``, ``.thing_type``
  (``FakeThingType.thing_type_name``).

The dicts are copied with ``list()`` before iterating: moto's request threads mutate them
while the broker reads.
"""

from __future__ import annotations

import functools
import hashlib
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from iotpipe.local import iotauth
from iotpipe.local import motointernals as moto
from iotpipe.poll import Clock

_CACHE_LIMIT = 20_000  # certificates remembered by an Authorizer before it starts over
_ACTIONS = {"iot:Connect", "iot:Publish", "iot:Subscribe", "iot:Receive", "iot:RetainPublish"}


@dataclass(frozen=True)
class Thing:
    """A thing the certificate is attached to. ``policies`` are those attached to its thing
    groups (and their ancestors): IoT applies them only when the client id is this thing."""

    name: str
    thing_type: str | None = None
    attributes: Mapping[str, str] = field(default_factory=dict)
    policies: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True)
class Identity:
    """A registered certificate as IoT sees it at connect time."""

    certificate_id: str
    arn: str
    status: str
    policies: tuple[tuple[str, Any], ...]  # (policy name, default version's document)
    things: tuple[Thing, ...]

    @property
    def active(self) -> bool:
        return self.status == "ACTIVE"

    def thing(self, name: str | None) -> Thing | None:
        return next((t for t in self.things if t.name == name), None)


def to_der(cert: bytes | str) -> bytes:
    """A certificate as DER, from PEM (text or bytes) or DER."""
    if isinstance(cert, bytes) and b"-----BEGIN" not in cert:
        return cert
    text = cert.decode("ascii") if isinstance(cert, bytes) else cert
    return ssl.PEM_cert_to_DER_cert(text.strip())


def certificate_id(cert: bytes | str) -> str:
    """IoT's certificateId: SHA-256 of the DER, hex."""
    return hashlib.sha256(to_der(cert)).hexdigest()


def _backend(account: str, region: str) -> Any:
    return moto.iot_backend(account, region)


@functools.lru_cache(maxsize=8192)
def _pem_fingerprint(pem: str) -> str | None:
    try:
        return certificate_id(pem)
    except (ValueError, UnicodeError):
        return None


def _find_certificate(backend: Any, der: bytes) -> Any | None:
    certificates: dict[str, Any] = moto.certificates(backend)
    der_id = hashlib.sha256(der).hexdigest()
    found = certificates.get(der_id)
    if found is None:  # moto without iot.use_valid_cert keys by the PEM text's hash
        pem = ssl.DER_cert_to_PEM_cert(der)
        found = certificates.get(hashlib.sha256(pem.encode()).hexdigest())
    if found is None:  # registered with other PEM line breaks: compare DER
        found = next(
            (
                c
                for c in list(certificates.values())
                if _pem_fingerprint(c.certificate_pem) == der_id
            ),
            None,
        )
    return found


def _default_document(policy: Any) -> Any:
    for version in list(policy.versions):
        if version.version_id == policy.default_version_id:
            return version.document
    return policy.document


def _policies_of(
    attached: list[tuple[Any, Any]], principals: set[str]
) -> tuple[tuple[str, Any], ...]:
    return tuple(
        (name, _default_document(value[1]))
        for (principal, name), value in attached
        if principal in principals
    )


def _group_arns(backend: Any, thing_arn: str) -> set[str]:
    """The thing's groups and their ancestors (a parent group's policies apply too)."""
    arns: set[str] = set()
    for group in moto.thing_groups(backend):
        if thing_arn in group.things:
            arns.add(group.arn)
            ancestors = group.metadata.get("rootToParentThingGroups", [])
            arns.update(a["groupArn"] for a in ancestors if "groupArn" in a)
    return arns


def _thing(backend: Any, fake: Any, attached: list[tuple[Any, Any]]) -> Thing:
    thing_type = getattr(fake.thing_type, "thing_type_name", None)
    attributes = {str(k): str(v) for k, v in dict(fake.attributes or {}).items()}
    groups = _group_arns(backend, fake.arn)
    policies = _policies_of(attached, groups) if groups else ()
    return Thing(fake.thing_name, thing_type, attributes, policies)


def lookup(account: str, region: str, cert: bytes | str) -> Identity | None:
    """The registered certificate presented, or None if IoT does not know it (deleted,
    never registered, or another account's)."""
    backend = _backend(account, region)
    found = _find_certificate(backend, to_der(cert))
    if found is None:
        return None
    arn = found.arn
    attached = moto.principal_policies(backend)
    things = tuple(
        _thing(backend, value[1], attached)
        for (principal, _name), value in moto.principal_things(backend)
        if principal == arn
    )
    policies = _policies_of(attached, {arn})
    return Identity(found.certificate_id, arn, str(found.status), policies, things)


def context(identity: Identity, client_id: str | None) -> iotauth.Context:
    """The policy context: the ``iot:Connection.Thing.*`` variables resolve only when the
    client id is exactly the name of a thing this certificate is attached to."""
    thing = identity.thing(client_id)
    if thing is None:
        return iotauth.Context(client_id=client_id)
    return iotauth.Context(client_id, thing.name, thing.thing_type, thing.attributes)


def decide(
    identity: Identity | None, client_id: str | None, action: str, target: str | None
) -> iotauth.Decision:
    """The decision for one action; ``target`` is the topic (filter), ignored for Connect."""
    if identity is None or not identity.active:
        return iotauth.Decision.IMPLICIT_DENY
    if action not in _ACTIONS:
        raise ValueError(f"not an IoT data-plane action: {action}")
    _, partition, _, region, account = identity.arn.split(":", 5)[:5]
    resource_target = (client_id or "") if action == "iot:Connect" else target
    if resource_target is None:
        raise ValueError(f"{action} needs a topic")
    resource = iotauth.resource_arn(
        action, resource_target, partition=partition, region=region, account=account
    )
    thing = identity.thing(client_id)
    own = identity.policies + (thing.policies if thing is not None else ())
    documents = [document for _, document in own]
    return iotauth.evaluate(documents, action, resource, context(identity, client_id))


def authorize(
    account: str,
    region: str,
    cert_der: bytes,
    client_id: str | None,
    action: str,
    topic: str | None,
) -> bool:
    """IoT Core's answer now: the registry is read on every call, so a certificate made
    INACTIVE or a policy detached takes effect on the next publish."""
    return decide(lookup(account, region, cert_der), client_id, action, topic).allowed


class Authorizer:
    """`authorize` for a broker's hot path: each certificate's registry entry is read at most
    once per ``max_age`` seconds. Reading it scans every attachment in the account (about
    0.25 ms at 1,000 devices), too slow for every publish at thousands per second; IoT Core
    itself takes minutes to act on a deactivated certificate, so a second is faithful.
    """

    def __init__(
        self, account: str, region: str, *, max_age: float = 1.0, clock: Clock | None = None
    ) -> None:
        self.account, self.region, self.max_age = account, region, max_age
        self.clock = clock or Clock()
        self._cache: dict[bytes, tuple[float, Identity | None]] = {}

    def identity(self, cert_der: bytes) -> Identity | None:
        now = self.clock.now()
        hit = self._cache.get(cert_der)
        if hit is not None and now - hit[0] < self.max_age:
            return hit[1]
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        found = lookup(self.account, self.region, cert_der)
        self._cache[cert_der] = (now, found)
        return found

    def decide(
        self, cert_der: bytes, client_id: str | None, action: str, topic: str | None
    ) -> iotauth.Decision:
        return decide(self.identity(cert_der), client_id, action, topic)

    def __call__(
        self, cert_der: bytes, client_id: str | None, action: str, topic: str | None
    ) -> bool:
        return self.decide(cert_der, client_id, action, topic).allowed


def locate(cert_der: bytes) -> tuple[str, str] | None:
    """(account, region) whose IoT registry holds this certificate: one broker serves every
    region of the emulator, as each region of IoT Core has its own endpoint."""
    for account, region, backend in moto.iot_registries():
        if _find_certificate(backend, cert_der) is not None:
            return account, region
    return None
