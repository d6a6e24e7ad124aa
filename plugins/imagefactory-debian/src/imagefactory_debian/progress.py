"""Progress from a long command's own output.

mmdebstrap and apt run for tens of seconds as one command; their output says which phase they
are in (downloading, unpacking, configuring). `watching` gives a copy of the build context whose
log also moves the build's progress when such a line goes by, so ``percent_complete`` and
``status_detail.activity`` follow the real work instead of jumping at the end.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from imagefactory_core.plugin import BuildContext


@dataclass(frozen=True)
class Milestone:
    prefix: str  # a log line starting with this marks the milestone
    percent: float  # of `ctx`'s own progress range
    activity: str
    after_previous: bool = False  # only once the milestone before it was seen (for prefixes
    # such as apt's "Unpacking " that also appear earlier, in an unrelated phase)


def watching(ctx: BuildContext, milestones: list[Milestone]) -> BuildContext:
    """A context like `ctx` (same log, cancellation, progress) that reports each milestone the
    first time its line is logged. Milestones are expected in order; a line may skip ahead past
    milestones that never show (mmdebstrap omits some steps), but not past one marked
    `after_previous`."""
    remaining = list(milestones)
    forward = ctx.log_sink

    def sink(line: str) -> None:
        forward(line)
        for index, milestone in enumerate(remaining):
            if index and milestone.after_previous:
                break
            if line.startswith(milestone.prefix):
                del remaining[: index + 1]
                ctx.progress(milestone.percent, milestone.activity)
                break

    watched = copy.copy(ctx)
    watched.log_sink = sink
    return watched
