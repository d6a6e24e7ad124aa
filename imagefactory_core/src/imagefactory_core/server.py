"""`imagefactory serve`: the Falcon app on gunicorn.

Process model: ONE gunicorn worker process with a pool of threads (`gthread`, as
`httpworker.HeadBufferingWorker`: request heads are read by its event loop, so a slow client
cannot hold a thread while its head trickles in) serves the API. Builds run in a build worker
(`builds.worker`), which in the embedded default (`build_workers: embedded`) the arbiter
starts beside it and watches (`embeddedworker`); with `external`, workers run apart
(`imagefactory worker`, docs/scale-out.md); with `in-process`, the builds run on threads of
the API process, as in local mode.

SIGTERM (or SIGINT) stops gunicorn gracefully and then the build worker, which cancels its
running builds: they end FAILED saying the service was stopped. Queued builds stay PENDING
and run at the next start.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from gunicorn.app.base import BaseApplication
from gunicorn.glogging import Logger as GunicornLogger

from .api.app import create_app
from .config import Config
from .embeddedworker import EmbeddedWorker
from .httpworker import HeadBufferingWorker
from .loglines import OneLineArgs
from .statelock import StateLock
from .tls import ensure_certificate, load_check

log = logging.getLogger(__name__)


def tls_files(config: Config) -> tuple[Path, Path] | None:
    """The certificate and key to serve with, generating a self-signed pair when none is set."""
    if config.no_ssl:
        return None
    if config.ssl_cert and config.ssl_key:
        cert, key = Path(config.ssl_cert), Path(config.ssl_key)
        load_check(cert, key)
        return cert, key
    tls_dir = Path(config.state_dir) / "tls"
    return ensure_certificate(tls_dir / "cert.pem", tls_dir / "key.pem")


KEEPALIVE_SECONDS = 75
# gunicorn's default line with the path instead of the whole request line: a query string is
# the client's to fill, and one that carries credentials (refused, but already sent) must not
# land in the log.
ACCESS_LOG_FORMAT = '%(h)s %(l)s %(u)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s "%(f)s" "%(a)s"'


class OneLineLogger(GunicornLogger):  # type: ignore[misc]
    """gunicorn's logger, escaping control characters in what it logs of a request
    (`loglines`): it writes the request's path decoded, so "%0A" in a URL would end a line."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for logger in (self.error_log, self.access_log):
            logger.addFilter(OneLineArgs())


class Server(BaseApplication):  # type: ignore[misc]
    def __init__(self, config: Config, state_lock: StateLock | None = None):
        self.config_values = config
        self.build_worker = (EmbeddedWorker(config, state_lock)
                             if config.build_workers == "embedded" else None)
        super().__init__()

    def load_config(self) -> None:
        config = self.config_values
        settings: dict[str, Any] = {
            "bind": f"[{config.address}]:{config.port}" if ":" in config.address
            else f"{config.address}:{config.port}",
            "workers": 1,
            "worker_class": type("ImagefactoryWorker", (HeadBufferingWorker,),
                                 {"head_seconds": config.request_head_seconds}),
            "threads": config.server_threads,
            "timeout": 120,
            "graceful_timeout": 60,
            # Idle kept-alive connections stay open longer than clients wait between polls
            # (the CLI polls every 2 s) and than load balancers' idle timeouts (60 s): with
            # gunicorn's 2 s default, a poll raced the server closing its connection
            # (ECONNRESET).
            "keepalive": KEEPALIVE_SECONDS,
            "accesslog": "-",
            "access_log_format": ACCESS_LOG_FORMAT,
            "errorlog": "-",
            "logger_class": OneLineLogger,
            "loglevel": "debug" if config.debug else "info",
            "worker_exit": _stop_engine,
            "when_ready": self._start_build_worker,
            "pre_fork": self._before_fork,
            "on_exit": self._stop_build_worker,
            "proc_name": "imagefactory",
            # every gunicorn instance would otherwise share ~/.gunicorn/gunicorn.ctl
            "control_socket_disable": True,
        }
        files = tls_files(config)
        if files:
            settings["certfile"], settings["keyfile"] = (str(f) for f in files)
        for key, value in settings.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        return create_app(self.config_values,
                          dispatch=self.config_values.build_workers != "in-process")

    def _start_build_worker(self, _arbiter: Any) -> None:
        if self.build_worker is not None:
            self.build_worker.start()

    def _before_fork(self, _arbiter: Any, _worker: Any) -> None:
        if self.build_worker is not None:
            self.build_worker.before_fork()

    def _stop_build_worker(self, _arbiter: Any) -> None:
        if self.build_worker is not None:
            log.info("stopping the build worker: cancelling running builds")
            self.build_worker.stop()


def _stop_engine(server: Any, worker: Any) -> None:
    app = getattr(worker, "wsgi", None)
    services = getattr(app, "services", None)
    if services is not None:
        log.info("stopping: cancelling running builds")
        services.engine.shutdown()


def serve(config: Config, state_lock: StateLock | None = None) -> None:
    """Run the service until it is stopped. `state_lock`: the state directory's, which the
    embedded build worker inherits (without one, that worker takes it itself)."""
    logging.basicConfig(level=logging.DEBUG if config.debug else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:  # paths and names a client sent: one line each
        handler.addFilter(OneLineArgs())
    for level, notice in config.notices:  # how the original's settings were read, once
        log.log(level, "%s", notice)
    if config.no_ssl:
        log.warning("TLS is OFF (--no-ssl): requests and OAuth signatures travel in clear. "
                    "Development only.")
    if config.oauth_enabled and not config.clients:
        log.warning("OAuth is on but no clients are configured: every write will be refused "
                    "(add \"clients\" to imagefactory.conf)")
    if config.log_followers >= config.server_threads:
        log.warning("log_followers (%d) is not below server_threads (%d): clients following "
                    "build logs can hold every request thread and stall the API",
                    config.log_followers, config.server_threads)
    Server(config, state_lock).run()
