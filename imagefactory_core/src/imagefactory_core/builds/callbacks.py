"""Status callbacks: a PUT of the image JSON to each URL in ``parameters.callbacks`` whenever
the image's status changes.

Deliveries run on one background thread fed by a queue, so a slow or dead receiver never holds
up a build. Each PUT has a timeout and bounded retries with backoff (urllib3's `Retry`).
"""

from __future__ import annotations

import logging
import queue
import threading
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from ..redaction import redact_url

log = logging.getLogger(__name__)


class CallbackNotifier:
    def __init__(self, timeout: float = 10.0, retries: int = 3):
        self.timeout = timeout
        self._queue: queue.Queue[tuple[str, dict[str, Any]] | None] = queue.Queue()
        self._session = requests.Session()
        retry = Retry(total=retries, backoff_factor=0.5, allowed_methods={"PUT"},
                      status_forcelist=(429, 500, 502, 503, 504), raise_on_status=False)
        adapter = HTTPAdapter(max_retries=retry)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
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
                response = self._session.put(url, json=document, timeout=self.timeout)
                if response.status_code >= 400:
                    log.warning("callback %s answered %s", redact_url(url), response.status_code)
            except requests.RequestException as exc:
                log.warning("callback %s failed: %s", redact_url(url),
                            type(exc).__name__)
            finally:
                self._queue.task_done()

    def drain(self, timeout: float = 5.0) -> None:
        """Wait (bounded) for queued deliveries, then stop the thread."""
        self._queue.put(None)
        self._thread.join(timeout)
