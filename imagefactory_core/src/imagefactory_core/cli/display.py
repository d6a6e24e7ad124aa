"""How a followed build is shown: a live progress bar on a terminal, plain lines elsewhere.

On a terminal (rich): one bar per image with its status and current activity, the build log
scrolling above. Anywhere else (a pipe, a file, CI): a line for each change of status, percent
or activity, and the log lines as they are, with no control codes: the choice is made on
whether the stream is a terminal, never on variables that force colours.
"""

from __future__ import annotations

import os
import sys
from types import TracebackType
from typing import Any, Protocol, TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Column
from rich.text import Text

KIND = {"BaseImage": "base_image", "TargetImage": "target_image",
        "ProviderImage": "provider_image"}


def label(image: dict[str, Any], id_length: int | None = None) -> str:
    """``base_image <id>``: the original's name of the kind, and the id (its first
    `id_length` characters, where space is short)."""
    return f"{KIND.get(image['_type'], image['_type'])} {image['id'][:id_length]}"


def activity(image: dict[str, Any]) -> str:
    return str((image.get("status_detail") or {}).get("activity") or "")


class Display(Protocol):
    def update(self, image: dict[str, Any]) -> None:
        """Show the image's status, percent and activity."""

    def log(self, line: str) -> None:
        """Show one line of a build log."""

    def note(self, text: str) -> None:
        """Tell the user something about the following itself."""

    def __enter__(self) -> Display: ...

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None: ...


class PlainDisplay:
    """Lines only. `statuses=False` leaves out the status lines (``log --follow`` into a file:
    the output is the log)."""

    def __init__(self, stream: TextIO, statuses: bool = True):
        self.stream = stream
        self.statuses = statuses
        self._shown: dict[str, tuple[str, int, str]] = {}

    def __enter__(self) -> PlainDisplay:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stream.flush()

    def _print(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def update(self, image: dict[str, Any]) -> None:
        state = (image["status"], int(image.get("percent_complete") or 0), activity(image))
        if not self.statuses or self._shown.get(image["id"]) == state:
            return
        self._shown[image["id"]] = state
        status, percent, doing = state
        self._print(f"{label(image)}: {status} {percent}%" + (f" {doing}" if doing else ""))

    def log(self, line: str) -> None:
        self._print(line)

    def note(self, text: str) -> None:
        """On stderr: what goes to the stream may be a log file or a script's input."""
        print(f"imagefactory: {text}", file=sys.stderr, flush=True)


class LiveDisplay:
    """A rich progress bar per image, with the log printed above the bars."""

    def __init__(self, stream: TextIO):
        self.console = Console(file=stream, highlight=False)
        self.progress = Progress(
            SpinnerColumn(finished_text="✓"),
            TextColumn("{task.description}", markup=False),
            BarColumn(bar_width=24),
            TaskProgressColumn(),
            TextColumn("{task.fields[status]}", markup=False),
            TextColumn("{task.fields[activity]}", markup=False,
                       table_column=Column(no_wrap=True, overflow="ellipsis")),
            TimeElapsedColumn(),
            console=self.console, redirect_stdout=False, redirect_stderr=False)
        self._tasks: dict[str, TaskID] = {}

    def __enter__(self) -> LiveDisplay:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def update(self, image: dict[str, Any]) -> None:
        task = self._tasks.get(image["id"])
        fields = {"status": image["status"], "activity": activity(image)}
        if task is None:
            task = self._tasks[image["id"]] = self.progress.add_task(label(image, 8),
                                                                     total=100, **fields)
        self.progress.update(task, completed=int(image.get("percent_complete") or 0),
                             **fields)
        if image["status"] in ("FAILED", "DELETED", "DELETEFAILED"):
            self.progress.stop_task(task)

    def log(self, line: str) -> None:
        self.console.print(Text(line), soft_wrap=True)  # Text: no markup, no control codes

    def note(self, text: str) -> None:
        self.console.print(Text(f"imagefactory: {text}", style="yellow"))


def make_display(stream: TextIO, statuses: bool = True) -> Display:
    """A live display when `stream` is a terminal that can show one, plain lines otherwise."""
    live = stream.isatty() and os.environ.get("TERM") != "dumb"
    return LiveDisplay(stream) if live else PlainDisplay(stream, statuses)
