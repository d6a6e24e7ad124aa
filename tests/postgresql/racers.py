"""Run a function in several processes at once, as several services on one database would.

Each process is spawned (a fresh interpreter, as a service on another host is), imports what
it needs, then waits at a barrier with the others, so the calls race for real. What each
returned (or the traceback it raised) comes back in the order the argument lists were given.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from imagefactory_core.store import Instance, Instances, SqlNonceStore, open_database
from sqlalchemy import create_engine

TIMEOUT = 60.0


@dataclass(frozen=True)
class Result:
    value: Any = None
    error: str | None = None  # the traceback, when the call raised


def race(target: Callable[..., Any], arguments: Sequence[tuple[Any, ...]]) -> list[Result]:
    """Call `target(*args)` for each of `arguments`, each in its own process, all at once."""
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(len(arguments))
    results = context.Queue()
    processes = [context.Process(target=_run, args=(index, target, barrier, results, args))
                 for index, args in enumerate(arguments)]
    for process in processes:
        process.start()
    found: dict[int, Result] = {}
    try:
        while len(found) < len(processes):
            index, result = results.get(timeout=TIMEOUT)
            found[index] = result
    except queue.Empty:
        raise AssertionError(f"only {len(found)} of {len(processes)} racers answered within "
                             f"{TIMEOUT} s") from None
    finally:
        for process in processes:
            process.join(10)
            if process.is_alive():
                process.kill()
    return [found[index] for index in range(len(processes))]


def _run(index: int, target: Callable[..., Any], barrier: Any, results: Any,
         args: tuple[Any, ...]) -> None:
    try:
        barrier.wait(TIMEOUT)
        results.put((index, Result(target(*args))))
    except BaseException:
        results.put((index, Result(error=traceback.format_exc())))


# -- what the racers do ----------------------------------------------------------------------
def migrate(url: str) -> str:
    """Open the database as a starting service does (migrations included)."""
    open_database(url).dispose()
    return "migrated"


def use_nonces(url: str, nonces: list[str], timestamp: int) -> list[bool]:
    """Which of `nonces` this process's nonce store accepted."""
    engine = create_engine(url)
    store = SqlNonceStore(engine)
    try:
        return [store.use("client1", nonce, timestamp) for nonce in nonces]
    finally:
        engine.dispose()


def start_and_claim(url: str, owner: str) -> list[str]:
    """What the service `owner` claims when it starts: it joins (its first heartbeat), then
    recovery claims."""
    engine = create_engine(url)
    try:
        instances = Instances(engine)
        instances.join(Instance(owner, f"racer:{owner}", os.getpid()))
        return instances.claim_unfinished(owner)
    finally:
        engine.dispose()
