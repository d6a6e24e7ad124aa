"""A bounded pool of threads working through a stream of items, with real progress and
cancellation: the engine under both uploads (EBS blocks and S3 parts) and the raw target's
copy.

Threads pull the next item themselves, so only `threads` items are ever in memory at once, and
the stream can be lazy (millions of 512-byte blocks on moto). Progress is reported under a lock
so the percentages leave in order, and only when the whole percent changes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from imagefactory_core.plugin import BuildContext

T = TypeVar("T")


def for_each(ctx: BuildContext, items: Iterable[T], work: Callable[[T], int], *, threads: int,
             total: int) -> None:
    """Call `work(item)` for every item on up to `threads` threads.

    `work` returns how many of the `total` units (bytes) it completed; progress is their sum
    over `total`. The first exception stops the other threads and is raised here; a
    cancellation stops them between items and raises `BuildCancelled` here.
    """
    iterator = iter(items)
    lock = threading.Lock()
    stop = threading.Event()
    errors: list[BaseException] = []
    state = {"done": 0, "reported": -1}

    def report(units: int) -> None:
        with lock:
            state["done"] += units
            percent = 100 * state["done"] // max(total, 1)
            if percent > state["reported"]:
                state["reported"] = percent
                ctx.progress(percent)

    def worker() -> None:
        try:
            while not stop.is_set() and not ctx.cancelled:
                with lock:
                    item = next(iterator, None)
                if item is None:
                    return
                report(work(item))
        except BaseException as exc:  # raised again below, in the caller's thread
            errors.append(exc)
            stop.set()

    with ThreadPoolExecutor(max(1, threads), thread_name_prefix="ec2-pool") as pool:
        for _ in range(max(1, threads)):
            pool.submit(worker)
    ctx.check_cancelled()
    if errors:
        raise errors[0]
    if state["reported"] < 100:  # nothing to do, or rounding: the work is done either way
        ctx.progress(100)
