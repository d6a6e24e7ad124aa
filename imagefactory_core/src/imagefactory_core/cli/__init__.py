"""The `imagefactory` command: `serve` runs the daemon; the other verbs talk to a service, or
run one inside the command (``--local``). docs/cli.md is the user's guide.

One module a job: `parser` (verbs and spellings), `serve`, `settings` (URL and OAuth client),
`inputs` (parameters, providers, credentials), `api` (REST calls and their errors), `local` and
`wsgi` (local mode), `follow` and `display` (progress and logs), `output`, `commands`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from .api import Api
from .errors import CliError
from .parser import build_parser
from .settings import resolve

INTERRUPTED = 130


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if not getattr(args, "client", False):
            return int(args.handler(args))
        if args.local:
            from .local import local_api  # the whole service: loaded only when it runs here

            with local_api(args) as api:
                return int(args.handler(args, api))
        settings = resolve(args)
        return int(args.handler(args, Api(settings.url, settings.session, settings.verify)))
    except CliError as exc:
        print(f"imagefactory: {exc}", file=sys.stderr)
        raise SystemExit(exc.status) from None
    except BrokenPipeError:  # `imagefactory … | head`: stop quietly, as other commands do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:
        remote = getattr(args, "client", False) and not args.local
        print("\nimagefactory: interrupted" + ("; builds already started go on in the service"
                                              if remote else ""), file=sys.stderr)
        return INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
