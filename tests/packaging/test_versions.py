"""Every distribution carries one version; the places that repeat it agree (docs/releasing.md)."""

from __future__ import annotations

import re
from importlib.metadata import PackageNotFoundError, version

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

from .projects import CORE, LICENSE, PLUGINS, PROJECTS, REPO, Project

VERSION = CORE.version


def test_every_distribution_has_the_same_version() -> None:
    assert {project.name: project.version for project in PROJECTS} == {
        project.name: VERSION for project in PROJECTS}


@pytest.mark.parametrize("plugin", PLUGINS, ids=lambda p: p.name)
def test_plugins_need_the_core_of_their_version(plugin: Project) -> None:
    major, minor, *_ = VERSION.split(".")
    needs = [Requirement(text) for text in plugin.metadata["dependencies"]]
    (core,) = (r for r in needs if r.name == CORE.name)
    assert core.specifier == SpecifierSet(f">={major}.{minor}"), (
        f"{plugin.name} needs {CORE.name}{core.specifier}; a {VERSION} plugin needs "
        f">={major}.{minor}")


@pytest.mark.parametrize("project", PROJECTS, ids=lambda p: p.name)
def test_changelog_starts_with_the_version(project: Project) -> None:
    changelog = (project.directory / "CHANGELOG.md").read_text()
    newest = re.search(r"^## \[([^]]+)\]", changelog, re.MULTILINE)
    assert newest is not None, f"{project.name}'s CHANGELOG.md has no '## [version]' heading"
    assert newest[1] == project.version


def test_the_repository_changelog_names_the_version() -> None:
    newest = re.search(r"^## .*$", (REPO / "CHANGELOG.md").read_text(), re.MULTILINE)
    assert newest is not None and VERSION in newest[0]


@pytest.mark.parametrize("project", PROJECTS, ids=lambda p: p.name)
def test_the_installed_version_is_the_source_version(project: Project) -> None:
    # imagefactory_core.__version__ (the API, --version, /plugins) reads installed metadata
    try:
        installed = version(project.name)
    except PackageNotFoundError:
        installed = "nothing (not installed)"
    assert installed == project.version, (
        f"{project.name} is installed at {installed}, its source says {project.version}: "
        f"run scripts/bootstrap.sh test to reinstall")


@pytest.mark.parametrize("project", PROJECTS, ids=lambda p: p.name)
def test_one_licence_text(project: Project) -> None:
    assert project.metadata["license"] == "Apache-2.0"
    assert project.metadata["license-files"] == ["LICENSE"]
    assert (project.directory / "LICENSE").read_bytes() == LICENSE.read_bytes()
