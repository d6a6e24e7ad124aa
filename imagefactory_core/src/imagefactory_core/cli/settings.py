"""Where the client verbs find the service and the OAuth client they sign as.

Each setting comes from the command line, else the environment, else the client configuration
file (``--client-config``, ``$IMAGEFACTORY_CLIENT_CONFIG``, or
``$XDG_CONFIG_HOME/imagefactory/client.json``, by default ``~/.config/imagefactory/client.json``):

    {"url": "https://factory.example.org:8075", "key": "pipeline", "secret": "…",
     "ca": "/etc/pki/imagefactory.pem"}

A secret belongs in that file (mode 0600) or in ``$IMAGEFACTORY_SECRET``, not on a command line
that every user of the machine can read in the process list.
"""

from __future__ import annotations

import argparse
import os
import stat
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from requests_oauthlib import OAuth1

from .errors import USAGE, CliError
from .inputs import json_object

DEFAULT_URL = "https://127.0.0.1:8075"
# key in the client configuration file → the type its value must have
FILE_KEYS: dict[str, type] = {"url": str, "key": str, "secret": str, "ca": str, "insecure": bool}
# earlier releases' names of the key and secret variables, still read
ENV_KEY = ("IMAGEFACTORY_KEY", "IMAGEFACTORY_OAUTH_KEY")
ENV_SECRET = ("IMAGEFACTORY_SECRET", "IMAGEFACTORY_OAUTH_SECRET")


@dataclass(frozen=True)
class ClientSettings:
    url: str
    key: str | None = None
    secret: str | None = None
    verify: bool | str = True  # requests' `verify`: check TLS, against this CA file if a str

    def __repr__(self) -> str:  # never show the secret, in a traceback either
        return f"ClientSettings(url={self.url!r}, key={self.key!r}, verify={self.verify!r})"

    def session(self) -> requests.Session:
        """A session that signs every request when a key and secret are set."""
        session = requests.Session()
        if self.key and self.secret:
            session.auth = OAuth1(self.key, self.secret)
        return session


def default_client_config(env: Mapping[str, str]) -> Path:
    base = Path(env["XDG_CONFIG_HOME"]) if env.get("XDG_CONFIG_HOME") else \
        Path.home() / ".config"
    return base / "imagefactory" / "client.json"


def read_client_config(path: Path, required: bool) -> dict[str, Any]:
    """The file's settings; {} when it does not exist and was not named explicitly."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        if required:
            raise CliError(f"client configuration {path} does not exist", USAGE) from None
        return {}
    except OSError as exc:
        raise CliError(f"cannot read client configuration {path}: {exc.strerror}",
                       USAGE) from exc
    values = json_object(text, f"client configuration {path}")
    unknown = sorted(set(values) - set(FILE_KEYS))
    if unknown:
        raise CliError(f"client configuration {path}: unknown key(s) {', '.join(unknown)} "
                       f"(known: {', '.join(FILE_KEYS)})", USAGE)
    for name, value in values.items():
        if not isinstance(value, FILE_KEYS[name]):
            raise CliError(f"client configuration {path}: {name!r} must be a "
                           f"{'boolean' if FILE_KEYS[name] is bool else 'string'}", USAGE)
    if values.get("secret") and stat.S_IMODE(path.stat().st_mode) & 0o077:
        print(f"imagefactory: warning: {path} holds an OAuth secret that other users may "
              f"read; chmod 600 {path}", file=sys.stderr)
    return values


def _first(env: Mapping[str, str], names: tuple[str, ...]) -> str | None:
    return next((env[name] for name in names if env.get(name)), None)


def resolve(args: argparse.Namespace, env: Mapping[str, str] | None = None) -> ClientSettings:
    """The settings for this invocation: command line, else environment, else the file."""
    env = os.environ if env is None else env
    named = args.client_config or env.get("IMAGEFACTORY_CLIENT_CONFIG")
    path = Path(named) if named else default_client_config(env)
    stored = read_client_config(path, required=bool(named))
    key = args.key or _first(env, ENV_KEY) or stored.get("key")
    secret = args.secret or _first(env, ENV_SECRET) or stored.get("secret")
    if bool(key) != bool(secret):
        raise CliError("an OAuth key needs its secret, and a secret its key: give both (--key "
                       "and --secret, IMAGEFACTORY_KEY and IMAGEFACTORY_SECRET, or 'key' and "
                       f"'secret' in {path})", USAGE)
    verify: bool | str = True
    if args.insecure or stored.get("insecure"):
        verify = False
    elif args.ca or stored.get("ca"):
        verify = args.ca or stored["ca"]
    url = args.url or env.get("IMAGEFACTORY_URL") or stored.get("url") or DEFAULT_URL
    return ClientSettings(url.rstrip("/").removesuffix("/imagefactory"), key, secret, verify)
