"""The shipped systemd unit (contrib/systemd/imagefactory.service): systemd reads it without a
warning, its command line starts the service and its stop settings stop it in time, it keeps the
directories the service's defaults name, and it keeps off the hardening options that break the
build sandbox (docs/deploying.md says why each is off)."""

from __future__ import annotations

import configparser
import json
import os
import shlex
import signal
import subprocess
import time
from importlib.metadata import entry_points
from pathlib import Path

import pytest
import requests
from imagefactory_core.config import Config

from tests.server.conftest import IMAGEFACTORY, REPO, free_port, wait_until

UNIT = REPO / "contrib" / "systemd" / "imagefactory.service"
BREAK_THE_SANDBOX = ("NoNewPrivileges", "RestrictSUIDSGID", "ProtectKernelTunables",
                     "ProtectKernelLogs", "ProtectProc", "ProtectControlGroups", "PrivateDevices",
                     "DevicePolicy", "ProtectClock", "RestrictNamespaces", "SystemCallFilter",
                     "CapabilityBoundingSet", "MemoryDenyWriteExecute",
                     "SystemCallArchitectures", "PrivateUsers", "DynamicUser")


def _unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    parser.read_string(UNIT.read_text())
    return parser


def _seconds(value: str) -> float:
    return float(value.removesuffix("s"))


def test_systemd_reads_the_unit_without_a_warning(tmp_path: Path) -> None:
    """`systemd-analyze verify` checks every key and value (an unknown key is only a warning,
    so the test wants no output at all); the binary is the repository's, which exists here."""
    unit = tmp_path / "imagefactory.service"
    unit.write_text(UNIT.read_text().replace("/opt/imagefactory/bin/imagefactory",
                                             str(IMAGEFACTORY)))
    result = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True,
                            text=True, check=False)
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_the_unit_keeps_off_what_breaks_the_build_sandbox() -> None:
    service = _unit()["Service"]
    assert service["User"] == "root"
    assert [key for key in BREAK_THE_SANDBOX if key in service] == []


def test_the_unit_makes_the_directories_of_the_default_configuration() -> None:
    service, defaults = _unit()["Service"], Config()
    assert Path("/var/lib") / service["StateDirectory"] == Path(defaults.state_dir)
    assert Path("/var/cache") / service["CacheDirectory"] == Path(defaults.cache_path)
    assert service["StateDirectoryMode"] == service["CacheDirectoryMode"] == "0700"


def test_the_unit_command_serves_and_stops_within_the_unit_timeout(tmp_path: Path) -> None:
    """ExecStart with the repository's binary and a test configuration file in place of
    /etc/imagefactory/imagefactory.conf; SIGTERM to the main process, as ``KillMode=mixed``
    sends it, ends the service well within ``TimeoutStopSec``."""
    service = _unit()["Service"]
    assert service["KillMode"] == "mixed"
    argv = shlex.split(service["ExecStart"])
    assert argv[:4] == ["/opt/imagefactory/bin/imagefactory", "serve", "--config",
                        "/etc/imagefactory/imagefactory.conf"], argv
    port = free_port()
    config = tmp_path / "imagefactory.conf"
    config.write_text(json.dumps({
        "address": "127.0.0.1", "port": port, "no_ssl": True, "no_oauth": True,
        "state_dir": str(tmp_path / "state"), "cache_path": str(tmp_path / "cache"),
        "disabled_plugins": sorted(ep.name for ep in entry_points(group="imagefactory.plugins"))}))
    argv[0], argv[3] = str(IMAGEFACTORY), str(config)
    log = tmp_path / "service.log"
    with log.open("wb") as output:
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=output,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    try:
        def answers() -> bool:
            if process.poll() is not None:
                pytest.fail(f"the service exited: {log.read_text()[-3000:]}")
            try:
                return requests.get(f"http://127.0.0.1:{port}/imagefactory",
                                    timeout=2).status_code == 200
            except requests.RequestException:
                return False

        wait_until(answers, 30, "the service to answer")
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        process.wait(_seconds(service["TimeoutStopSec"]))
        assert time.monotonic() - started < _seconds(service["TimeoutStopSec"])
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
