"""Undoing what a push created on the cloud when the push cannot finish.

A failed or cancelled push must leave no snapshot, staged object or AMI behind: they cost money
and nobody would know they exist. Each step that creates something registers how to remove it;
if the push then fails, the removals run newest first (an AMI before its snapshot), and one that
fails too is named in the error rather than hidden.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType

from imagefactory_core.plugin import BuildCancelled, BuildContext, BuildError


class Undo:
    """``with Undo(ctx) as undo: ... undo.push("snapshot snap-1", remove) ...``"""

    def __init__(self, ctx: BuildContext):
        self._ctx = ctx
        self._steps: list[tuple[str, Callable[[], None]]] = []

    def push(self, what: str, remove: Callable[[], None]) -> None:
        self._steps.append((what, remove))

    def __enter__(self) -> Undo:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc is None:
            return
        left = []
        for what, remove in reversed(self._steps):
            try:
                remove()
                self._ctx.log(f"removed {what}")
            except Exception as failure:  # keep removing the rest, report them all
                self._ctx.log(f"could not remove {what}: {failure}")
                left.append(f"{what} ({failure})")
        if not left or isinstance(exc, BuildCancelled):
            return  # the original exception propagates; leftovers of a cancel are in the log
        raise BuildError(f"{exc}; left behind on the provider: {'; '.join(left)}") from exc
