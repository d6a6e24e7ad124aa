"""Download the content of ``type='url'`` files and commands of a template.

Only http and https: a template comes from whoever may call the API, and a ``file:`` URL would
let it copy files of the build host into the image. Downloads are bounded in time and size and
stop within a second of a cancellation.
"""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request

from imagefactory_core.plugin import BuildContext, BuildError

TIMEOUT_SECONDS = 60
MAX_BYTES = 1 << 30
_CHUNK = 1 << 20


def fetch(ctx: BuildContext, url: str, what: str) -> bytes:
    """The body at `url`; `what` names the template element in errors ("file /etc/motd")."""
    url = url.strip()
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise BuildError(f"{what}: only http:// and https:// URLs can be fetched, not '{url}'")
    ctx.log(f"fetching {url} for {what}")
    chunks: list[bytes] = []
    size = 0
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response:
            while chunk := response.read(_CHUNK):
                ctx.check_cancelled()
                size += len(chunk)
                if size > MAX_BYTES:
                    raise BuildError(f"{what}: {url} is larger than {MAX_BYTES} bytes")
                chunks.append(chunk)
    except (urllib.error.URLError, OSError) as error:
        raise BuildError(f"{what}: cannot fetch {url}: {error}") from error
    return b"".join(chunks)
