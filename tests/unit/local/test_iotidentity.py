"""Device identity on moto's IoT registry (in-process): CA-issued certificates, the broker's
endpoint, and the authorization the broker asks for (certificate status, policies, things)."""

from __future__ import annotations

import datetime
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import boto3
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from moto import mock_aws
from moto.iot.models import IoTBackend

from iotpipe.local import iotcerts, iotidentity

ACCOUNT, REGION = "123456789012", "us-east-1"
THING = "${iot:Connection.Thing.ThingName}"
BASE = f"arn:aws:iot:{REGION}:{ACCOUNT}"
DEVICE_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": "iot:Connect",
            "Resource": f"{BASE}:client/{THING}",
            "Condition": {"Bool": {"iot:Connection.Thing.IsAttached": "true"}},
        },
        {
            "Effect": "Allow",
            "Action": "iot:Publish",
            "Resource": f"{BASE}:topic/iot/sensors/{THING}/data",
        },
    ],
}


def _pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


class StubCA:
    """The EmulatorCA's issuing API (iotpipe/local/ca.py), with EC keys to stay fast."""

    def __init__(self, home: Path) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "stub emulator CA")])
        self.cert = self._sign(self.name, self.key.public_key(), ca=True)
        (home / "ca.pem").write_text(_pem(self.cert))

    def _sign(self, subject: x509.Name, public_key: Any, ca: bool = False) -> x509.Certificate:
        now = datetime.datetime.now(datetime.UTC)
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.name)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )

    def issue_from_csr(self, csr_pem: str) -> str:
        csr = x509.load_pem_x509_csr(csr_pem.encode())
        return _pem(self._sign(csr.subject, csr.public_key()))

    def issue_new(self, common_name: str) -> tuple[str, str, str]:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        public = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        private = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return _pem(self._sign(name, key.public_key())), public.decode(), private.decode()


@pytest.fixture
def ca(tmp_path: Path) -> StubCA:
    return StubCA(tmp_path)


@pytest.fixture
def iot(ca: StubCA, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """moto in-process with the replacements patched in, as the wiring will register them."""
    monkeypatch.setattr(iotcerts, "SETTINGS", iotcerts.Settings())
    iotcerts.configure(ca=ca, host="127.0.0.1")
    with (
        mock_aws(),
        mock.patch.object(
            IoTBackend, "create_keys_and_certificate", iotcerts.create_keys_and_certificate
        ),
        mock.patch.object(
            IoTBackend, "create_certificate_from_csr", iotcerts.create_certificate_from_csr
        ),
        mock.patch.object(IoTBackend, "describe_endpoint", iotcerts.describe_endpoint),
    ):
        yield boto3.client("iot", region_name=REGION)


def _issued_by(ca: StubCA, pem: str) -> x509.Certificate:
    cert = x509.load_pem_x509_certificate(pem.encode())
    cert.verify_directly_issued_by(ca.cert)  # raises if the signature is not the CA's
    return cert


def test_keys_and_certificate_come_from_the_ca(iot: Any, ca: StubCA) -> None:
    out = iot.create_keys_and_certificate(setAsActive=True)
    cert = _issued_by(ca, out["certificatePem"])
    der = cert.public_bytes(serialization.Encoding.DER)
    assert out["certificateId"] == hashlib.sha256(der).hexdigest()
    assert out["certificateArn"] == f"{BASE}:cert/{out['certificateId']}"
    assert cert.subject.rfc4514_string() == "CN=AWS IoT Certificate"
    key = serialization.load_pem_private_key(out["keyPair"]["PrivateKey"].encode(), None)
    assert key.public_key() == cert.public_key()
    assert (
        serialization.load_pem_public_key(out["keyPair"]["PublicKey"].encode()) == cert.public_key()
    )
    described = iot.describe_certificate(certificateId=out["certificateId"])[
        "certificateDescription"
    ]
    assert described["status"] == "ACTIVE"
    assert described["certificatePem"] == out["certificatePem"]


def test_inactive_when_not_set_active(iot: Any) -> None:
    out = iot.create_keys_and_certificate(setAsActive=False)
    assert (
        iot.describe_certificate(certificateId=out["certificateId"])["certificateDescription"][
            "status"
        ]
        == "INACTIVE"
    )


def test_certificate_from_csr_is_for_the_csr_key(iot: Any, ca: StubCA) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "my-device")])
    csr = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
    csr_pem = csr.public_bytes(serialization.Encoding.PEM).decode()
    out = iot.create_certificate_from_csr(certificateSigningRequest=csr_pem, setAsActive=True)
    cert = _issued_by(ca, out["certificatePem"])
    assert cert.public_key() == key.public_key()
    assert out["certificateId"] == iotidentity.certificate_id(out["certificatePem"])
    assert (
        iot.describe_certificate(certificateId=out["certificateId"])["certificateDescription"][
            "status"
        ]
        == "ACTIVE"
    )


def test_data_endpoints_are_the_broker(iot: Any) -> None:
    for endpoint_type in ("iot:Data-ATS", "iot:Data"):
        assert iot.describe_endpoint(endpointType=endpoint_type)["endpointAddress"] == "127.0.0.1"
    assert iot.describe_endpoint()["endpointAddress"] == "127.0.0.1"  # moto's default: ATS
    assert iot.describe_endpoint(endpointType="iot:Jobs")["endpointAddress"].endswith(
        ".amazonaws.com"
    )
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.describe_endpoint(endpointType="iot:Nope")


def test_endpoint_host_can_be_given() -> None:
    backend = mock.Mock(region_name=REGION)
    assert (
        iotcerts.describe_endpoint(backend, "iot:Data-ATS", host="localhost").endpoint
        == "localhost"
    )


def test_unconfigured_ca_is_an_error_that_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(iotcerts, "SETTINGS", iotcerts.Settings())
    with pytest.raises(RuntimeError, match="configure"):
        iotcerts.create_keys_and_certificate(mock.Mock(), True)


def _device(iot: Any, name: str, policy: str = "devices") -> dict[str, Any]:
    """As `devices add` does: thing, active certificate, policy and thing attached."""
    iot.create_thing(thingName=name, attributePayload={"attributes": {"site": "lab"}})
    out = iot.create_keys_and_certificate(setAsActive=True)
    iot.attach_policy(policyName=policy, target=out["certificateArn"])
    iot.attach_thing_principal(thingName=name, principal=out["certificateArn"])
    out["der"] = iotidentity.to_der(out["certificatePem"])
    return dict(out)


@pytest.fixture
def fleet(iot: Any) -> dict[str, dict[str, Any]]:
    iot.create_policy(policyName="devices", policyDocument=json.dumps(DEVICE_POLICY))
    return {name: _device(iot, name) for name in ("dev-1", "dev-2")}


def _auth(der: bytes, client_id: str | None, action: str, topic: str | None = None) -> bool:
    return iotidentity.authorize(ACCOUNT, REGION, der, client_id, action, topic)


@pytest.mark.parametrize(
    ("client_id", "action", "topic", "expected"),
    [
        ("dev-1", "iot:Connect", None, True),
        ("dev-2", "iot:Connect", None, False),  # another device's name: not attached to this cert
        ("someone", "iot:Connect", None, False),
        ("dev-1", "iot:Publish", "iot/sensors/dev-1/data", True),
        ("dev-1", "iot:Publish", "iot/sensors/dev-2/data", False),
        ("dev-2", "iot:Publish", "iot/sensors/dev-2/data", False),
        ("dev-1", "iot:Subscribe", "iot/sensors/dev-1/data", False),
    ],
)
def test_device_policy_on_the_registry(
    fleet: dict[str, dict[str, Any]], client_id: str, action: str, topic: str | None, expected: bool
) -> None:
    assert _auth(fleet["dev-1"]["der"], client_id, action, topic) is expected


def test_identity_lists_policies_and_things(fleet: dict[str, dict[str, Any]]) -> None:
    dev = fleet["dev-1"]
    identity = iotidentity.lookup(ACCOUNT, REGION, dev["certificatePem"])
    assert identity is not None
    assert identity.certificate_id == dev["certificateId"] == hashlib.sha256(dev["der"]).hexdigest()
    assert identity.status == "ACTIVE"
    assert [name for name, _ in identity.policies] == ["devices"]
    assert [(t.name, dict(t.attributes)) for t in identity.things] == [("dev-1", {"site": "lab"})]
    assert iotidentity.lookup("210987654321", REGION, dev["der"]) is None  # another account


@pytest.mark.parametrize("status", ["INACTIVE", "REVOKED"])
def test_only_an_active_certificate_may_connect(
    iot: Any, fleet: dict[str, dict[str, Any]], status: str
) -> None:
    dev = fleet["dev-1"]
    iot.update_certificate(certificateId=dev["certificateId"], newStatus=status)
    assert not _auth(dev["der"], "dev-1", "iot:Connect")
    assert not _auth(dev["der"], "dev-1", "iot:Publish", "iot/sensors/dev-1/data")


def test_a_removed_device_is_refused(iot: Any, fleet: dict[str, dict[str, Any]]) -> None:
    dev = fleet["dev-1"]
    iot.detach_thing_principal(thingName="dev-1", principal=dev["certificateArn"])
    assert not _auth(dev["der"], "dev-1", "iot:Connect")  # no longer attached
    iot.detach_policy(policyName="devices", target=dev["certificateArn"])
    iot.update_certificate(certificateId=dev["certificateId"], newStatus="INACTIVE")
    iot.delete_certificate(certificateId=dev["certificateId"])
    assert iotidentity.lookup(ACCOUNT, REGION, dev["der"]) is None
    assert not _auth(dev["der"], "dev-1", "iot:Connect")


def test_an_unknown_certificate_is_refused(fleet: dict[str, dict[str, Any]], ca: StubCA) -> None:
    stranger, _, _ = ca.issue_new("dev-1")  # even signed by the CA: not registered
    assert not _auth(iotidentity.to_der(stranger), "dev-1", "iot:Connect")


def test_the_default_policy_version_is_the_one_evaluated(
    iot: Any, fleet: dict[str, dict[str, Any]]
) -> None:
    der = fleet["dev-1"]["der"]
    deny = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Deny", "Action": "iot:*", "Resource": "*"}],
    }
    iot.create_policy_version(
        policyName="devices", policyDocument=json.dumps(deny), setAsDefault=False
    )
    assert _auth(der, "dev-1", "iot:Connect")
    iot.set_default_policy_version(policyName="devices", policyVersionId="2")
    assert not _auth(der, "dev-1", "iot:Connect")


def test_certificates_moto_keyed_by_pem_hash_are_found(iot: Any, ca: StubCA) -> None:
    """Certificates registered through moto's own paths (RegisterCertificate without
    iot.use_valid_cert) carry moto's PEM-text id, whatever their line breaks."""
    iot.create_policy(
        policyName="any",
        policyDocument=json.dumps(
            {"Statement": [{"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"}]}
        ),
    )
    for pem in (ca.issue_new("a")[0], ca.issue_new("b")[0].replace("\n", "\r\n")):
        out = iot.register_certificate_without_ca(certificatePem=pem, status="ACTIVE")
        iot.attach_policy(policyName="any", target=out["certificateArn"])
        identity = iotidentity.lookup(ACCOUNT, REGION, iotidentity.to_der(pem))
        assert identity is not None and identity.certificate_id == out["certificateId"]
        assert _auth(iotidentity.to_der(pem), "whoever", "iot:Connect")


def test_der_and_pem_give_one_id(ca: StubCA) -> None:
    pem = ca.issue_new("x")[0]
    der = iotidentity.to_der(pem)
    assert (
        iotidentity.certificate_id(pem)
        == iotidentity.certificate_id(der)
        == iotidentity.certificate_id(pem.encode())
    )
    assert iotidentity.certificate_id(der) == hashlib.sha256(der).hexdigest()


def test_thing_group_policies_apply_to_the_thing_only(iot: Any) -> None:
    """A policy on a parent thing group applies to a member thing's connection."""
    iot.create_policy(policyName="devices", policyDocument=json.dumps({"Statement": []}))
    iot.create_policy(policyName="group", policyDocument=json.dumps(DEVICE_POLICY))
    dev = _device(iot, "dev-1")
    iot.create_thing_group(thingGroupName="fleet")
    child = iot.create_thing_group(thingGroupName="site", parentGroupName="fleet")
    iot.add_thing_to_thing_group(thingGroupName="site", thingName="dev-1")
    assert not _auth(dev["der"], "dev-1", "iot:Connect")
    parent = iot.describe_thing_group(thingGroupName="fleet")["thingGroupArn"]
    iot.attach_policy(policyName="group", target=parent)
    assert child["thingGroupArn"] != parent
    assert _auth(dev["der"], "dev-1", "iot:Connect")
    assert _auth(dev["der"], "dev-1", "iot:Publish", "iot/sensors/dev-1/data")
    assert not _auth(dev["der"], "other", "iot:Connect")


def test_authorizer_rereads_the_registry_after_max_age(
    iot: Any, fleet: dict[str, dict[str, Any]]
) -> None:
    from iotpipe.poll import Clock

    now = [100.0]
    authorizer = iotidentity.Authorizer(
        ACCOUNT, REGION, max_age=1.0, clock=Clock(now=lambda: now[0])
    )
    dev = fleet["dev-1"]
    assert authorizer(dev["der"], "dev-1", "iot:Connect", None)
    iot.update_certificate(certificateId=dev["certificateId"], newStatus="INACTIVE")
    now[0] += 0.5
    assert authorizer(dev["der"], "dev-1", "iot:Connect", None)  # still the entry read at 100.0
    now[0] += 0.5
    assert (
        authorizer.decide(dev["der"], "dev-1", "iot:Connect", None)
        is iotidentity.iotauth.Decision.IMPLICIT_DENY
    )
    assert authorizer(fleet["dev-2"]["der"], "dev-2", "iot:Publish", "iot/sensors/dev-2/data")


def test_with_the_emulator_ca(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The real EmulatorCA (iotpipe/local/ca.py) in place of the stub, once it exists."""
    ca_module = pytest.importorskip("iotpipe.local.ca")
    real = ca_module.EmulatorCA.load_or_create(tmp_path)
    monkeypatch.setattr(iotcerts, "SETTINGS", iotcerts.Settings())
    iotcerts.configure(ca=real)
    with (
        mock_aws(),
        mock.patch.object(
            IoTBackend, "create_keys_and_certificate", iotcerts.create_keys_and_certificate
        ),
    ):
        out = boto3.client("iot", region_name=REGION).create_keys_and_certificate(setAsActive=True)
    cert = x509.load_pem_x509_certificate(out["certificatePem"].encode())
    cert.verify_directly_issued_by(x509.load_pem_x509_certificate(real.ca_pem.encode()))
    assert out["certificateId"] == ca_module.EmulatorCA.fingerprint(cert)
