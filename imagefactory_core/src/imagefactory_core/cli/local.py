"""Local mode (``--local``): build without a daemon, as the original ``imagefactory`` command did.

The service runs inside the command: its store, plugins and build workers, on a state
directory of the user's own (``--state-dir``, default ``$XDG_DATA_HOME/imagefactory``, that is
``~/.local/share/imagefactory``) and a cache directory (``--cache-dir``, default
``$XDG_CACHE_HOME/imagefactory``). The rest of the configuration is the service's:
``--config``, ``$IMAGEFACTORY_CONFIG`` or /etc/imagefactory/imagefactory.conf, and
``IMAGEFACTORY_*`` variables (plugins' settings, sandbox limits); its ``state_dir``,
``cache_path`` and ``storage_path`` do not apply, so the command never takes the daemon's state.

Local mode is chosen, never guessed: a command whose service does not answer fails and says
so, rather than starting a build on this machine with other plugins and settings.
Builds run while the command runs: a build verb waits for its image, and stopping the command
(Ctrl-C) cancels the builds it started (they end FAILED, saying so).
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import requests

from ..api.app import create_app
from ..config import load_config
from ..errors import ImageFactoryError
from .api import Api
from .errors import USAGE, CliError
from .wsgi import WSGIAdapter

URL = "http://local"  # what the in-process service calls itself in hrefs
SHUTDOWN_SECONDS = 30.0


def _xdg(env: Mapping[str, str], variable: str, fallback: str) -> Path:
    base = Path(env[variable]) if env.get(variable) else Path.home() / fallback
    return base / "imagefactory"


def default_state_dir(env: Mapping[str, str]) -> Path:
    return _xdg(env, "XDG_DATA_HOME", ".local/share")


def default_cache_dir(env: Mapping[str, str]) -> Path:
    return _xdg(env, "XDG_CACHE_HOME", ".cache")


@contextmanager
def local_api(args: argparse.Namespace,
              env: Mapping[str, str] | None = None) -> Iterator[Api]:
    """An `Api` served by a service in this process; its builds are stopped on the way out."""
    env = os.environ if env is None else env
    state_dir = Path(args.state_dir) if args.state_dir else default_state_dir(env)
    cache_dir = Path(args.cache_dir) if args.cache_dir else default_cache_dir(env)
    # No port is served: the service's warning that OAuth is off (anyone who reaches the
    # port may build) does not apply.
    logging.getLogger("imagefactory_core.api.app").setLevel(logging.ERROR)
    try:
        config = load_config(args.config, env=env, overrides={
            "state_dir": str(state_dir), "cache_path": str(cache_dir), "storage_path": None,
            "no_ssl": True, "no_oauth": True, "public_url": URL})
        app = create_app(config, resume_unfinished=False)
    except ImageFactoryError as exc:
        raise CliError(f"local mode: {exc}", USAGE) from exc

    def session() -> requests.Session:
        made = requests.Session()
        made.mount(URL, WSGIAdapter(app))
        return made

    try:
        yield Api(URL, session, builds_in_process=True)
    finally:
        app.services.engine.shutdown(SHUTDOWN_SECONDS)
