"""The emulator's CA: made once and reloaded, keys private, and real TLS with client certs."""

from __future__ import annotations

import socket
import ssl
import stat
import threading
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from iotpipe.local.ca import EmulatorCA


def test_the_ca_is_made_once_and_its_keys_are_private(tmp_path: Path) -> None:
    first = EmulatorCA.load_or_create(tmp_path)
    again = EmulatorCA.load_or_create(tmp_path)
    assert first.ca_pem == again.ca_pem
    assert stat.S_IMODE((tmp_path / "ca" / "ca.key").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "ca").stat().st_mode) == 0o700


def test_issued_certificates_chain_to_the_ca_and_have_iot_ids(tmp_path: Path) -> None:
    ca = EmulatorCA.load_or_create(tmp_path)
    cert_pem, public_pem, key_pem = ca.issue_new()
    cert = x509.load_pem_x509_certificate(cert_pem.encode())
    cert.verify_directly_issued_by(ca.cert)
    key = serialization.load_pem_private_key(key_pem.encode(), password=None)
    assert key.key_size == 2048  # type: ignore[union-attr]
    assert "PUBLIC KEY" in public_pem
    der = cert.public_bytes(serialization.Encoding.DER)
    assert EmulatorCA.fingerprint(cert_pem) == EmulatorCA.fingerprint(der)
    assert len(EmulatorCA.fingerprint(cert)) == 64


def test_a_csr_gets_a_certificate_for_its_own_key(tmp_path: Path) -> None:
    ca = EmulatorCA.load_or_create(tmp_path)
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dev-1")]))
        .sign(key, hashes.SHA256())
    )
    pem = ca.issue_from_csr(csr.public_bytes(serialization.Encoding.PEM).decode())
    cert = x509.load_pem_x509_certificate(pem.encode())
    cert.verify_directly_issued_by(ca.cert)
    assert cert.public_key() == key.public_key()


def _handshake(ca: EmulatorCA, client: ssl.SSLContext) -> str:
    """Handshake once against the CA's server context; return the server's view."""
    server = ca.server_context()
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    seen: list[str] = []

    def serve() -> None:
        conn, _ = listener.accept()
        try:
            with server.wrap_socket(conn, server_side=True) as tls:
                seen.append(str(tls.getpeercert()["subject"]))
        except ssl.SSLError as exc:
            seen.append(f"refused: {exc.reason}")
        finally:
            listener.close()

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        with (
            socket.create_connection(("127.0.0.1", port)) as raw,
            client.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
        ):
            tls.getpeercert()
    except (ssl.SSLError, OSError):
        pass
    thread.join(timeout=10)
    return seen[0]


def _client(ca: EmulatorCA, tmp_path: Path, cert_pem: str, key_pem: str) -> ssl.SSLContext:
    (tmp_path / "d.pem").write_text(cert_pem)
    (tmp_path / "d.key").write_text(key_pem)
    ctx = ssl.create_default_context(cadata=ca.ca_pem)
    ctx.load_cert_chain(tmp_path / "d.pem", tmp_path / "d.key")
    return ctx


def test_mutual_tls_accepts_a_ca_issued_device(tmp_path: Path) -> None:
    ca = EmulatorCA.load_or_create(tmp_path)
    cert, _, key = ca.issue_new("AWS IoT Certificate")
    assert "AWS IoT Certificate" in _handshake(ca, _client(ca, tmp_path, cert, key))


def test_mutual_tls_refuses_a_self_signed_device(tmp_path: Path) -> None:
    ca = EmulatorCA.load_or_create(tmp_path)
    other = EmulatorCA.load_or_create(tmp_path / "elsewhere")  # a CA nobody trusts
    cert, _, key = other.issue_new("intruder")
    assert _handshake(ca, _client(ca, tmp_path, cert, key)).startswith("refused")


def test_a_corrupt_key_file_is_a_clear_error(tmp_path: Path) -> None:
    EmulatorCA.load_or_create(tmp_path)
    (tmp_path / "ca" / "ca.key").write_text("not a key")
    with pytest.raises(ValueError):
        EmulatorCA.load_or_create(tmp_path)
