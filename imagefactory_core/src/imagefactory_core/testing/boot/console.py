"""A guest's serial console as the harness sees it: text, when each part arrived, and waiting.

QEMU writes the console to a pipe; a reader thread `feed`s it here. Every line also goes to the
logger ``imagefactory.boot.console`` (so pytest shows it with a failing test, and
``--log-cli-level=INFO`` live) and, when given, to a file that outlives the test, each line
there prefixed with the seconds since power-on when it arrived.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO

LOG = logging.getLogger("imagefactory.boot.console")
TAIL_CHARS = 4000

# Terminal control sequences (colours, cursor moves) from firmware, systemd and getty.
_CONTROL = re.compile(r"\x1b\[[0-9;?=]*[A-Za-z]|\x1b[()][A-Z0-9]|\x1bc|\r|\x00")


class BootError(AssertionError):
    """The machine did not do what was expected. `console` holds what its serial console said;
    the message ends with its tail (the end is where the reason usually is)."""

    def __init__(self, message: str, console: str, log_file: Path | None = None) -> None:
        where = f" (whole console: {log_file})" if log_file else ""
        super().__init__(f"{message}{where}; last console output:\n"
                         f"{console[-TAIL_CHARS:]}")
        self.console = console
        self.log_file = log_file


class Console:
    """Accumulates console output; `text` is cleaned of control sequences and carriage returns.

    Times are seconds since `started` (power-on: when QEMU was started)."""

    def __init__(self, started: float, log_file: Path | None = None) -> None:
        self.started = started
        self.log_file = log_file
        self._raw = bytearray()
        self._text = ""
        self._arrivals: list[tuple[int, float]] = []  # (length of text after a chunk, when)
        self._logged = 0  # how much of the text is logged
        self._closed = False
        self._changed = threading.Condition()
        self._file: IO[str] | None = log_file.open("a", encoding="utf-8") if log_file else None

    def feed(self, chunk: bytes) -> None:
        """Add output (b"" when QEMU closed the console)."""
        now = time.monotonic() - self.started
        with self._changed:
            if not chunk:
                self._closed = True
                self._write_lines(now, final=True)
            else:
                self._raw += chunk
                self._text = _CONTROL.sub("", self._raw.decode("utf-8", "replace"))
                self._arrivals.append((len(self._text), now))
                self._write_lines(now)
            self._changed.notify_all()

    def _write_lines(self, now: float, final: bool = False) -> None:
        """Log the lines completed since the last call, the file's with their arrival time."""
        end = len(self._text) if final else self._text.rfind("\n", self._logged) + 1
        if end <= self._logged:
            return
        for line in self._text[self._logged:end].splitlines():
            LOG.info("%s", line)
            if self._file:
                self._file.write(f"[{now:7.1f}s] {line}\n")
        if self._file:
            self._file.flush()
        self._logged = end

    def close(self) -> None:
        with self._changed:
            if self._file:
                self._file.close()
                self._file = None

    @property
    def text(self) -> str:
        with self._changed:
            return self._text

    @property
    def closed(self) -> bool:
        """True once QEMU closed the console (it exited)."""
        return self._closed

    def time_at(self, offset: int) -> float:
        """Seconds after power-on when the text up to `offset` had arrived."""
        with self._changed:
            return next((when for length, when in self._arrivals if length >= offset),
                        time.monotonic() - self.started)

    def seen_at(self, marker: str, start: int = 0) -> float | None:
        """Seconds after power-on when `marker` first appeared at or after offset `start`."""
        with self._changed:
            index = self._text.find(marker, start)
            return None if index < 0 else self.time_at(index + len(marker))

    def wait(self, pending: Callable[[str], str | None], timeout: float,
             failed: Iterable[Callable[[str], str | None]] = ()) -> str:
        """Wait until `pending(text)`, which names what is still awaited, returns None; return
        the text then.

        Each of `failed` may return a reason to give up at once (a kernel panic, a stage that
        finished without the expected output): then, at `timeout`, or when QEMU exits first,
        raise `BootError` with the console's tail."""
        checks = list(failed)
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                text = self._text
                awaited = pending(text)
                if awaited is None:
                    return text
                for check in checks:
                    reason = check(text)
                    if reason:
                        raise BootError(reason, text, self.log_file)
                if self._closed:
                    raise BootError(f"QEMU exited before {awaited} appeared", text,
                                    self.log_file)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise BootError(f"still waiting for {awaited} on the console after "
                                    f"{timeout:.0f} s", text, self.log_file)
                self._changed.wait(min(left, 1.0))
