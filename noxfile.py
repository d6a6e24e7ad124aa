"""Developer sessions. `make test` is the one CI runs; nox gives isolated runs per distribution.

nox -l lists the sessions.
"""

from pathlib import Path

import nox

nox.needs_version = ">=2024.4"
nox.options.sessions = ["lint", "core"]
PLUGINS = sorted(p.name for p in Path("plugins").iterdir() if (p / "pyproject.toml").exists())
EDITABLE_PLUGINS = [arg for name in PLUGINS for arg in ("-e", f"plugins/{name}")]


@nox.session
def lint(session: nox.Session) -> None:
    """ruff over the whole repository."""
    session.install("ruff")
    session.run("ruff", "check", ".")


@nox.session
def core(session: nox.Session) -> None:
    """The core distribution's own tests, with no OS or cloud plugin installed."""
    session.install("-e", "imagefactory_core", "-r", "requirements-test.txt")
    session.run("pytest", "imagefactory_core/tests", "--confcutdir=imagefactory_core",
                *session.posargs)


@nox.session(default=False)
@nox.parametrize("plugin", PLUGINS)
def plugin(session: nox.Session, plugin: str) -> None:
    """One plugin distribution's tests, in isolation."""
    session.install("-e", "imagefactory_core", "-e", f"plugins/{plugin}",
                    "-r", "requirements-test.txt")
    session.run("pytest", f"plugins/{plugin}", *session.posargs)


@nox.session(default=False)
def bench(session: nox.Session) -> None:
    """Benchmarks against mkosi and the clouds' own upload tools (see README)."""
    session.install("-e", "imagefactory_core", *EDITABLE_PLUGINS)
    for script in ("base_build", "push_ec2", "push_openstack"):
        session.run("python", f"bench/{script}")


@nox.session(default=False)
def serve(session: nox.Session) -> None:
    """Run the service in development mode on 127.0.0.1:8075."""
    session.install("-e", "imagefactory_core", *EDITABLE_PLUGINS)
    session.run("imagefactory", "serve", "--address", "127.0.0.1", "--no-ssl", "--no-oauth",
                *session.posargs)
