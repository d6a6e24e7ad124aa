"""`imagefactory serve`: the daemon.

Options keep the original's spellings (`--no_ssl`, `--no_oauth`) beside the new ones. Every
option defaults to "not given" (argparse.SUPPRESS) so that the configuration file and the
environment decide what the command line leaves out, and so that the command's global
`--config` and `--state-dir`, given before the verb, are not overwritten.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..legacyconfig import SERVE_KEYS, add_serve_options
from .errors import USAGE, CliError

# The options of `serve` that become configuration keys (the rest say where to read it).
CONFIG_KEYS = ("port", "address", "state_dir", "no_ssl", "no_oauth", "ssl_cert", "ssl_key",
               "debug", *SERVE_KEYS)


def add_parser(sub: Any) -> None:
    p = sub.add_parser("serve", help="run the REST service", argument_default=argparse.SUPPRESS)
    p.add_argument("--config", type=Path, help="imagefactory.conf (JSON)")
    p.add_argument("--port", type=int)
    p.add_argument("--address")
    p.add_argument("--state-dir", help="database, keys and (by default) image storage")
    p.add_argument("--no-ssl", "--no_ssl", dest="no_ssl", action="store_true",
                   help="serve plain HTTP (development only)")
    p.add_argument("--no-oauth", "--no_oauth", dest="no_oauth", action="store_true",
                   help="accept unsigned writes (development only)")
    p.add_argument("--ssl-cert", "--ssl_cert", dest="ssl_cert")
    p.add_argument("--ssl-key", "--ssl_key", dest="ssl_key")
    p.add_argument("--debug", action="store_true")
    add_serve_options(p)  # the original imagefactoryd's --imgdir, --ssl_pem …
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    # the service's modules, loaded only when it runs: client verbs start faster without them
    from ..config import load_config
    from ..errors import ImageFactoryError
    from ..server import serve
    from ..statelock import StateLock

    options = vars(args)
    overrides = {key: options[key] for key in CONFIG_KEYS if options.get(key) is not None}
    try:
        config = load_config(args.config, overrides=overrides)
        state_lock = None
        if config.checked_workers() != "external":
            # Say at once that another service holds the state directory, rather than
            # through a worker that fails to start.
            Path(config.state_dir).mkdir(parents=True, exist_ok=True)
            state_lock = StateLock(Path(config.state_dir))
            if config.build_workers == "in-process":
                state_lock.release()  # the API process's build engine takes it
                state_lock = None
    except ImageFactoryError as exc:
        raise CliError(str(exc), USAGE) from exc
    serve(config, state_lock)  # the embedded worker gets the lock: held until serve ends
    return 0
