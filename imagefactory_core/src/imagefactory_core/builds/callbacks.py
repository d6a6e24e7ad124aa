"""Status callbacks: a PUT of the image JSON to each URL in ``parameters.callbacks`` whenever
the image's status changes.

Deliveries run on one background thread fed by a queue, so a slow or dead receiver never holds
up a build. Each PUT has a timeout and bounded retries with backoff (urllib3's `Retry`). The URLs
are the client's: they are called under the outbound policy (`imagefactory_core.outbound`), so
a callback cannot reach the service's loopback, link-local or private networks unless the
operator allows them; a refused one is logged and not retried.
"""

from __future__ import annotations

import logging
import queue
import threading
from typing import Any

import requests
from urllib3.util.retry import Retry

from .. import outbound
from ..redaction import redact_url

log = logging.getLogger(__name__)


class CallbackNotifier:
    def __init__(self, timeout: float = 10.0, retries: int = 3,
                 allow: tuple[str, ...] | list[str] = ()):
        self.timeout = timeout
        self._queue: queue.Queue[tuple[str, dict[str, Any]] | None] = queue.Queue()
        retry = Retry(total=retries, backoff_factor=0.5, allowed_methods={"PUT"},
                      status_forcelist=(429, 500, 502, 503, 504), raise_on_status=False)
        self._policy = outbound.policy(allow)
        self._session = outbound.session(allow, max_retries=retry)
        self._thread = threading.Thread(target=self._deliver_forever, name="callbacks",
                                        daemon=True)
        self._thread.start()

    def notify(self, urls: list[str], document: dict[str, Any]) -> None:
        for url in urls:
            self._queue.put((url, document))

    def _deliver_forever(self) -> None:
        while (item := self._queue.get()) is not None:
            url, document = item
            try:
                refused = outbound.refusal(self._policy, url)
                if refused:
                    log.warning("callback %s not called: %s", redact_url(url), refused)
                    continue
                response = self._session.put(url, json=document, timeout=self.timeout)
                if response.status_code >= 400:
                    log.warning("callback %s answered %s", redact_url(url), response.status_code)
            except requests.RequestException as exc:
                cause = getattr(exc.args[0] if exc.args else None, "reason", None)
                if isinstance(cause, outbound.OutboundRefused):  # a redirect went there
                    log.warning("callback %s not followed: %s", redact_url(url), cause)
                else:
                    log.warning("callback %s failed: %s", redact_url(url), type(exc).__name__)
            finally:
                self._queue.task_done()

    def drain(self, timeout: float = 5.0) -> None:
        """Wait (bounded) for queued deliveries, then stop the thread."""
        self._queue.put(None)
        self._thread.join(timeout)
