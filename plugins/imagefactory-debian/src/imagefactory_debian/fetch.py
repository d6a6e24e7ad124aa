"""Download the content of ``type='url'`` files and commands of a template.

The URL is the template's: it is fetched by the host's curl in a build sandbox, through the
sandbox's egress proxy, so it reaches only what the operator's egress policy allows (public
addresses; never the build host's loopback services, link-local cloud metadata or private
networks unless the operator allows them), redirects included, each checked when it connects.
Only http and https, bounded in time and size; the body comes back as a regular file the host
reads without following links.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import uuid

from imagefactory_core.plugin import BuildContext, BuildError, CommandFailed

from .settings import checked_url

TIMEOUT_SECONDS = 60
MAX_BYTES = 1 << 30
_OUT = "/out"


def fetch(ctx: BuildContext, url: str, what: str) -> bytes:
    """The body at `url`; `what` names the template element in errors ("file /etc/motd")."""
    url = checked_url(url, f"{what} URL")
    ctx.log(f"fetching {url} for {what}")
    out = ctx.workdir / f"fetch-{uuid.uuid4().hex}"
    out.mkdir()
    try:
        sandbox = ctx.sandbox(None, host_tools=True, network="egress", outputs=[(out, _OUT)])
        try:
            sandbox.run(["curl", "--fail", "--silent", "--show-error", "--location",
                         "--proto", "=http,https", "--proto-redir", "=http,https",
                         "--max-time", str(TIMEOUT_SECONDS), "--max-filesize", str(MAX_BYTES),
                         "--output", f"{_OUT}/body", url], timeout=TIMEOUT_SECONDS + 30)
        except CommandFailed as error:
            raise BuildError(f"{what}: cannot fetch {url}: {error.output_tail}") from error
        return _read_regular(out / "body", what)
    finally:
        shutil.rmtree(out, ignore_errors=True)


def _read_regular(path: os.PathLike[str], what: str) -> bytes:
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
    try:
        fd = os.open(path, flags)
    except OSError as error:
        if error.errno in (errno.ENOENT, errno.ELOOP):
            raise BuildError(f"{what}: the download left no file") from None
        raise
    with os.fdopen(fd, "rb") as body:
        info = os.fstat(body.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_BYTES:
            raise BuildError(f"{what}: the download is not a file of at most {MAX_BYTES} bytes")
        return body.read()
