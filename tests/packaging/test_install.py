"""The built wheels, installed alone into a clean virtual environment, make a working service:
the command answers, and `imagefactory serve` lists the shipped plugins and stops cleanly."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from .conftest import Artefacts, run
from .projects import CORE, PLUGINS, PROJECTS, Project

pytestmark = pytest.mark.slow
START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory,
         artefacts: dict[Project, Artefacts]) -> Path:
    """A venv holding the wheels and their dependencies (from the package index or pip's
    cache), nothing of this checkout. Made for speed (4 wheels: 5 s instead of 14 s): no pip of
    its own (this venv's pip installs into it), all wheels in one resolution, and no bytecode
    compiled ahead for the thousands of modules (botocore's) that the tests never import."""
    root = tmp_path_factory.mktemp("installed") / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", str(root)])
    run([sys.executable, "-m", "pip", "--python", str(root / "bin" / "python"), "install",
         "--quiet", "--no-compile", *(str(built.wheel) for built in artefacts.values())])
    return root


def clean_environment() -> dict[str, str]:
    """This process's environment without what would point the venv at the checkout or the
    service at another configuration."""
    return {key: value for key, value in os.environ.items()
            if key != "PYTHONPATH" and not key.startswith("IMAGEFACTORY_")}


def test_packages_come_from_the_wheels(venv: Path, tmp_path: Path) -> None:
    packages = [project.package for project in PROJECTS]
    shown = run([str(venv / "bin" / "python"), "-c",
                 f"import json, {', '.join(packages)}; "
                 f"print(json.dumps([m.__file__ for m in ({', '.join(packages)},)]))"],
                cwd=tmp_path, env=clean_environment())
    for path in json.loads(shown.stdout):
        assert Path(path).is_relative_to(venv / "lib"), path
    run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "check"])


def test_version(venv: Path, tmp_path: Path) -> None:
    shown = run([str(venv / "bin" / "imagefactory"), "--version"], cwd=tmp_path,
                env=clean_environment())
    assert shown.stdout == f"imagefactory {CORE.version}\n"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def started(argv: list[str], cwd: Path, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """The command in a process group of its own; whatever of the group is left when the
    block ends, by failure or not, is killed and the command reaped."""
    with log.open("wb") as output:
        process = subprocess.Popen(argv, cwd=cwd, env=clean_environment(),
                                   stdin=subprocess.DEVNULL, stdout=output,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield process
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def wait_for_answer(process: subprocess.Popen[bytes], url: str, log: Path) -> requests.Response:
    """The first answer of `url`. serve binds its port before its API process has loaded the
    plugins, so a connection can be accepted seconds before it is answered (more on a busy
    machine): the read may take what is left of the deadline."""
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if process.poll() is not None:
            raise AssertionError(f"serve exited with {process.returncode}:\n"
                                 f"{log.read_text(errors='replace')[-4000:]}")
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"serve did not answer within {START_TIMEOUT} s:\n"
                                 f"{log.read_text(errors='replace')[-4000:]}")
        try:
            return requests.get(url, timeout=(5, remaining))
        except requests.ConnectionError:  # not listening yet
            time.sleep(0.1)
        except requests.Timeout:  # listening, still not answering: the deadline is over
            pass


def test_serve_lists_the_shipped_plugins_and_stops_on_sigterm(venv: Path,
                                                              tmp_path: Path) -> None:
    config = tmp_path / "imagefactory.conf"
    config.write_text(json.dumps({"state_dir": str(tmp_path / "state"),
                                  "cache_path": str(tmp_path / "cache")}))
    port = free_port()
    log = tmp_path / "serve.log"
    argv = [str(venv / "bin" / "imagefactory"), "serve", "--config", str(config),
            "--address", "127.0.0.1", "--port", str(port), "--no-ssl", "--no-oauth"]
    with started(argv, tmp_path, log) as serve:
        answer = wait_for_answer(serve, f"http://127.0.0.1:{port}/imagefactory/plugins", log)
        assert answer.status_code == 200, answer.text
        shown = {plugin["distribution"]: plugin for plugin in answer.json()["plugins"]}
        assert sorted(shown) == sorted(plugin.name for plugin in PLUGINS)
        for plugin in shown.values():
            assert (plugin["status"], plugin["version"], plugin["license"]) == (
                "loaded", CORE.version, "Apache-2.0"), plugin

        serve.send_signal(signal.SIGTERM)
        try:
            returncode = serve.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"serve did not stop within {STOP_TIMEOUT} s of SIGTERM:\n"
                                 f"{log.read_text(errors='replace')[-4000:]}") from None
        output = log.read_text(errors="replace")
        assert returncode == 0, output[-4000:]
        assert "Traceback" not in output, output[-4000:]
        with pytest.raises(ProcessLookupError):  # its worker and every child went with it
            os.killpg(serve.pid, 0)
