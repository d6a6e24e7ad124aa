"""A synthetic Fedora install tree on 127.0.0.1, for the fedora plugin's real builds.

No Fedora mirror is reachable from the test machines, so the tree is made here: its
``images/pxeboot/vmlinuz`` is a real Linux kernel (Debian's cloud kernel, downloaded once with
apt into `shared_cache_dir`), its ``initrd.img`` a small busybox initramfs whose /init
(``fedora_tree_support/init``) acts as the installer: it follows the injected kickstart,
partitions and formats the disk, runs the ``%post`` scripts and powers off (the installed
"system" gets the host's dash as its shell: busybox's shell runs busybox's own rpm applet
before any rpm on PATH). An ISO of the same
files (made with xorriso) and its SHA256SUM serve the ISO path. `FedoraTree.paths` records what
was asked of the server.
"""

from __future__ import annotations

import gzip
import hashlib
import re
import shutil
import subprocess
import tarfile
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

SUPPORT = Path(__file__).with_name("fedora_tree_support")
KERNEL_PACKAGE = "linux-image-cloud-amd64"
# virtio disk, NIC and SCSI CD-ROM, ISO 9660; their dependencies are read from the modules
MODULES = ("virtio_pci", "virtio_blk", "virtio_net", "virtio_scsi", "sr_mod", "isofs")
PAYLOAD = "synthetic install tree payload\n"


def _kernel_package() -> str:
    """The versioned kernel package the meta-package depends on."""
    out = subprocess.run(["apt-cache", "depends", KERNEL_PACKAGE], check=True,
                         capture_output=True, text=True).stdout
    found = re.search(r"Depends: (linux-image-\S+)", out)
    assert found, f"apt-cache knows no {KERNEL_PACKAGE} (run apt-get update):\n{out}"
    return found.group(1)


def _depends(module: bytes) -> list[str]:
    found = re.search(rb"\0depends=([^\0]*)\0", module)
    return [name.decode() for name in found.group(1).split(b",") if name] if found else []


def kernel_files(cache: Path) -> Path:
    """A directory with ``vmlinuz`` and ``modules/`` (+ ``modules.order``, dependencies
    first), from Debian's cloud kernel package (downloaded once)."""
    target = cache / "fedora-synthetic-kernel"
    if (target / "modules.order").is_file():
        return target
    work = cache / "fedora-synthetic-kernel.tmp"
    shutil.rmtree(work, ignore_errors=True)
    (work / "modules").mkdir(parents=True)
    subprocess.run(["apt-get", "download", _kernel_package()], cwd=work, check=True,
                   capture_output=True)
    deb = next(work.glob("linux-image-*.deb"))
    tar_stream = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)],
                                  stdout=subprocess.PIPE)
    available: dict[str, bytes] = {}
    with tarfile.open(fileobj=tar_stream.stdout, mode="r|") as archive:
        for member in archive:
            name = member.name
            if re.fullmatch(r"\./boot/vmlinuz-.*", name):
                (work / "vmlinuz").write_bytes(archive.extractfile(member).read())
            elif name.endswith(".ko") and "/kernel/" in name:
                available[Path(name).stem.replace("-", "_")] = archive.extractfile(member).read()
    assert tar_stream.wait() == 0
    order: list[str] = []

    def add(name: str) -> None:
        if name in order:
            return
        for dependency in _depends(available[name]):
            add(dependency.replace("-", "_"))
        order.append(name)

    for module in MODULES:
        add(module)
    for name in order:
        (work / "modules" / f"{name}.ko").write_bytes(available[name])
    (work / "modules.order").write_text("\n".join(order) + "\n")
    deb.unlink()
    work.rename(target)
    return target


def installer_initrd(kernel: Path) -> bytes:
    """The synthetic installer: busybox, /init and its helpers, the modules."""
    from imagefactory_fedora.initrd import cpio  # only sessions that build Fedora need it

    files = [("init", (SUPPORT / "init").read_bytes(), 0o755),
             ("bin/busybox", Path("/bin/busybox").read_bytes(), 0o755),
             ("dash", Path("/usr/bin/dash").read_bytes(), 0o755),
             ("libc.so.6", Path("/lib/x86_64-linux-gnu/libc.so.6").read_bytes(), 0o755),
             ("ld-linux-x86-64.so.2",
              Path("/lib64/ld-linux-x86-64.so.2").resolve().read_bytes(), 0o755),
             ("rpm", (SUPPORT / "rpm").read_bytes(), 0o755),
             ("dnf", (SUPPORT / "dnf").read_bytes(), 0o755),
             ("udhcpc.script", (SUPPORT / "udhcpc.script").read_bytes(), 0o755),
             ("modules.order", (kernel / "modules.order").read_bytes(), 0o644)]
    files += [(f"modules/{ko.name}", ko.read_bytes(), 0o644)
              for ko in sorted((kernel / "modules").glob("*.ko"))]
    return gzip.compress(cpio(files), compresslevel=6, mtime=0)


class FedoraTree:
    """Serves ``root`` on 127.0.0.1: ``/os/`` is the install tree, ``/iso/`` the ISO."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.paths: list[str] = []
        tree = self

        class Handler(SimpleHTTPRequestHandler):
            def send_head(self):  # type: ignore[no-untyped-def]
                tree.paths.append(self.path)
                return super().send_head()

            def log_message(self, format: str, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0),
                                          partial(Handler, directory=str(root)))
        self.server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.server.server_port}"
        self.url = f"{self.base}/os/"
        self.iso_url = f"{self.base}/iso/synthetic.iso"
        self.checksum_url = f"{self.base}/iso/SHA256SUM"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FedoraTree:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def make_tree(root: Path, kernel: Path) -> None:
    pxeboot = root / "os" / "images" / "pxeboot"
    pxeboot.mkdir(parents=True)
    shutil.copy(kernel / "vmlinuz", pxeboot / "vmlinuz")
    (pxeboot / "initrd.img").write_bytes(installer_initrd(kernel))
    (root / "os" / "installer-payload.txt").write_text(PAYLOAD)
    (root / "os" / ".treeinfo").write_text("[general]\nfamily = Synthetic\nversion = 40\n")
    (root / "iso").mkdir()
    subprocess.run(["xorriso", "-as", "mkisofs", "-quiet", "-R", "-J", "-V", "SYNTHETIC",
                    "-o", str(root / "iso" / "synthetic.iso"), str(root / "os")], check=True,
                   capture_output=True)
    digest = hashlib.sha256((root / "iso" / "synthetic.iso").read_bytes()).hexdigest()
    (root / "iso" / "SHA256SUM").write_text(f"SHA256 (synthetic.iso) = {digest}\n")


@pytest.fixture(scope="session")
def fedora_tree(tmp_path_factory: pytest.TempPathFactory,
                shared_cache_dir: Path) -> Iterator[FedoraTree]:
    root = tmp_path_factory.mktemp("fedora-tree")
    make_tree(root, kernel_files(shared_cache_dir))
    with FedoraTree(root) as tree:
        yield tree
