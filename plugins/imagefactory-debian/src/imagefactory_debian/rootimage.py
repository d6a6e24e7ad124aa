"""The root file system from the JEOS tree's cached ext4 image, changed by the build's upper layer.

``mkfs.ext4 -d`` of the whole merged tree writes 540 MB of files that every build of a recipe
shares: it was most of a rebuild's time. So a JEOS tree gets ext4 images of itself beside it in
the cache, one per root partition size (``<key>.<bytes>.<digest>.ext4``, for the
`IMAGES_PER_TREE` sizes used last), each made by ``mkfs.ext4 -d`` like a root file system by
the first build that needs it. While a build customises, the other core makes its disk and
copies that image's data into the root partition (`prepare_disk`); then the build applies what
its overlay's upper directory changed
(whiteouts, opaque directories, new and copied-up files with their owners, modes, times,
extended attributes and hard links) with debugfs, gives it the image's UUID and punches holes
where blocks became free (``scripts/root-fs-update.py``, in a sandbox like ``mkfs.ext4 -d``).
The file system holds the same files with the same geometry and features as ``mkfs.ext4 -d``
of the merged tree (a test compares both). What differs: where files lie; the directory hash
seed, which all images made from one cached image share; and a directory that lost entries
keeps its size and the names removed from it in its blocks, as on any ext4 after a deletion
(in the JEOS tree's directories only: apt's package lists, /tmp; never file contents, whose
freed blocks are holes).

When no image can be made, or the upper directory holds what the update cannot write (a
socket, a name with a line break), the build uses ``mkfs.ext4 -d``, and its log says why.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path

from imagefactory_core.plugin import BuildContext, BuildError

from .disk import Extent, Layout, partition, root_fs_command
from .kernel import COPY_FROM_TREE, kernel_output, take_kernel_output
from .namespace import PrivateMounts
from .overlay import Overlay
from .releases import Architecture
from .rootfs import SCRIPTS

IMAGES_PER_TREE = 2
PIECE = 64 << 20  # copied between two checks for cancellation
CANNOT = 3  # root-fs-update.py: the upper directory holds what it cannot write
OPAQUE = b"y"  # overlayfs's mark of a directory that hides the lower one


def image_of(tree: Path, size: int) -> Path:
    """Where the cached image of the JEOS tree `tree` for a root of `size` bytes is kept. The
    name carries a digest of the plugin's mke2fs.conf: a plugin that makes its file systems
    differently does not use the images an earlier one made."""
    settings = hashlib.sha256((SCRIPTS / "mke2fs.conf").read_bytes()).hexdigest()[:12]
    return tree.with_name(f"{tree.name}.{size}.{settings}.ext4")


def prepare_disk(ctx: BuildContext, tree: Path, disk: Path, layout: Layout,
                 arch: Architecture) -> bool:
    """Make `disk` (a new sparse file with `layout`'s partition table) and copy into its root
    partition the data of the JEOS tree `tree`'s image for that root, made first if the cache
    lacks it; on disk (fdatasync) when this returns. False when no image could be had: the
    disk is partitioned, its root empty."""
    partition(ctx, disk, layout, arch)
    try:
        # held open while copied: another build may forget it meanwhile
        source = os.open(image_of(tree, layout.root.size), os.O_RDONLY)
        os.utime(source)  # recently used
    except FileNotFoundError:
        made = _make_image(ctx, tree, layout.root.size)
        if made is None:
            return False
        source = os.open(made, os.O_RDONLY)
    try:
        _copy_data(ctx, source, disk, layout.root.start)
        return True
    finally:
        os.close(source)


def _copy_data(ctx: BuildContext, source: int, disk: Path, offset: int) -> None:
    """The data extents of the file `source` into `disk` at `offset` (holes stay holes)."""
    target = os.open(disk, os.O_WRONLY)
    try:
        size = os.fstat(source).st_size
        position = 0
        while position < size:
            try:
                start = os.lseek(source, position, os.SEEK_DATA)
            except OSError:  # ENXIO: no data after position
                break
            end = os.lseek(source, start, os.SEEK_HOLE)
            while start < end:
                ctx.check_cancelled()
                copied = os.copy_file_range(source, target, min(end - start, PIECE), start,
                                            start + offset)
                if copied == 0:
                    raise BuildError(f"the JEOS image ended while it was copied at {start}")
                start += copied
            position = end
        os.fdatasync(target)
    finally:
        os.close(target)


def _make_image(ctx: BuildContext, tree: Path, size: int) -> Path | None:
    """Write the image (made elsewhere, renamed into place); None if that failed."""
    image = image_of(tree, size)
    staging = image.with_name(f".{image.name}-{uuid.uuid4().hex}")
    try:
        with staging.open("wb") as body:
            body.truncate(size)
        ctx.sandbox(None, host_tools=True,
                    inputs=[(tree, "/tree"), (SCRIPTS / "mke2fs.conf", "/etc/mke2fs.conf")],
                    outputs=[(staging, "/disk")]).run(
            root_fs_command("/tree", "/disk", str(uuid.uuid4()), Extent(0, size)))
        os.chown(staging, 0, 0)
        staging.rename(image)
        ctx.log(f"JEOS image made: {image.name}")
        _forget_older(tree)
        return image
    except Exception as error:  # the build goes on with mkfs.ext4 -d
        ctx.log(f"cannot make the JEOS tree's ext4 image ({error}); this build writes its "
                f"root file system with mkfs.ext4 -d")
        return None
    finally:
        staging.unlink(missing_ok=True)


def _forget_older(tree: Path) -> None:
    """Keep the images of the `IMAGES_PER_TREE` sizes used last. (A build copying one that
    goes keeps reading it: it holds it open; one about to start falls back to mkfs.)"""
    used = []
    for image in tree.parent.glob(f"{tree.name}.*.ext4"):
        try:
            used.append((image.stat().st_mtime, image))
        except FileNotFoundError:  # another build forgot it meanwhile
            continue
    for _, image in sorted(used, reverse=True)[IMAGES_PER_TREE:]:
        image.unlink(missing_ok=True)


def opaque_directories(upper: Path) -> list[str]:
    """The directories of `upper` (paths inside the tree, ``/a/b``) that overlayfs marked
    opaque: in the merged tree they hide what the lower tree has there. The mark is a trusted.*
    attribute, which a sandbox cannot read, so host root reads it here, never following a link
    and without recursion (a template may nest directories deeper than Python recurses)."""
    found = []
    pending = [upper]
    while pending:
        with os.scandir(pending.pop()) as entries:
            for entry in entries:
                if not entry.is_dir(follow_symlinks=False):
                    continue
                pending.append(Path(entry.path))
                try:
                    mark = os.getxattr(entry.path, "trusted.overlay.opaque", follow_symlinks=False)
                except OSError:
                    continue
                if mark == OPAQUE:
                    found.append("/" + os.path.relpath(entry.path, upper))
    return found


def update_root_fs(ctx: BuildContext, mounts: PrivateMounts, layers: Overlay, disk: Path,
                   extent: Extent, uuid_: str, kernel: Path) -> bool:
    """Make the JEOS image that `prepare_disk` copied into `extent` of `disk` the image's root
    file system (the changes of the upper layer of `layers` applied, UUID `uuid_`) and copy the
    kernel into `kernel`. False when mkfs.ext4 -d must write it instead (on a new disk)."""
    work = layers.upper.with_name("root-fs-update")
    work.mkdir()
    opaque = work.with_name("opaque-directories")
    opaque.write_bytes(b"".join(os.fsencode(path) + b"\0"
                                for path in opaque_directories(layers.upper)))
    out = kernel_output(kernel)
    sandbox = ctx.sandbox(None, host_tools=True, enter=mounts.enter,
                          inputs=[(layers.root, "/tree"), (layers.lower, "/lower"),
                                  (layers.upper, "/upper"), (opaque, "/opaque"),
                                  (SCRIPTS / "root-fs-update.py", "/root-fs-update.py")],
                          outputs=[(disk, "/disk"), (out, "/kernel"), (work, "/scratch")])
    update = 'exec /usr/bin/python3 -I /root-fs-update.py "$@"'
    argv = ["/bin/sh", "-c", f"{COPY_FROM_TREE} && {update}", "root-fs-update",
            str(extent.start), uuid_, "/opaque"]
    try:
        done = sandbox.run(argv, check=False)
    finally:
        os.chown(disk, 0, 0)  # the sandbox had it; the image body is the service's again
    if done.returncode != 0:
        if done.returncode != CANNOT:
            ctx.log(f"root-fs-update failed (exit status {done.returncode}); the root file "
                    f"system is written with mkfs.ext4 -d instead")
        return False
    take_kernel_output(out, kernel)
    return True
