"""The console as the harness reads it: cleaned text, arrival times, waiting, giving up."""

from __future__ import annotations

import threading
import time

import pytest
from imagefactory_core.testing import BootError, Console


def test_text_is_cleaned_of_terminal_control_and_carriage_returns(tmp_path):
    console = Console(time.monotonic(), tmp_path / "console.log")
    console.feed(b"\x1b[2J\x1b[01;01HBdsDxe: loading\r\n[  OK  ] \x1b[0;32mStarted\x1b")
    console.feed(b"[0m x\r\nhost login: ")
    assert console.text == "BdsDxe: loading\n[  OK  ] Started x\nhost login: "
    console.feed(b"")
    console.close()
    lines = (tmp_path / "console.log").read_text().splitlines()
    assert [line.split("] ", 1)[1] for line in lines] == [
        "BdsDxe: loading", "[  OK  ] Started x", "host login: "]
    assert all(line.startswith("[") and "s] " in line for line in lines)


def test_times_are_when_text_arrived():
    console = Console(time.monotonic())
    console.feed(b"first\n")
    time.sleep(0.3)
    console.feed(b"second\n")
    first, second = console.seen_at("first"), console.seen_at("second")
    assert first is not None and second is not None
    assert second - first >= 0.25
    assert console.seen_at("third") is None
    assert console.time_at(len("first\n")) == first


def test_wait_returns_once_nothing_is_pending():
    console = Console(time.monotonic())

    def later() -> None:
        time.sleep(0.2)
        console.feed(b"READY\n")

    threading.Thread(target=later).start()
    text = console.wait(lambda text: None if "READY" in text else "READY", timeout=10)
    assert "READY" in text


def test_wait_gives_up_at_once_when_a_check_says_so():
    console = Console(time.monotonic())
    console.feed(b"booting\nKernel panic - not syncing: VFS\n")
    began = time.monotonic()
    with pytest.raises(BootError, match="panicked") as raised:
        console.wait(lambda text: "login", timeout=60,
                     failed=[lambda text: "panicked" if "Kernel panic" in text else None])
    assert time.monotonic() - began < 1
    assert "Kernel panic - not syncing: VFS" in str(raised.value)  # the tail is in the message
    assert raised.value.console.startswith("booting")


def test_wait_says_what_it_waited_for_at_the_timeout_and_when_qemu_exits():
    console = Console(time.monotonic())
    with pytest.raises(BootError, match="still waiting for the marker on the console after 0 s"):
        console.wait(lambda text: "the marker", timeout=0.2)
    console.feed(b"")
    with pytest.raises(BootError, match="QEMU exited before the marker appeared"):
        console.wait(lambda text: "the marker", timeout=10)
