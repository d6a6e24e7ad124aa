"""Self-signed certificate generation and the certificate/key check."""

from __future__ import annotations

import datetime
import ipaddress
import logging
import socket
import ssl
import stat
import threading
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from imagefactory_core.tls import VALIDITY, ensure_certificate, load_check


def pair(root: Path, name: str = "server") -> tuple[Path, Path]:
    return ensure_certificate(root / f"{name}.crt", root / f"{name}.key")


def test_generated_pair_loads_into_an_ssl_context(tmp_path: Path) -> None:
    cert, key = ensure_certificate(tmp_path / "tls" / "server.crt", tmp_path / "tls" / "server.key")
    assert (cert, key) == (tmp_path / "tls" / "server.crt", tmp_path / "tls" / "server.key")
    ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(cert, key)
    load_check(cert, key)


def test_generated_certificate_names_the_hosts_and_lasts_825_days(tmp_path: Path) -> None:
    cert, _ = pair(tmp_path)
    certificate = x509.load_pem_x509_certificate(cert.read_bytes())
    san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    lifetime = certificate.not_valid_after_utc - certificate.not_valid_before_utc
    assert VALIDITY <= lifetime <= VALIDITY + datetime.timedelta(hours=1)
    assert datetime.timedelta(days=825) == VALIDITY
    assert not certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_custom_hostnames_include_ipv6(tmp_path: Path) -> None:
    cert, _ = ensure_certificate(
        tmp_path / "c.pem", tmp_path / "k.pem", ("imagefactory.example.org", "::1", "10.0.0.5")
    )
    certificate = x509.load_pem_x509_certificate(cert.read_bytes())
    san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["imagefactory.example.org"]
    assert san.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("::1"),
        ipaddress.ip_address("10.0.0.5"),
    ]


def test_key_is_private_and_no_temporary_files_remain(tmp_path: Path) -> None:
    _, key = pair(tmp_path)
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert isinstance(
        serialization.load_pem_private_key(key.read_bytes(), None), ec.EllipticCurvePrivateKey
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["server.crt", "server.key"]


def test_existing_pair_is_not_regenerated(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="imagefactory_core.tls")
    cert, key = pair(tmp_path)
    assert "SELF-SIGNED" in caplog.text and str(cert) in caplog.text and str(key) in caplog.text
    before = cert.read_bytes(), key.read_bytes(), cert.stat().st_mtime_ns, key.stat().st_mtime_ns
    caplog.clear()
    assert pair(tmp_path) == (cert, key)
    after = cert.read_bytes(), key.read_bytes(), cert.stat().st_mtime_ns, key.stat().st_mtime_ns
    assert after == before
    assert caplog.text == ""


@pytest.mark.parametrize("missing", ["server.crt", "server.key"])
def test_half_a_pair_is_left_alone(tmp_path: Path, missing: str) -> None:
    cert, key = pair(tmp_path)
    (tmp_path / missing).unlink()
    survivor = key if missing == "server.crt" else cert
    content = survivor.read_bytes()
    with pytest.raises(ValueError, match=f"{missing} does not"):
        pair(tmp_path)
    assert survivor.read_bytes() == content
    assert not (tmp_path / missing).exists()


def test_mismatched_pair_is_detected(tmp_path: Path) -> None:
    cert_a, _ = pair(tmp_path, "a")
    _, key_b = pair(tmp_path, "b")
    with pytest.raises(ValueError, match="does not match"):
        load_check(cert_a, key_b)


def test_unreadable_files_are_reported(tmp_path: Path) -> None:
    cert, key = pair(tmp_path)
    with pytest.raises(ValueError, match="cannot read TLS certificate"):
        load_check(tmp_path / "absent.crt", key)
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    with pytest.raises(ValueError, match=r"not a PEM X\.509 certificate"):
        load_check(garbage, key)
    with pytest.raises(ValueError, match="not a PEM private key"):
        load_check(cert, garbage)


def test_encrypted_key_is_reported(tmp_path: Path) -> None:
    cert, key = pair(tmp_path)
    private_key = serialization.load_pem_private_key(key.read_bytes(), None)
    encrypted = tmp_path / "encrypted.key"
    encrypted.write_bytes(
        private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"passphrase"),
        )
    )
    with pytest.raises(ValueError, match="encrypted"):
        load_check(cert, encrypted)


@pytest.mark.parametrize("hostname", ["localhost", "127.0.0.1"])
def test_client_that_trusts_the_certificate_verifies_the_server(
    tmp_path: Path, hostname: str
) -> None:
    """A real TLS handshake on 127.0.0.1, with strict X.509 checks and hostname checking on."""
    cert, key = pair(tmp_path)
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert, key)
    listener = socket.create_server(("127.0.0.1", 0))
    errors: list[BaseException] = []

    def serve_one() -> None:
        try:
            connection, _ = listener.accept()
            with server_context.wrap_socket(connection, server_side=True) as tls:
                tls.sendall(b"hello")
        except (OSError, ssl.SSLError) as exc:
            errors.append(exc)

    thread = threading.Thread(target=serve_one, daemon=True)
    thread.start()
    client_context = ssl.create_default_context(cafile=str(cert))
    client_context.verify_flags |= ssl.VERIFY_X509_STRICT
    try:
        with (
            socket.create_connection(listener.getsockname(), timeout=10) as raw,
            client_context.wrap_socket(raw, server_hostname=hostname) as tls,
        ):
            assert tls.recv(5) == b"hello"
    finally:
        thread.join(10)
        listener.close()
    assert not errors
