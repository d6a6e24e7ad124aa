"""Development sessions: `nox` runs both; `nox -s tests -- -k push` passes options to pytest."""

import nox

nox.needs_version = ">=2024.4"
nox.options.sessions = ["tests", "lint"]


@nox.session
def tests(session: nox.Session) -> None:
    """The plugin's tests, against the imagefactory-core it resolves to."""
    session.install("-e", ".[test]")
    session.run("pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff over the project."""
    session.install("ruff")
    session.run("ruff", "check", ".")
