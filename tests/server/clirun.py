"""Run the `imagefactory` command as a user does: a process of its own, with an environment the
test chooses (no IMAGEFACTORY_* variables of the machine's, a home of the test's own)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from .conftest import CLIENTS, IMAGEFACTORY, REPO, ServerProcess

KEY, SECRET = next(iter(CLIENTS.items()))
CONTROL = ("\x1b", "\r")  # what a terminal display writes and a log file must not hold


def environment(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMAGEFACTORY_")}
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / "config"),
               XDG_DATA_HOME=str(home / "data"), XDG_CACHE_HOME=str(home / "cache"),
               PYTHONPATH=str(REPO), **extra)
    return env


def service_url(server: ServerProcess) -> str:
    return server.url.removesuffix("/imagefactory")


def run(home: Path, *args: str, env: dict[str, str] | None = None, check: bool = True,
        timeout: float = 60) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(IMAGEFACTORY), *args], capture_output=True, text=True,
                            timeout=timeout, cwd=home, stdin=subprocess.DEVNULL,
                            env=env if env is not None else environment(home))
    if check:
        assert result.returncode == 0, result.stderr
    return result


def signed(server: ServerProcess) -> list[str]:
    """Options that name `server` and sign as its client."""
    return ["--url", service_url(server), "--key", KEY, "--secret", SECRET]
