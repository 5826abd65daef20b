"""The embedded AWS's certificate authority: one CA for the broker and every device.

On AWS a device trusts Amazon Root CA 1 and IoT Core trusts the certificates it issued.
Locally both sides must chain to something: this CA signs the broker's server certificate
(127.0.0.1 and localhost) and the certificates CreateKeysAndCertificate and
CreateCertificateFromCsr return, so a device configured from `iotpipe devices add` connects
with mutual TLS exactly as it would to IoT Core. It lives under the emulator's home, made
once and loaded after, so device files keep working across restarts. Private keys are
written 0600 from creation and the directory is 0700.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from iotpipe.state import write_private

CA_NAME = "iotpipe embedded AWS CA"
ALPN_IOT = "x-amzn-mqtt-ca"  # IoT Core's ALPN protocol for MQTT with client certs on 443
_VALID = dt.timedelta(days=3650)
_PEM = serialization.Encoding.PEM


def _key_pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        _PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    )


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


@dataclass
class EmulatorCA:
    """The CA's key and certificate; ``home`` is the folder its files live in."""

    home: Path
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    @classmethod
    def load_or_create(cls, home: Path) -> EmulatorCA:
        """The CA under ``home/ca``: loaded when there, made (once, atomically) when not."""
        folder = Path(home) / "ca"
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        key_path, cert_path = folder / "ca.key", folder / "ca.pem"
        if not (key_path.is_file() and cert_path.is_file()):
            key = ec.generate_private_key(ec.SECP256R1())
            cert = _self_signed(key)
            write_private(key_path, _key_pem(key))
            write_private(cert_path, cert.public_bytes(_PEM))
            cert_path.chmod(0o644)  # the CA certificate is public: devices need it
        loaded = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        if not isinstance(loaded, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{key_path} is not this CA's key")
        return cls(folder, loaded, x509.load_pem_x509_certificate(cert_path.read_bytes()))

    @property
    def ca_pem(self) -> str:
        return self.cert.public_bytes(_PEM).decode()

    def _sign(self, subject: x509.Name, public_key: object, *, server: bool) -> x509.Certificate:
        now = dt.datetime.now(dt.UTC)
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.cert.subject)
            .public_key(public_key)  # type: ignore[arg-type]
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + _VALID)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        )
        if server:
            names: list[x509.GeneralName] = [
                x509.DNSName("localhost"),
                x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            ]
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        return builder.sign(self.key, hashes.SHA256())

    def issue_from_csr(self, csr_pem: str) -> str:
        """A device certificate for the key in ``csr_pem`` (CreateCertificateFromCsr)."""
        csr = x509.load_pem_x509_csr(csr_pem.encode())
        if not csr.is_signature_valid:
            raise ValueError("the CSR's signature does not match its public key")
        return self._sign(csr.subject, csr.public_key(), server=False).public_bytes(_PEM).decode()

    def issue_new(self, common_name: str = "AWS IoT Certificate") -> tuple[str, str, str]:
        """(certificate, public key, private key) PEMs: RSA 2048, as CreateKeysAndCertificate."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        cert = self._sign(_name(common_name), key.public_key(), server=False)
        public = key.public_key().public_bytes(
            _PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return cert.public_bytes(_PEM).decode(), public.decode(), _key_pem(key).decode()

    def server_context(self) -> ssl.SSLContext:
        """TLS 1.2+ for the broker: its certificate from this CA, client certificates required
        and verified against this CA (a self-signed or foreign one fails the handshake)."""
        key_path, cert_path = self.home / "server.key", self.home / "server.pem"
        if not (key_path.is_file() and cert_path.is_file()):
            key = ec.generate_private_key(ec.SECP256R1())
            cert = self._sign(_name("localhost"), key.public_key(), server=True)
            write_private(key_path, _key_pem(key))
            write_private(cert_path, cert.public_bytes(_PEM))
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(cert_path, key_path)
        ctx.load_verify_locations(cadata=self.ca_pem)
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.set_alpn_protocols([ALPN_IOT, "mqtt"])
        return ctx

    @staticmethod
    def fingerprint(cert: str | bytes | x509.Certificate) -> str:
        """SHA-256 hex of the DER: what IoT calls the certificateId."""
        if isinstance(cert, x509.Certificate):
            der = cert.public_bytes(serialization.Encoding.DER)
        elif isinstance(cert, str) or cert.lstrip().startswith(b"-----"):
            text = cert.encode() if isinstance(cert, str) else cert
            der = x509.load_pem_x509_certificate(text).public_bytes(serialization.Encoding.DER)
        else:
            der = cert
        return hashlib.sha256(der).hexdigest()


def _self_signed(key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    name = _name(CA_NAME)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + _VALID)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
