"""What the built wheels and sdists carry: complete metadata, every file of each package, and
what a PyPI upload checks (`twine check --strict`). docs/releasing.md describes the release."""

from __future__ import annotations

import configparser
import sys
import tarfile
import zipfile

import pytest
from packaging.metadata import Metadata
from packaging.specifiers import SpecifierSet

from .conftest import Artefacts, run
from .projects import CORE, LICENSE, PLUGINS, PROJECTS, Project

pytestmark = pytest.mark.slow
each_project = pytest.mark.parametrize("project", PROJECTS, ids=lambda p: p.name)

URL_LABELS = ["Homepage", "Documentation", "Source", "Issues", "Changelog"]
CLASSIFIERS = {
    "Development Status :: 4 - Beta",
    "Operating System :: POSIX :: Linux",
    "Programming Language :: Python :: 3.11",
    "Programming Language :: Python :: 3.12",
    "Programming Language :: Python :: 3.13",
    "Typing :: Typed",
}


def wheel_metadata(artefacts: Artefacts, project: Project) -> Metadata:
    with zipfile.ZipFile(artefacts.wheel) as wheel:
        text = wheel.read(f"{dist_info(project)}/METADATA").decode()
    return Metadata.from_email(text)  # validates every field against the core metadata spec


def dist_info(project: Project) -> str:
    return f"{project.filename_stem}-{project.version}.dist-info"


def test_twine_check_strict(artefacts: dict[Project, Artefacts]) -> None:
    files = [str(path) for built in artefacts.values() for path in (built.wheel, built.sdist)]
    checked = run([sys.executable, "-m", "twine", "--no-color", "check", "--strict", *files])
    assert checked.stdout.count("PASSED") == len(files)


@each_project
def test_metadata(project: Project, artefacts: dict[Project, Artefacts]) -> None:
    meta = wheel_metadata(artefacts[project], project)
    assert (meta.name, str(meta.version)) == (project.name, project.version)
    assert meta.requires_python == SpecifierSet(">=3.11")
    assert meta.license_expression == "Apache-2.0"
    assert meta.license_files == ["LICENSE"]
    assert meta.description == (project.directory / "README.md").read_text()
    assert meta.description_content_type == "text/markdown"
    assert meta.summary and meta.keywords and meta.author_email
    assert set(meta.classifiers or []) >= CLASSIFIERS
    # the licence is the SPDX expression; PEP 639 forbids License :: classifiers beside it
    assert not [c for c in meta.classifiers or [] if c.startswith("License ::")]
    # Homepage first: /imagefactory/plugins shows a plugin's first URL as its maintainer's
    assert list(meta.project_urls or {}) == URL_LABELS
    assert all(url.startswith("https://example.org/imagefactory/")
               for url in (meta.project_urls or {}).values())


def test_the_core_is_a_pytest_plugin(artefacts: dict[Project, Artefacts]) -> None:
    assert "Framework :: Pytest" in (wheel_metadata(artefacts[CORE], CORE).classifiers or [])


@pytest.mark.parametrize("plugin", PLUGINS, ids=lambda p: p.name)
def test_plugins_require_their_core(plugin: Project, artefacts: dict[Project, Artefacts]) -> None:
    major, minor, *_ = plugin.version.split(".")
    needs = wheel_metadata(artefacts[plugin], plugin).requires_dist or []
    assert [str(r.specifier) for r in needs if r.name == CORE.name] == [f">={major}.{minor}"]


@each_project
def test_sdist_metadata_is_the_wheels(project: Project,
                                      artefacts: dict[Project, Artefacts]) -> None:
    with tarfile.open(artefacts[project].sdist) as sdist:
        member = sdist.extractfile(f"{project.filename_stem}-{project.version}/PKG-INFO")
        assert member is not None
        pkg_info = Metadata.from_email(member.read().decode())
    wheel = wheel_metadata(artefacts[project], project)
    for field in ("name", "version", "requires_python", "license_expression", "license_files",
                  "classifiers", "project_urls", "requires_dist", "keywords", "description"):
        assert getattr(pkg_info, field) == getattr(wheel, field), field


@each_project
def test_wheel_holds_the_package_and_its_data(project: Project,
                                              artefacts: dict[Project, Artefacts]) -> None:
    with zipfile.ZipFile(artefacts[project].wheel) as wheel:
        names = set(wheel.namelist())
        licence = wheel.read(f"{dist_info(project)}/licenses/LICENSE")
    package_files = {name for name in names if not name.startswith(dist_info(project))}
    source = {path.removeprefix("src/") for path in project.files(f"src/{project.package}")}
    assert package_files == source
    assert f"{project.package}/py.typed" in package_files
    assert licence == LICENSE.read_bytes()


def test_data_files_the_code_reads(artefacts: dict[Project, Artefacts]) -> None:
    """Named here as well, so the generic check above cannot pass on an emptied package."""
    wanted = {
        "imagefactory_core": ["schemas/tdl.rng", "store/migrations/env.py",
                              "store/migrations/script.py.mako",
                              "store/migrations/versions/0001_initial.py"],
        "imagefactory_debian": ["scripts/build-env.sh", "scripts/configure-image.sh",
                                "scripts/esp.sh", "scripts/jeos-finish.sh",
                                "scripts/mke2fs.conf", "scripts/root-fs-update.py"],
    }
    for project, built in artefacts.items():
        with zipfile.ZipFile(built.wheel) as wheel:
            names = set(wheel.namelist())
        for path in wanted.get(project.package, []):
            assert f"{project.package}/{path}" in names


@each_project
def test_entry_points(project: Project, artefacts: dict[Project, Artefacts]) -> None:
    with zipfile.ZipFile(artefacts[project].wheel) as wheel:
        text = wheel.read(f"{dist_info(project)}/entry_points.txt").decode()
    parser = configparser.ConfigParser(delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(text)
    points = {group: dict(parser[group]) for group in parser.sections()}
    if project == CORE:
        assert points == {"console_scripts": {"imagefactory": "imagefactory_core.cli:main"},
                          "pytest11": {"imagefactory": "imagefactory_core.testing"}}
    else:
        plugin_id = project.package.removeprefix("imagefactory_")
        assert points == {"imagefactory.plugins": {plugin_id: project.package}}


@each_project
def test_sdist_holds_the_source_tree(project: Project,
                                     artefacts: dict[Project, Artefacts]) -> None:
    top = f"{project.filename_stem}-{project.version}/"
    with tarfile.open(artefacts[project].sdist) as sdist:
        names = {m.name.removeprefix(top) for m in sdist.getmembers() if m.isfile()}
    required = {"PKG-INFO", "pyproject.toml", "MANIFEST.in", "README.md", "CHANGELOG.md",
                "LICENSE"}
    missing = (required | project.files()) - names
    assert not missing, f"the sdist lacks {sorted(missing)}: see {project.name}'s MANIFEST.in"
    assert any(name.startswith("tests/test_") for name in names)
