"""TLS certificate for ``imagefactory serve``: the one the operator gives, or a self-signed one.

DESIGN.md §6: a self-signed certificate is generated at first start so that the service is never
plain HTTP by accident. Clients will not trust it until they are told to (for example
``requests.get(url, verify=cert_path)``), and the warning logged at generation says so.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import logging
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["VALIDITY", "ensure_certificate", "load_check"]

log = logging.getLogger(__name__)

VALIDITY = datetime.timedelta(days=825)
"""The longest validity that Apple's TLS policy accepts, so macOS clients take the certificate."""

# Tolerates a client whose clock is a little behind the server's.
_BACKDATE = datetime.timedelta(minutes=5)


def ensure_certificate(
    cert_path: Path,
    key_path: Path,
    hostnames: Sequence[str] = ("localhost", "127.0.0.1"),
) -> tuple[Path, Path]:
    """Return `(cert_path, key_path)`. If neither file exists, generate a self-signed pair first.

    The certificate names every entry of `hostnames` in its subjectAltName: IP addresses as
    iPAddress entries, everything else as dNSName entries. The key is EC P-256, written with mode
    0600. Each file is written to a temporary file and then renamed, so a crash never leaves a
    half-written file.

    Raises ValueError if only one of the two files exists. A certificate without its key, or a
    key without its certificate, means something is misconfigured. Replacing the file that does
    exist could destroy an operator's real certificate or key.
    """
    cert_path, key_path = Path(cert_path), Path(key_path)
    cert_exists, key_exists = cert_path.exists(), key_path.exists()
    if cert_exists and key_exists:
        return cert_path, key_path
    if cert_exists or key_exists:
        present, missing = (cert_path, key_path) if cert_exists else (key_path, cert_path)
        raise ValueError(
            f"TLS: {present} exists but {missing} does not. Supply the missing file, or remove"
            f" {present} to have a self-signed pair generated."
        )
    if not hostnames:
        raise ValueError("TLS: a self-signed certificate needs at least one hostname")

    key = ec.generate_private_key(ec.SECP256R1())
    cert = _self_signed(key, hostnames)
    _write_atomically(
        key_path,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
        mode=0o600,
    )
    _write_atomically(cert_path, cert.public_bytes(serialization.Encoding.PEM), mode=0o644)
    log.warning(
        "\n%s\nGENERATED A SELF-SIGNED TLS CERTIFICATE for %s\n  certificate: %s\n  key:         %s"
        "\nClients will not trust it unless told to. In production, pass a certificate from a"
        " real CA with --ssl-cert and --ssl-key.\n%s",
        "!" * 78,
        ", ".join(hostnames),
        cert_path,
        key_path,
        "!" * 78,
    )
    return cert_path, key_path


def load_check(cert: Path, key: Path) -> None:
    """Raise ValueError, saying which file and why, unless `cert` and `key` are a usable pair.

    The certificate must be PEM (its first certificate is the server's, any that follow are the
    chain). The key must be an unencrypted PEM private key whose public half is the
    certificate's.
    """
    cert_pem = _read(cert, "certificate")
    key_pem = _read(key, "private key")
    try:
        certificate = x509.load_pem_x509_certificate(cert_pem)
    except ValueError:
        raise ValueError(f"TLS certificate {cert} is not a PEM X.509 certificate") from None
    try:
        private_key = serialization.load_pem_private_key(key_pem, password=None)
    except TypeError:
        raise ValueError(
            f"TLS private key {key} is encrypted. imagefactory needs an unencrypted key, readable"
            " only by its user."
        ) from None
    except (ValueError, UnsupportedAlgorithm):
        raise ValueError(f"TLS private key {key} is not a PEM private key") from None
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    if certificate.public_key().public_bytes(
        serialization.Encoding.DER, spki
    ) != private_key.public_key().public_bytes(serialization.Encoding.DER, spki):
        raise ValueError(f"TLS private key {key} does not match certificate {cert}")


def _self_signed(key: ec.EllipticCurvePrivateKey, hostnames: Sequence[str]) -> x509.Certificate:
    names: list[x509.GeneralName] = []
    for hostname in hostnames:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(hostname)))
        except ValueError:
            names.append(x509.DNSName(hostname))
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostnames[0])])
    now = datetime.datetime.now(datetime.UTC)
    public_key = key.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        # A leaf, not a CA: a client that trusts this certificate does not also trust anything
        # it might sign.
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .sign(key, hashes.SHA256())
    )


def _write_atomically(path: Path, data: bytes, *, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # mkstemp creates the file with mode 0600, so the key is never readable by others, not even
    # for a moment.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _read(path: Path, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as err:
        raise ValueError(f"cannot read TLS {what} {path}: {err.strerror or err}") from None
