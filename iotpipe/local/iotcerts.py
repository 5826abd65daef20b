"""Replacements for moto's IoT certificate and endpoint APIs (registered on the iot service).

moto signs each device certificate with the device's own key, under a made-up issuer, so no
TLS server can verify it against a CA (REFERENCE.md section 6). Here the certificates that
CreateKeysAndCertificate and CreateCertificateFromCsr return are issued by the emulator CA,
the CA the broker trusts, and their certificateId is IoT's (SHA-256 of the DER) whatever
moto's ``iot.use_valid_cert`` says. DescribeEndpoint answers with the broker's host for the
data endpoints, so a device configured from it reaches the broker.

The wiring calls `configure` in the emulator process before the patches serve requests.

moto is reached only through `motointernals` (new_certificate, register_certificate,
new_endpoint), besides a certificate's ``.certificate_id``/``.arn`` and an endpoint's
``.endpoint``, which are the objects' public fields.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from iotpipe.local import motointernals as moto
from iotpipe.local.iotidentity import certificate_id
from iotpipe.local.patching import service

IOT = service("iot")

DATA_ENDPOINT_TYPES = ("iot:Data", "iot:Data-ATS")
COMMON_NAME = "AWS IoT Certificate"  # the subject AWS gives keys it generates


class CertificateAuthority(Protocol):
    """What is needed of ``iotpipe.local.ca.EmulatorCA``."""

    def issue_from_csr(self, csr_pem: str) -> str: ...

    def issue_new(self, common_name: str) -> tuple[str, str, str]: ...


@dataclass
class Settings:
    ca: CertificateAuthority | None = None
    host: str | None = None  # the broker's host, e.g. 127.0.0.1


SETTINGS = Settings()


def configure(*, ca: CertificateAuthority | None = None, host: str | None = None) -> None:
    """Set by the emulator's start-up: the CA that issues device certificates, the host the
    broker listens on."""
    if ca is not None:
        SETTINGS.ca = ca
    if host is not None:
        SETTINGS.host = host


def _ca() -> CertificateAuthority:
    if SETTINGS.ca is None:
        raise RuntimeError("iotcerts.configure(ca=...) was not called in the emulator process")
    return SETTINGS.ca


def _store(backend: Any, pem: str, active: bool) -> Any:
    """A FakeCertificate under IoT's certificateId, in the backend's registry."""
    cert = moto.new_certificate(backend, pem, active)
    der_id = certificate_id(pem)
    if cert.certificate_id != der_id:  # moto hashed the PEM text (iot.use_valid_cert off)
        cert.arn = cert.arn.rsplit("/", 1)[0] + "/" + der_id
        cert.certificate_id = der_id
    moto.register_certificate(backend, der_id, cert)
    return cert


@IOT.patch(moto.IoTBackend, "create_keys_and_certificate")
def create_keys_and_certificate(self: Any, set_as_active: bool) -> tuple[Any, dict[str, str]]:
    """As moto's: (FakeCertificate, {"PublicKey", "PrivateKey"}), the key pair in PEM."""
    cert_pem, public_pem, private_pem = _ca().issue_new(COMMON_NAME)
    cert = _store(self, cert_pem, bool(set_as_active))
    return cert, {"PublicKey": public_pem, "PrivateKey": private_pem}


@IOT.patch(moto.IoTBackend, "create_certificate_from_csr")
def create_certificate_from_csr(self: Any, csr: str, set_as_active: bool) -> Any:
    """As moto's: the FakeCertificate, signed by the emulator CA for the CSR's key."""
    return _store(self, _ca().issue_from_csr(csr), bool(set_as_active))


@IOT.patch(moto.IoTBackend, "describe_endpoint", params="self endpoint_type")
def describe_endpoint(self: Any, endpoint_type: str, host: str | None = None) -> Any:
    """As moto's (a FakeEndpoint; unknown types raise InvalidRequestException), but the data
    endpoints are the broker's host, the same on every call."""
    endpoint = moto.new_endpoint(self, endpoint_type)
    broker = host or SETTINGS.host
    if endpoint_type in DATA_ENDPOINT_TYPES and broker:
        endpoint.endpoint = broker
    return endpoint
