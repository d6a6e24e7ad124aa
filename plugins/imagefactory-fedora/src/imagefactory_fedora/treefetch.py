"""Downloads: the installer's kernel and initrd from an install tree, an install ISO and its
checksum, and the template's ``type='url'`` files and commands.

Every URL here comes from the template, so the host's curl fetches it in a build sandbox
through the sandbox's egress proxy: it reaches only what the operator's egress policy allows,
redirects included. The result comes back as a regular file that the host opens without
following links. Kernels, initrds and ISOs are cached (`CACHE`, one directory per URL, written
atomically); an ISO whose template names a checksum is verified on every use.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
import uuid
from dataclasses import dataclass
from pathlib import Path

from imagefactory_core.plugin import BuildContext, BuildError, CommandFailed

from .settings import checked_url

CACHE = "fedora-install-media"
SMALL_TIMEOUT = 300
ISO_TIMEOUT = 6 * 3600
SMALL_MAX = 1 << 30
ISO_MAX = 32 << 30
_OUT = "/out"
KERNEL_PLACES = ("images/pxeboot", "isolinux")
_HASHES = {"md5sum": "md5", "sha1sum": "sha1", "sha256sum": "sha256"}


@dataclass(frozen=True)
class BootFiles:
    kernel: Path
    initrd: Path


def download(ctx: BuildContext, url: str, target: Path, what: str, *, via: str | None = None,
             timeout: int = SMALL_TIMEOUT, max_bytes: int = SMALL_MAX) -> Path:
    """Fetch `url` into the regular file `target`; `what` names it in errors."""
    url = checked_url(url, f"{what} URL")
    ctx.log(f"fetching {url} ({what})")
    out = target.parent / f".download-{uuid.uuid4().hex}"
    out.mkdir(parents=True)
    try:
        sandbox = ctx.sandbox(None, host_tools=True, network="egress", outputs=[(out, _OUT)],
                              egress_via=via)
        try:
            sandbox.run(["curl", "--fail", "--silent", "--show-error", "--location",
                         "--proto", "=http,https", "--proto-redir", "=http,https",
                         "--max-time", str(timeout), "--max-filesize", str(max_bytes),
                         "--output", f"{_OUT}/body", url], timeout=timeout + 30)
        except CommandFailed as error:
            raise BuildError(f"{what}: cannot fetch {url}: {error.output_tail.strip()}") \
                from error
        _adopt_regular(out / "body", target, what, max_bytes)
        return target
    finally:
        shutil.rmtree(out, ignore_errors=True)


def _adopt_regular(source: Path, target: Path, what: str, max_bytes: int) -> None:
    """Copy the regular file `source` (never a link) to `target`, owned by root."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
    try:
        fd = os.open(source, flags)
    except OSError:
        raise BuildError(f"{what}: the download left no regular file") from None
    with os.fdopen(fd, "rb") as body:
        info = os.fstat(body.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_size > max_bytes:
            raise BuildError(f"{what}: the download is not a file of at most {max_bytes} bytes")
        partial = target.with_name(f".{target.name}.{uuid.uuid4().hex}")
        with partial.open("wb") as copy:
            shutil.copyfileobj(body, copy, 1 << 20)
    partial.chmod(0o644)
    partial.replace(target)


def fetch_text(ctx: BuildContext, url: str, what: str, via: str | None = None) -> bytes:
    """The body at `url` (a template's url file or command)."""
    scratch = ctx.workdir / "fedora-fetch"
    scratch.mkdir(parents=True, exist_ok=True)
    path = download(ctx, url, scratch / uuid.uuid4().hex, what, via=via)
    try:
        return path.read_bytes()
    finally:
        path.unlink()


def _entry(ctx: BuildContext, url: str) -> Path:
    entry = ctx.cache_dir(CACHE) / hashlib.sha256(url.encode()).hexdigest()[:32]
    entry.mkdir(exist_ok=True)
    return entry


def tree_boot_files(ctx: BuildContext, tree: str, via: str | None = None) -> BootFiles:
    """``images/pxeboot/vmlinuz`` and ``initrd.img`` of the install tree at `tree` (cached)."""
    base = checked_url(tree, "<install><url>").rstrip("/")
    entry = _entry(ctx, base)
    files = BootFiles(entry / "vmlinuz", entry / "initrd.img")
    for name, path in (("vmlinuz", files.kernel), ("initrd.img", files.initrd)):
        if path.is_file():
            ctx.log(f"{name} of {base} from the cache")
        else:
            download(ctx, f"{base}/images/pxeboot/{name}", path, f"the install tree's {name}",
                     via=via)
    return files


def iso(ctx: BuildContext, url: str, checksum_type: str | None, checksum_url: str | None,
        via: str | None = None) -> Path:
    """The install ISO at `url` (cached), verified against the checksum file when given."""
    url = checked_url(url, "<install><iso>")
    entry = _entry(ctx, url)
    path = entry / "install.iso"
    if path.is_file():
        ctx.log(f"{url} from the cache")
    else:
        download(ctx, url, path, "the install ISO", via=via, timeout=ISO_TIMEOUT,
                 max_bytes=ISO_MAX)
    if checksum_type and checksum_url:
        expected = _expected_digest(fetch_text(ctx, checksum_url, f"<{checksum_type}>", via),
                                    url.rsplit("/", 1)[-1], checksum_type)
        digest = hashlib.new(_HASHES[checksum_type])
        with path.open("rb") as image:
            for block in iter(lambda: image.read(1 << 20), b""):
                digest.update(block)
        if digest.hexdigest() != expected:
            path.unlink()
            raise BuildError(f"the ISO {url} does not match its {checksum_type} "
                             f"({digest.hexdigest()} instead of {expected})")
        ctx.log(f"the ISO's {checksum_type} matches {checksum_url}")
    return path


def _expected_digest(text: bytes, filename: str, checksum_type: str) -> str:
    """The digest for `filename` in a checksum file (``HEX  name``, ``HEX *name``, the BSD
    form ``SHA256 (name) = HEX``, or a file holding one digest only)."""
    length = {"md5sum": 32, "sha1sum": 40, "sha256sum": 64}[checksum_type]
    digest = rf"([0-9a-fA-F]{{{length}}})"
    lines = text.decode("utf-8", "replace").splitlines()
    for line in lines:
        gnu = re.fullmatch(rf"{digest}\s+\*?(\S+)\s*", line)
        if gnu and gnu.group(2).rsplit("/", 1)[-1] == filename:
            return gnu.group(1).lower()
        bsd = re.fullmatch(rf"\w+\s*\((.+)\)\s*=\s*{digest}\s*", line)
        if bsd and bsd.group(1).rsplit("/", 1)[-1] == filename:
            return bsd.group(2).lower()
    alone = [line.strip() for line in lines if re.fullmatch(rf"\s*{digest}(\s+\S+)?\s*", line)]
    if len(alone) == 1:
        return alone[0].split()[0].lower()
    raise BuildError(f"the {checksum_type} file has no digest for {filename}")


def iso_boot_files(ctx: BuildContext, image: Path) -> BootFiles:
    """The installer's kernel and initrd out of `image` (cached beside it), read by xorriso
    in a build sandbox: an ISO is the template's data."""
    kernel, initrd = image.with_name("vmlinuz"), image.with_name("initrd.img")
    if kernel.is_file() and initrd.is_file():
        return BootFiles(kernel, initrd)
    out = image.parent / f".extract-{uuid.uuid4().hex}"
    out.mkdir()
    tries = " || ".join(
        f"xorriso -osirrox on -indev /install.iso -extract /{place}/vmlinuz {_OUT}/vmlinuz "
        f"-extract /{place}/initrd.img {_OUT}/initrd.img" for place in KERNEL_PLACES)
    try:
        sandbox = ctx.sandbox(None, host_tools=True, inputs=[(image, "/install.iso")],
                              outputs=[(out, _OUT)])
        try:
            sandbox.run(["/bin/sh", "-c", tries], timeout=SMALL_TIMEOUT)
        except CommandFailed as error:
            raise BuildError("the ISO has no installer kernel and initrd (images/pxeboot/ or "
                             f"isolinux/): is it a Fedora/RHEL boot or DVD ISO?\n"
                             f"{error.output_tail}") from error
        _adopt_regular(out / "initrd.img", initrd, "the ISO's initrd.img", SMALL_MAX)
        _adopt_regular(out / "vmlinuz", kernel, "the ISO's vmlinuz", SMALL_MAX)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return BootFiles(kernel, initrd)
