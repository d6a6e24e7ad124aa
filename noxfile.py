"""Developer sessions. `make test` is the one CI runs; nox gives isolated runs per distribution.

nox -l lists the sessions.
"""

import shutil
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
    session.install("-e", "imagefactory_core[testing]", *EDITABLE_PLUGINS)
    for script in ("base_build", "push_ec2", "target_convert", "push_openstack", "push_vsphere",
                   "push_rhevm", "api_load", "first_boot"):
        session.run("python", f"bench/{script}")


@nox.session(default=False)
def template(session: nox.Session) -> None:
    """Render the plugin template for both kinds; test, build and serve the results."""
    session.install("-e", "imagefactory_core", "cookiecutter", "build", "twine", "pytest",
                    "ruff", "nox", "setuptools>=77")
    session.run("python", "scripts/check_template.py", *session.posargs)


@nox.session(default=False)
def docs(session: nox.Session) -> None:
    """The documentation site (Sphinx, warnings as errors) into build/docs."""
    session.install("-e", "imagefactory_core", *EDITABLE_PLUGINS, "-r", "docs/requirements.txt")
    session.run("sphinx-build", "-W", "--keep-going", "-b", "html", "docs", "build/docs",
                *session.posargs)


@nox.session(default=False)
def build(session: nox.Session) -> None:
    """Wheel and sdist of every distribution into dist/, checked as PyPI checks an upload."""
    session.install("build", "twine>=6.1")
    shutil.rmtree("dist", ignore_errors=True)
    for project in ("imagefactory_core", *(f"plugins/{name}" for name in PLUGINS)):
        session.run("python", "-m", "build", "--outdir", "dist", project)
    session.run("twine", "check", "--strict", *sorted(str(p) for p in Path("dist").iterdir()))


@nox.session(default=False)
def serve(session: nox.Session) -> None:
    """Run the service in development mode on 127.0.0.1:8075."""
    session.install("-e", "imagefactory_core", *EDITABLE_PLUGINS)
    session.run("imagefactory", "serve", "--address", "127.0.0.1", "--no-ssl", "--no-oauth",
                *session.posargs)
