"""Fedora base images through libvirtd (``libvirt_connection: system``), through the REST API.

The module starts its own libvirtd (and virtlogd) unless one answers already, and stops what
it started. The guest is the same synthetic installer as tests/e2e/test_fedora.py's (whose
service and tree fixtures this module reuses), under TCG: the test machines' KVM cannot run
stock kernels. What is checked is what the embedded driver's tests check, for a QEMU that
libvirtd starts outside any sandbox: it runs as an unprivileged subordinate id of its own with
no capabilities and holds no host file but in its own run directory; the guest reaches the
tree through the egress proxy and nothing else; a cancelled build leaves no domain.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from imagefactory_core.plugin import parse_icicle
from imagefactory_core.sandbox import subordinate_ids
from imagefactory_core.testing import wait_for_status
from imagefactory_fedora.connection import libvirtd_answers
from imagefactory_fedora.guest import SYSTEM_GUEST_IDS, SYSTEM_RUN

from tests.services.fedora_tree import PAYLOAD

from . import test_fedora
from .conftest import build
from .test_fedora import (
    disk_file,
    fast,
    fedora_tdl,
    log_of,
    start_hanging,
    url_install,
)

pytestmark = pytest.mark.slow
# test_fedora's service and client fixtures (a service of this module's own, same config)
fedora_app = test_fedora.fedora_app
client = test_fedora.client

DAEMONS = (("virtlogd", Path("/run/virtlogd.pid")), ("libvirtd", Path("/run/libvirtd.pid")))


def system(extra: dict[str, object] | None = None) -> dict[str, object]:
    return fast({"libvirt_connection": "system", **(extra or {})})


def _domains() -> list[str]:
    out = subprocess.run(["virsh", "-c", "qemu:///system", "list", "--all", "--name"],
                         check=True, capture_output=True, text=True).stdout
    return [name for name in out.split() if name.startswith("imagefactory-")]


@pytest.fixture(scope="module")
def libvirtd() -> Iterator[None]:
    """libvirtd for this module: the one that answers, else one started here (no systemd on
    the test machines) and stopped at the end, by the pid its pid file names."""
    if libvirtd_answers():
        yield
        return
    assert subprocess.run(["id", "libvirt-qemu"], capture_output=True).returncode == 0, \
        "libvirtd needs the user libvirt-qemu: run scripts/bootstrap.sh"
    Path("/var/log/libvirt").mkdir(parents=True, exist_ok=True)
    started = []
    for daemon, pid_file in DAEMONS:
        running = pid_file.read_text().strip() if pid_file.is_file() else ""
        if running.isdigit() and Path(f"/proc/{running}").exists():
            continue  # a virtlogd left running by someone else
        subprocess.run([daemon, "-d"], check=True)
        started.append(pid_file)
    deadline = time.monotonic() + 30
    while not libvirtd_answers():
        assert time.monotonic() < deadline, "libvirtd did not start"
        time.sleep(0.2)
    yield
    for pid_file in reversed(started):
        pid = int(pid_file.read_text())
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.2)


@pytest.mark.usefixtures("libvirtd")
def test_a_url_install_through_libvirtd_completes_and_reaches_only_the_policy(
        fedora_app, client, fedora_tree):
    probes = ",".join([f"{fedora_tree.url}installer-payload.txt",
                       f"{fedora_tree.base.rsplit(':', 1)[0]}:9/",
                       "http://169.254.169.254/latest/meta-data/"])
    image = build(client, "base_images", {
        "template": fedora_tdl(url_install(fedora_tree), name="e2e-system"),
        "parameters": system({"kernel_cmdline": f"synthetic.probe={probes}"})}, timeout=600)
    assert image["status"] == "COMPLETE", image["status_detail"]
    assert image["properties"]["libvirt_connection"] == "system"
    assert image["properties"]["accel"] == "tcg"  # kvm_pvm here: detection chose TCG
    assert disk_file(fedora_app, image, 3, "/etc/motd") == "welcome to e2e-fedora"
    assert "httpd-1.0-1.synthetic.x86_64" in [n for n, _ in parse_icicle(image["icicle"])]
    log = log_of(client, image)
    assert "on qemu:///system" in log
    assert "| synthetic-installer: powering off" in log  # the console streamed in
    # the guest's one way out is the build sandbox's egress proxy, as with the embedded driver
    assert f"probe {fedora_tree.url}installer-payload.txt: reached" in log
    assert "probe http://127.0.0.1:9/: refused (wget: server returned error: HTTP/1.1 403" in log
    assert "sandbox: egress refused: GET 127.0.0.1:9: port 9 is not allowed" in log
    assert "probe http://169.254.169.254/latest/meta-data/: refused" in log
    port = fedora_tree.base.rsplit(":", 1)[1]
    assert f"probe straight to 10.0.2.2:{port}: refused" in log
    assert _domains() == []


@pytest.mark.usefixtures("libvirtd")
def test_an_iso_install_through_libvirtd_completes(fedora_app, client, fedora_tree):
    install = (f"<install type='iso'><iso>{fedora_tree.iso_url}</iso>"
               f"<sha256sum>{fedora_tree.checksum_url}</sha256sum></install>")
    image = build(client, "base_images", {"template": fedora_tdl(install, name="e2e-system-iso"),
                                          "parameters": system()}, timeout=600)
    assert image["status"] == "COMPLETE", image["status_detail"]
    # the installer read the payload from the CD-ROM (the ISO, exported read-only over NBD)
    assert disk_file(fedora_app, image, 3, "/etc/imagefactory-synthetic/payload.txt") == PAYLOAD
    assert "cdrom" in disk_file(fedora_app, image, 3, "/etc/imagefactory-synthetic/kickstart.cfg")


@pytest.mark.usefixtures("libvirtd")
def test_libvirtds_qemu_is_unprivileged_and_a_cancelled_build_leaves_no_domain(
        fedora_app, client, fedora_tree):
    image_id, pid = start_hanging(client, fedora_tree, "e2e-system-cancel",
                                  system({"inactivity_timeout": 600}))
    domains = _domains()
    assert len(domains) == 1 and domains[0].startswith(f"imagefactory-{image_id[:8]}-")
    run = SYSTEM_RUN / domains[0]
    status = Path(f"/proc/{pid}/status").read_text()
    ids = {line.split(":")[0]: line.split()[1:] for line in status.splitlines()}
    # a subordinate id of its own (not libvirt's libvirt-qemu, not 0), owning its run directory
    uid = run.stat().st_uid
    assert uid - subordinate_ids().uid in SYSTEM_GUEST_IDS
    assert ids["Uid"] == [str(uid)] * 4 and ids["Gid"] == [str(run.stat().st_gid)] * 4
    assert ids["CapEff"] == ids["CapPrm"] == ["0000000000000000"]
    # the host files it holds: its run directory (sockets, kernel, initrd), the pid file
    # libvirtd keeps for the domain, device nodes; the disk and the ISO are NBD exports of the
    # build sandbox
    held = {os.readlink(fd) for fd in Path(f"/proc/{pid}/fd").iterdir()}
    files = sorted(path for path in held if path.startswith("/"))
    allowed = (f"{run}/", f"/run/libvirt/qemu/{domains[0]}.pid", "/dev/")
    assert all(path.startswith(allowed) for path in files), files
    assert not any(path.endswith(".body") for path in held)
    href = f"/imagefactory/base_images/{image_id}"
    assert client.simulate_delete(href).status_code == 204
    assert wait_for_status(client, href, timeout=60)["status"] == "DELETED"
    deadline = time.monotonic() + 20
    while (Path(f"/proc/{pid}").exists() or _domains()) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not Path(f"/proc/{pid}").exists()
    assert _domains() == []
    assert not run.exists()
    assert not fedora_app.services.store.body_path(image_id).exists()
