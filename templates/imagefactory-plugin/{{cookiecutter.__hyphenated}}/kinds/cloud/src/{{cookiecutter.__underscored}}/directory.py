"""The provider: a directory on the service's host, among those the operator allows.

A request names it as ``{"directory": "/srv/images/team-a"}`` (or gives the path as a plain
string). The path comes from a network client, so it is accepted only when, with symbolic
links resolved, it is one of the operator's directories (parameter
``{{ cookiecutter.__plugin_id }}_directories``) or below one; the same check runs at POST
(`imagefactory_check_provider`: a 400) and again when the push or delete runs. Pushed images
are written under a new name, never over a file, and never through a link.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from imagefactory_core.plugin import BuildContext, BuildError, ImageView

from .settings import DIRECTORIES, PLUGIN_ID

CHUNK = 8 * 1024 * 1024


def provider_directory(provider: str | Mapping[str, Any],
                       allowed: Sequence[str] | None) -> Path:
    """The directory `provider` names, resolved, if the operator allows it (`allowed`)."""
    given = provider.get("directory") if isinstance(provider, Mapping) else provider
    if not isinstance(given, str) or not given.startswith("/") or "\0" in given:
        raise BuildError('the provider must name an absolute directory: '
                         '{"directory": "/path/on/the/service/host"}')
    where = Path(given).resolve()
    for root in allowed or ():
        top = Path(root).resolve()
        if where == top or top in where.parents:
            return where
    raise BuildError(f"directory {given} is not one pushes may use: the operator lists those "
                     f"in the configuration (plugins.{PLUGIN_ID}.{DIRECTORIES})")


def copy_in(ctx: BuildContext, source: Path, where: Path, name: str) -> Path:
    """Copy `source` into the directory `where` as `name`; nothing is left behind on failure
    or cancellation."""
    if not where.is_dir():
        raise BuildError(f"directory {where} does not exist on the service's host")
    final = where / name
    partial = where / f".{name}.partial"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    total = max(source.stat().st_size, 1)
    done = 0
    try:
        descriptor = os.open(partial, flags, 0o644)
    except FileExistsError:
        raise BuildError(f"{partial} exists already: remove it and push again") from None
    try:
        with os.fdopen(descriptor, "wb") as out, source.open("rb") as data:
            while chunk := data.read(CHUNK):
                ctx.check_cancelled()
                out.write(chunk)
                done += len(chunk)
                ctx.progress(99 * done / total)
            out.flush()
            os.fsync(out.fileno())
        os.link(partial, final)  # fails, rather than replaces, if the name is taken
    except FileExistsError:
        raise BuildError(f"{final} exists already: this push will not replace it") from None
    finally:
        partial.unlink(missing_ok=True)
    return final


def remove(ctx: BuildContext, where: Path, image: ImageView) -> None:
    """Delete the file a push made for `image` from the directory `where`."""
    pushed_to = image.provider_account_identifier
    if pushed_to is not None and Path(pushed_to) != where:
        raise BuildError(f"the image was pushed to {pushed_to}, not {where}: name that "
                         "directory to delete it")
    name = image.identifier_on_provider or ""
    if not name or "/" in name or name.startswith("."):
        raise BuildError(f"{name!r} is not a file name this plugin pushed")
    try:
        (where / name).unlink()
    except FileNotFoundError:
        ctx.log(f"{where / name} is gone already: nothing to delete")
