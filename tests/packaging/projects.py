"""The distributions of this repository, as their source trees declare them."""

from __future__ import annotations

import fnmatch
import tomllib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
LICENSE = REPO / "LICENSE"
# What builds, editable installs and test runs leave in a source tree; never part of a
# distribution. A stale *.egg-info would even be read back into the next sdist's file list.
LEFTOVERS = ("*.egg-info", "__pycache__", "*.py[cod]", "build", "dist", ".*")


@dataclass(frozen=True)
class Project:
    directory: Path

    @cached_property
    def metadata(self) -> dict[str, Any]:
        """The ``[project]`` table of its pyproject.toml."""
        with (self.directory / "pyproject.toml").open("rb") as file:
            return tomllib.load(file)["project"]

    @property
    def name(self) -> str:
        return str(self.metadata["name"])

    @property
    def version(self) -> str:
        return str(self.metadata["version"])

    @property
    def filename_stem(self) -> str:
        """The name as wheel and sdist file names spell it."""
        return self.name.replace("-", "_")

    @property
    def package(self) -> str:
        """The one import package under src/."""
        (package,) = (p.name for p in (self.directory / "src").iterdir()
                      if (p / "__init__.py").exists())
        return package

    def files(self, under: str = "") -> set[str]:
        """Paths (relative to the project directory) of its files, leftovers left out."""
        found = set()
        for path in (self.directory / under).rglob("*"):
            relative = path.relative_to(self.directory)
            if path.is_file() and not any(fnmatch.fnmatch(part, pattern)
                                          for part in relative.parts for pattern in LEFTOVERS):
                found.add(relative.as_posix())
        return found


PROJECTS = [Project(REPO / "imagefactory_core"),
            *(Project(path) for path in sorted((REPO / "plugins").iterdir())
              if (path / "pyproject.toml").exists())]
CORE, PLUGINS = PROJECTS[0], PROJECTS[1:]
