"""``python -m imagefactory_core.sandbox.shift in|out TREE``: `shift_into_range` or
`shift_out_of_range` of TREE, as a command, for trees mounted in another mount namespace (the
caller runs it there with nsenter)."""

from __future__ import annotations

import sys
from pathlib import Path

from .ids import shift_into_range, shift_out_of_range, subordinate_ids


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("in", "out"):
        print("usage: python -m imagefactory_core.sandbox.shift in|out TREE", file=sys.stderr)
        return 2
    shift = shift_into_range if argv[0] == "in" else shift_out_of_range
    try:
        shift(Path(argv[1]), subordinate_ids())
    except (OSError, ValueError) as error:
        print(f"cannot shift {argv[1]}: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
