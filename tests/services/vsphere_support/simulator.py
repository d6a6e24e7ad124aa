"""govmomi's vCenter simulator on 127.0.0.1 for the vsphere plugin's tests and its benchmark.

The simulator is a small Go program (``vcsim.go``) built from Debian's govmomi package by
``build.sh`` (cached per machine). It serves TLS with a certificate made here for 127.0.0.1,
so clients verify it against `Simulator.ca_file` as they would a real vCenter's, and accepts
one user. Its inventory is ``simulator.VPX()``'s: datacenter DC0, cluster DC0_C0, datastore
LocalDS_0, network "VM Network". Uploads to its NFC leases are read and discarded. Nothing
here depends on pytest: `bench/push_vsphere` starts the same simulator.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import secrets
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

SUPPORT_DIR = Path(__file__).resolve().parent
USERNAME = "administrator@vsphere.local"
DATACENTER = "DC0"
DATASTORE = "LocalDS_0"
NETWORK = "VM Network"
START_TIMEOUT = 60.0


@dataclass(frozen=True)
class Simulator:
    """A running simulator: `url` is its SDK endpoint (``https://127.0.0.1:PORT/sdk``);
    `log_file` has a line for each NFC upload it received (``transferred N bytes``)."""

    url: str
    username: str
    password: str
    ca_file: Path
    log_file: Path
    datacenter: str = DATACENTER
    datastore: str = DATASTORE
    network: str = NETWORK

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or ""

    @property
    def port(self) -> int:
        return urlsplit(self.url).port or 443


def build() -> Path:
    """The simulator binary, built unless the cached one is current (see build.sh)."""
    done = subprocess.run([SUPPORT_DIR / "build.sh"], capture_output=True, text=True,
                          check=False)
    if done.returncode != 0:
        raise RuntimeError(f"build.sh failed ({done.returncode}):\n{done.stderr[-4000:]}")
    return Path(done.stdout.split()[-1])


def write_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost (it is its own CA)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "imagefactory test vCenter")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName([
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
            critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "vcsim-cert.pem", directory / "vcsim-key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


@contextlib.contextmanager
def running(state: Path) -> Iterator[Simulator]:
    """Start the simulator with its files in `state`; stop it on exit. Its log (the uploads it
    received among them) is ``state/vcsim.log``."""
    binary = build()
    cert_file, key_file = write_certificate(state)
    password = secrets.token_urlsafe(12)
    log_file = state / "vcsim.log"
    log = log_file.open("ab")
    process = subprocess.Popen(
        [binary, "-cert", cert_file, "-key", key_file, "-username", USERNAME,
         "-password", password],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, start_new_session=True)
    try:
        url = _first_line(process, START_TIMEOUT)
        yield Simulator(url=url, username=USERNAME, password=password, ca_file=cert_file,
                        log_file=log_file)
    finally:
        assert process.stdin is not None
        process.stdin.close()  # the simulator ends when its standard input closes
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _first_line(process: subprocess.Popen[bytes], timeout: float) -> str:
    """The URL the simulator prints once it serves."""
    line: list[bytes] = []
    assert process.stdout is not None
    reader = threading.Thread(target=lambda: line.append(process.stdout.readline()),  # type: ignore[union-attr]
                              daemon=True)
    reader.start()
    reader.join(timeout)
    url = line[0].decode().strip() if line else ""
    if not url.startswith("https://"):
        process.kill()
        raise RuntimeError(f"the vCenter simulator did not start within {timeout:.0f} s "
                           f"(exit code {process.poll()}); see its log")
    return url
