"""The one exception the command's modules raise for a failure it reports in one line."""

from __future__ import annotations

USAGE = 2  # exit status of a command line or input file the command cannot use (as argparse)
FAILED = 1  # exit status of a failed request or build


class CliError(Exception):
    """Printed as ``imagefactory: <message>``; the command exits with `status`."""

    def __init__(self, message: str, status: int = FAILED):
        super().__init__(message)
        self.status = status
