"""`imagefactory worker`: a build worker, taking jobs from the queue of a shared database.

Run it on each build host of a scale-out deployment (`build_workers: external`, docs/
scale-out.md), with the API servers' `database_url`, `storage_url`, `queue_url` and
`secret_key_path`. `serve` runs one itself in the embedded default (`build_workers:
embedded`), handing it the configuration it read on its standard input (`--from-serve`).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from dataclasses import fields
from pathlib import Path
from typing import Any

from .errors import USAGE, CliError


def add_parser(sub: Any) -> None:
    p = sub.add_parser("worker", help="run a build worker (scale-out; serve runs one itself)",
                       argument_default=argparse.SUPPRESS)
    p.add_argument("--config", type=Path, help="imagefactory.conf (JSON)")
    p.add_argument("--state-dir", help="this worker's own state directory: its instance id, "
                                       "state lock and work directories")
    p.add_argument("--plugins", help="take only the jobs of these plugins (comma-separated "
                                     "ids), e.g. the OS plugins on a build host")
    p.add_argument("--debug", action="store_true", help="debug logging")
    p.add_argument("--from-serve", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--state-lock-fd", type=int, help=argparse.SUPPRESS)  # serve's, inherited
    p.set_defaults(handler=run)


def config_json(config: Any) -> str:
    """What `serve` writes to its worker's standard input: every key of `config`, on one
    line."""
    return json.dumps({f.name: getattr(config, f.name) for f in fields(config) if f.init}) + "\n"


def run(args: argparse.Namespace) -> int:
    from ..config import Config, load_config
    from ..errors import ImageFactoryError
    from ..statelock import StateLock

    options = vars(args)
    try:
        if options.get("from_serve"):
            # one line, not up to end of file: a process gunicorn forks while `serve` writes
            # it may hold the pipe's other end open
            config = Config(**json.loads(sys.stdin.readline()))
        else:
            overrides = {key: options[key] for key in ("state_dir", "debug")
                         if options.get(key) is not None}
            if options.get("plugins"):
                overrides["worker_plugins"] = options["plugins"]
            config = load_config(options.get("config"), overrides=overrides)
        config.checked_workers()
        state_lock = (StateLock.inherited(options["state_lock_fd"], Path(config.state_dir))
                      if options.get("state_lock_fd") is not None else None)
        run_worker(config, parent_pid=os.getppid() if options.get("from_serve") else None,
                   state_lock=state_lock)
    except ImageFactoryError as exc:
        raise CliError(str(exc), USAGE) from exc
    return 0


def run_worker(config: Any, parent_pid: int | None = None, state_lock: Any = None) -> None:
    """Run a build worker until SIGTERM or SIGINT, which cancel its running jobs (they end
    FAILED saying the service stopped); queued jobs wait for the next worker. `state_lock`:
    the state directory's, held already (`serve`'s); without one the worker takes it."""
    from ..api.app import open_store
    from ..builds.worker import Worker, open_queue
    from ..loglines import OneLineArgs
    from ..plugins import load_plugins
    from ..store import Instances
    from ..store.jobs import Jobs

    logging.basicConfig(level=logging.DEBUG if config.debug else logging.INFO,
                        format="%(asctime)s %(levelname)s worker %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:
        handler.addFilter(OneLineArgs())
    slots = config.max_concurrent_local_sessions + config.max_concurrent_uploads
    store = open_store(config, slots + 4, cache=None, owns_work=True)
    plugins = load_plugins(disabled=config.disabled_plugins, modules=config.plugin_modules)
    plugins.configure(config.plugins)
    jobs = Jobs(store.engine, store.sealer, Instances(store.engine, config.worker_stale_seconds))
    worker = Worker(config, store, plugins, jobs, open_queue(config, jobs), parent_pid,
                    state_lock)

    def stop(signum: int, _frame: Any) -> None:
        logging.getLogger(__name__).info("signal %d: cancelling running jobs and stopping",
                                         signum)
        threading.Thread(target=worker.stop, name="stop", daemon=True).start()

    if not config.queue_url:  # a Celery worker handles the signals itself
        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
    worker.run()
