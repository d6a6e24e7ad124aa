"""Break-out attempts from inside a sandbox, each followed by a look at the host."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from imagefactory_core.sandbox import SandboxSpec, wrap

Run = Callable[..., Any]


@pytest.fixture
def host_sleeper() -> Iterator[int]:
    """A host process the sandbox must not be able to touch."""
    sleeper = subprocess.Popen(["sleep", "60"])
    yield sleeper.pid
    assert sleeper.poll() is None, "the host process was killed"
    sleeper.kill()
    sleeper.wait()


@pytest.mark.parametrize("mode", [
    "open_by_handle_at", "name_to_handle_at", "keyctl", "add_key", "bpf", "unshare_user",
    "clone_user", "mount", "mknod", "perf_event_open", "userfaultfd", "io_uring_setup",
    "finit_module", "tiocsti",
])
def test_dangerous_system_calls_are_refused(tree: Path, run_sandbox: Run, mode: str) -> None:
    result = run_sandbox(SandboxSpec(root=tree), ["escape", mode])
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"{mode} denied" in result.stdout
    assert "(errno 1)" in result.stdout or "(errno 38)" in result.stdout


@pytest.mark.parametrize(("program", "status"), [
    (lambda hex_program: "00" * 8, 125),  # one load and no return: the kernel refuses it
    (lambda hex_program: hex_program[:-2], 125),  # not whole entries
    (lambda hex_program: "", 125),
    (lambda hex_program: "not hexadecimal", 2),
])
def test_nothing_runs_without_the_filter(fresh_tree: Path, program: Callable[[str], str],
                                         status: int) -> None:
    argv = wrap(SandboxSpec(root=fresh_tree), ["touch", "/ran"])
    filter_at = argv.index("--") - 1
    argv[filter_at] = program(argv[filter_at])
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert result.returncode == status, result.stderr
    assert not (fresh_tree / "ran").exists()


def test_clone3_is_unavailable_so_libc_falls_back(tree: Path, run_sandbox: Run) -> None:
    result = run_sandbox(SandboxSpec(root=tree), ["escape", "clone3"])
    assert "clone3 denied" in result.stdout and "(errno 38)" in result.stdout


def test_host_processes_cannot_be_signalled_or_traced(tree: Path, run_sandbox: Run,
                                                      host_sleeper: int) -> None:
    for mode in ("kill", "ptrace"):
        result = run_sandbox(SandboxSpec(root=tree), ["escape", mode, str(host_sleeper)])
        assert result.returncode == 1, result.stdout + result.stderr
    listed = run_sandbox(SandboxSpec(root=tree), ["ls", "/proc"]).stdout.split()
    assert str(host_sleeper) not in listed or host_sleeper < 10


def test_kernel_interfaces_are_read_only(tree: Path, run_sandbox: Run) -> None:
    script = ("for f in /proc/sys/kernel/hostname /proc/sys/vm/drop_caches /proc/sysrq-trigger "
              "/sys/kernel/uevent_helper /sys/x; do "
              "if echo 1 > $f; then echo WROTE $f; else echo refused $f; fi; done 2>&1; "
              "mount -o remount,rw /proc/sys 2>&1 || echo remount refused")
    result = run_sandbox(SandboxSpec(root=tree), ["sh", "-c", script])
    assert "WROTE" not in result.stdout, result.stdout
    assert "remount refused" in result.stdout


def test_no_disk_device_can_be_made_or_mounted(tree: Path, run_sandbox: Run) -> None:
    script = ("mknod /tmp/sda b 8 0 && echo MADE; ls /dev; "
              "mount /dev/vda /mnt 2>/dev/null && echo MOUNTED; "
              "mount -t ext4 /tmp/sda /mnt 2>/dev/null && echo M2")
    result = run_sandbox(SandboxSpec(root=tree), ["sh", "-c", script])
    assert "MADE" not in result.stdout and "MOUNTED" not in result.stdout
    assert "M2" not in result.stdout
    assert sorted(result.stdout.split()) == sorted(
        ["fd", "full", "null", "ptmx", "pts", "random", "shm", "stderr", "stdin", "stdout",
         "tty", "urandom", "zero"])


def test_host_pid_1_and_files_are_out_of_sight(tree: Path, tmp_path: Path,
                                               run_sandbox: Run) -> None:
    secret = tmp_path / "host-secret"
    secret.write_text("host secret\n")
    secret.chmod(0o644)
    env_marker = "IMAGEFACTORY_HOST_MARKER=visible"
    os.environ["IMAGEFACTORY_HOST_MARKER"] = "visible"
    try:
        script = (f"cat /proc/1/environ; cat {secret}; ls /proc | grep -c '^[0-9]'; "
                  "ls /work /etc/shadow 2>&1; env")
        result = run_sandbox(SandboxSpec(root=tree), ["sh", "-c", script])
    finally:
        del os.environ["IMAGEFACTORY_HOST_MARKER"]
    assert env_marker not in result.stdout
    assert "host secret" not in result.stdout
    assert int(result.stdout.split("\n")[0].strip() or result.stdout.split()[0]) <= 4
    assert "IMAGEFACTORY_HOST_MARKER" not in result.stdout


def test_capabilities_are_those_package_installation_needs(tree: Path,
                                                            run_sandbox: Run) -> None:
    result = run_sandbox(SandboxSpec(root=tree), ["grep", "^Cap", "/proc/self/status"])
    caps = dict(line.split(":\t") for line in result.stdout.splitlines())
    expected = sum(1 << cap for cap in (0, 1, 3, 4, 5, 6, 7, 10, 18, 31))
    for key in ("CapEff", "CapPrm", "CapBnd"):
        assert int(caps[key], 16) == expected, caps
    assert int(caps["CapInh"], 16) == 0 and int(caps["CapAmb"], 16) == 0
