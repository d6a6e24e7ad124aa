"""Keystone's WSGI application, importable by gunicorn.

`keystone.wsgi.api` parses `sys.argv` with oslo.config at import time and rejects gunicorn's
own arguments, so they are hidden before the import. Runs in the service venv, not in .venv.
"""

import sys

sys.argv = sys.argv[:1]

from keystone.wsgi.api import application  # noqa: E402

__all__ = ["application"]
