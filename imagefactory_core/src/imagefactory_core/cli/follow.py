"""Follow builds to their end: status polled, build log streamed, both shown as they come.

For each image (a cascade follows its parents first) one thread reads
``GET …/log?follow=true`` line by line while this one polls the image's status; every line
and status is shown from this thread only. The service ends the log stream once the image has
settled, after its last line, so the log is complete when following returns. Where the log
cannot be followed (every follower slot of the service is taken: 503; or an unsigned client
and a service that signs logs: 401) the status is still followed and the reason shown.
"""

from __future__ import annotations

import codecs
import contextlib
import queue
import threading
import time
from collections.abc import Sequence
from typing import Any

import requests

from .api import SETTLED, Api, ApiError
from .display import Display, label
from .errors import CliError

POLL_SECONDS = 0.5
LOG_END_SECONDS = 30.0  # after the image settled, for the service to send the log's tail
_END = object()  # the log reader is done


def _read_log(api: Api, collection: str, image_id: str, out: queue.Queue[object]) -> None:
    """Put each line of the followed log on `out`, then any CliError, then `_END`."""
    try:
        with api.log(collection, image_id, follow=True) as response:
            decoder = codecs.getincrementaldecoder("utf-8")("replace")
            pending = ""
            for chunk in response.iter_content(None):
                pending += decoder.decode(chunk)
                *lines, pending = pending.split("\n")
                for line in lines:
                    out.put(line)
            pending += decoder.decode(b"", final=True)
            if pending:
                out.put(pending)
    except CliError as exc:
        out.put(exc)
    except requests.RequestException as exc:  # the connection broke while reading
        out.put(CliError(f"the log stream broke off ({exc.__class__.__name__})"))
    finally:
        out.put(_END)


def follow_image(api: Api, collection: str, image: dict[str, Any],
                 display: Display) -> dict[str, Any]:
    """Show `image`'s status and log until it settles; return its final state."""
    lines: queue.Queue[object] = queue.Queue()
    reader = threading.Thread(target=_read_log, name=f"log {image['id']}", daemon=True,
                              args=(api.separate(), collection, image["id"], lines))
    reader.start()
    reading = True
    unread: CliError | None = None

    def show(item: object) -> None:
        nonlocal reading, unread
        if item is _END:
            reading = False
        elif isinstance(item, CliError):
            unread = item
        else:
            display.log(str(item))

    next_poll = 0.0
    while True:
        if time.monotonic() >= next_poll:
            image = api.image(collection, image["id"])
            if image["status"] in SETTLED:
                break  # shown after the log's last lines: the evidence, then the verdict
            display.update(image)
            next_poll = time.monotonic() + POLL_SECONDS
        with contextlib.suppress(queue.Empty):
            show(lines.get(timeout=max(0.0, next_poll - time.monotonic())))
    deadline = time.monotonic() + LOG_END_SECONDS
    while reading:
        try:
            show(lines.get(timeout=max(0.0, deadline - time.monotonic())))
        except queue.Empty:
            display.note(f"the log of {label(image)} did not end within "
                         f"{LOG_END_SECONDS:g} s of the build; it may be incomplete")
            break
    if unread is not None:
        _log_unfollowed(api, collection, image, display, unread)
    display.update(image)
    return image


def _log_unfollowed(api: Api, collection: str, image: dict[str, Any], display: Display,
                    why: CliError) -> None:
    """Show the whole log of a settled image whose log could not be followed, if it can be
    read at all; else say why not."""
    if isinstance(why, ApiError) and why.status_code == 503:
        display.note(f"could not follow the log ({why}); here it is now the build ended")
        try:
            with api.log(collection, image["id"]) as response:
                for line in response.iter_lines(decode_unicode=False):
                    display.log(line.decode("utf-8", "replace"))
            return
        except CliError as exc:
            why = exc
    display.note(f"the build log could not be followed: {why}")


def follow_chain(api: Api, chain: Sequence[tuple[str, dict[str, Any]]],
                 display: Display) -> list[dict[str, Any]]:
    """Follow each image in order (parents first) until one does not COMPLETE; return the
    final state of those followed."""
    finished: list[dict[str, Any]] = []
    for collection, image in chain:
        finished.append(follow_image(api, collection, image, display))
        if finished[-1]["status"] != "COMPLETE":
            break
    return finished


def wait(api: Api, collection: str, image: dict[str, Any]) -> dict[str, Any]:
    """Poll `image` until it settles, showing nothing; its final state."""
    while image["status"] not in SETTLED:
        time.sleep(POLL_SECONDS)
        image = api.image(collection, image["id"])
    return image
