"""Status callbacks: a PUT of the image JSON to each URL in ``parameters.callbacks`` whenever
the image's status changes.

Deliveries never run on a build's thread, and one receiver never holds up another: each
receiver (scheme, host and port) has its own queue, served by one of a few delivery threads at
a time, so the PUTs to one receiver arrive in the order the statuses changed (per image, and
overall), while a receiver that accepts a connection and never answers delays only its own
queue. Receivers with work take turns on the threads, one delivery per turn. Each PUT has a
timeout and bounded retries with backoff (urllib3's `Retry`); a receiver's queue is bounded,
further notifications to it are dropped (and logged). The URLs are the client's: they are
called under the outbound policy (`imagefactory_core.outbound`), so a callback cannot reach the
service's loopback, link-local or private networks unless the operator allows them; a refused
one is logged and not retried.
"""

from __future__ import annotations

import collections
import logging
import queue
import threading
from typing import Any
from urllib.parse import urlsplit

import requests
from urllib3.util.retry import Retry

from .. import outbound
from ..redaction import UrlArgsRedacted, redact_url

log = logging.getLogger(__name__)
# urllib3 logs the URLs it retries and redirects (a callback's path and query: a token)
for _logger in ("urllib3.connectionpool", "urllib3.poolmanager", "urllib3.util.retry"):
    logging.getLogger(_logger).addFilter(UrlArgsRedacted())

DELIVERY_THREADS = 8  # receivers served at once; the others wait their turn
BACKLOG = 1000  # notifications waiting for one receiver before further ones are dropped

Delivery = tuple[str, dict[str, Any]]


def receiver_of(url: str) -> str:
    """The receiver a URL reaches: its scheme, host and port (the queue it waits in)."""
    try:
        parts = urlsplit(url)
        return f"{parts.scheme}://{parts.hostname}:{parts.port}"
    except ValueError:  # the service checked the URL; any key keeps it in a queue of its own
        return url


class CallbackNotifier:
    def __init__(self, timeout: float = 10.0, retries: int = 3,
                 allow: tuple[str, ...] | list[str] = (), threads: int = DELIVERY_THREADS,
                 backlog: int = BACKLOG):
        self.timeout = timeout
        self.threads = threads
        self.backlog = backlog
        retry = Retry(total=retries, backoff_factor=0.5, allowed_methods={"PUT"},
                      status_forcelist=(429, 500, 502, 503, 504), raise_on_status=False)
        self._policy = outbound.policy(allow)
        self._session = outbound.session(allow, max_retries=retry)
        self._lock = threading.Lock()
        self._settled = threading.Condition(self._lock)
        # receiver → its deliveries, the first one being made (or next): a receiver is in
        # `_ready` at most once and only while no thread serves it, which keeps its order
        self._queues: dict[str, collections.deque[Delivery]] = {}
        self._ready: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._workers: list[threading.Thread] = []
        self._outstanding = 0
        self._closed = False

    def notify(self, urls: list[str], document: dict[str, Any]) -> None:
        """Queue a PUT of `document` to each URL; returns at once."""
        with self._lock:
            if self._closed:
                log.warning("callbacks after shutdown not sent: %s",
                            ", ".join(redact_url(u) for u in urls))
                return
            for url in urls:
                key = receiver_of(url)
                waiting = self._queues.get(key)
                if waiting is None:
                    self._queues[key] = collections.deque([(url, document)])
                    self._ready.put(key)
                    self._add_worker()
                elif len(waiting) >= self.backlog:
                    log.warning("callback %s dropped: %d are already waiting for that receiver",
                                redact_url(url), len(waiting))
                    continue
                else:
                    waiting.append((url, document))
                self._outstanding += 1

    def _add_worker(self) -> None:
        """One more delivery thread while fewer than `threads` serve more receivers."""
        if len(self._workers) < min(self.threads, len(self._queues)):
            worker = threading.Thread(target=self._serve, daemon=True,
                                      name=f"callbacks-{len(self._workers) + 1}")
            self._workers.append(worker)
            worker.start()

    def _serve(self) -> None:
        while (key := self._ready.get()) is not None:
            with self._lock:
                url, document = self._queues[key][0]
            self._deliver(url, document)
            with self._lock:
                waiting = self._queues[key]
                waiting.popleft()
                if waiting:
                    self._ready.put(key)  # behind the other receivers with work: turns
                else:
                    del self._queues[key]
                self._outstanding -= 1
                if not self._outstanding:
                    self._settled.notify_all()

    def _deliver(self, url: str, document: dict[str, Any]) -> None:
        try:
            refused = outbound.refusal(self._policy, url)
            if refused:
                log.warning("callback %s not called: %s", redact_url(url), refused)
                return
            response = self._session.put(url, json=document, timeout=self.timeout)
            if response.status_code >= 400:
                log.warning("callback %s answered %s", redact_url(url), response.status_code)
        except requests.RequestException as exc:
            cause = getattr(exc.args[0] if exc.args else None, "reason", None)
            if isinstance(cause, outbound.OutboundRefused):  # a redirect went there
                log.warning("callback %s not followed: %s", redact_url(url), cause)
            else:
                log.warning("callback %s failed: %s", redact_url(url), type(exc).__name__)
        except Exception:  # a delivery thread must outlive any one delivery
            log.exception("callback %s failed", redact_url(url))

    def drain(self, timeout: float = 5.0) -> None:
        """Wait (bounded) for queued deliveries, then stop the delivery threads (one stuck
        on a receiver that never answers ends with its timeout; threads are daemons)."""
        with self._settled:
            self._settled.wait_for(lambda: not self._outstanding, timeout)
            self._closed = True
            workers = list(self._workers)
        for _ in workers:
            self._ready.put(None)
