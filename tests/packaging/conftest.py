"""The wheel and sdist of every distribution, built once per test session."""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .projects import LEFTOVERS, PROJECTS, Project


@dataclass(frozen=True)
class Artefacts:
    wheel: Path
    sdist: Path


def run(argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run a command to its end; its output is the failure message."""
    done = subprocess.run(argv, capture_output=True, text=True, check=False, **kwargs)
    assert done.returncode == 0, (f"{' '.join(argv)} exited with {done.returncode}:\n"
                                  f"{done.stdout[-4000:]}\n{done.stderr[-4000:]}")
    return done


@pytest.fixture(scope="session")
def artefacts(tmp_path_factory: pytest.TempPathFactory) -> dict[Project, Artefacts]:
    """Built as a release builds them: the sdist, then the wheel from the unpacked sdist (so
    the sdist is proven complete), from a copy of the source tree without build leftovers.
    --no-isolation takes setuptools from this venv instead of downloading it for each build."""
    root = tmp_path_factory.mktemp("dists")
    out = root / "dist"
    built = {}
    for project in PROJECTS:
        source = root / "src" / project.directory.name
        shutil.copytree(project.directory, source, ignore=shutil.ignore_patterns(*LEFTOVERS))
        run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(source)])
        built[project] = Artefacts(
            wheel=out / f"{project.filename_stem}-{project.version}-py3-none-any.whl",
            sdist=out / f"{project.filename_stem}-{project.version}.tar.gz")
    assert sorted(out.iterdir()) == sorted(p for a in built.values() for p in (a.wheel, a.sdist))
    return built
