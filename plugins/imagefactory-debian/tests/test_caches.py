"""The package and JEOS caches: concurrent builds share them safely, later builds are faster."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from debian_plugin_testing import JEOS_PHASES, Build, build, downloaded_packages, mounted_root, tdl
from imagefactory_debian import phases
from imagefactory_debian.debcache import DEB_MAGIC, DebCache

pytestmark = pytest.mark.slow


def test_concurrent_builds_share_one_jeos_and_later_builds_reuse_it(image: Build,
                                                                    shared_cache_dir: Path,
                                                                    tmp_path: Path):
    # A JEOS cache of its own (so the first build must make the tree), but the session's
    # package cache: no package it holds is downloaded again. (The mirror may have published
    # new versions since the cache was filled: those are downloaded, and enter it.)
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "debian-debs").symlink_to(shared_cache_dir / "debian-debs")
    debs = DebCache(cache / "debian-debs", "bookworm", "amd64")
    cached_before = {entry.name for entry in debs.dir.glob("*.deb")}
    builds: dict[str, Build] = {}

    def run(name: str) -> None:
        builds[name] = build(tmp_path / name, cache, tdl(name, body=f"""<files>
          <file name='/etc/built-by'>{name}</file></files>"""))

    threads = [threading.Thread(target=run, args=(name,)) for name in ("first", "second")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert set(builds) == {"first", "second"}, "a concurrent build failed"
    states = sorted(b.result.properties["jeos_cache"] for b in builds.values())
    assert states == ["hit", "miss"]
    maker = next(b for b in builds.values() if b.result.properties["jeos_cache"] == "miss")
    downloaded = downloaded_packages(maker.ctx.lines)
    assert not downloaded & cached_before, "cached packages were downloaded again"
    assert downloaded <= {entry.name for entry in debs.dir.glob("*.deb")}
    assert list(phases.parse(maker.ctx.lines))[:7] == JEOS_PHASES

    run("third")
    third = builds["third"]
    assert "JEOS cache hit: " + third.result.properties["jeos"] in third.ctx.lines
    assert third.seconds < maker.seconds / 2
    assert [p.name for p in (cache / "debian-jeos").iterdir() if p.is_dir()] == \
        [third.result.properties["jeos"]]

    for name, result in builds.items():
        with mounted_root(result.disk) as root:
            assert (root / "etc/built-by").read_text() == name
            shadow = (root / "etc/shadow").read_text().splitlines()
            password = next(line for line in shadow if line.startswith("root:")).split(":")[1]
            assert password.startswith("!")  # no <rootpw>: locked


def test_a_forged_package_in_the_cache_is_never_installed(image: Build, shared_cache_dir: Path,
                                                          tmp_path: Path):
    """apt takes a file in its archives directory by its size alone: a template that planted a
    file of the right name and size in the shared package cache would have it installed into
    other images. The consuming build refuses it (its lists give another hash), downloads the
    real package, and the cache's name points at that from then on."""
    real_cache = DebCache(shared_cache_dir / "debian-debs", "bookworm", "amd64")
    (real,) = real_cache.dir.glob("tree_*_amd64.deb")  # the session image installed tree
    genuine = real.read_bytes()
    forged = DEB_MAGIC + b"\0" * (len(genuine) - len(DEB_MAGIC))
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "debian-jeos").symlink_to(shared_cache_dir / "debian-jeos")
    debs = DebCache(cache / "debian-debs", "bookworm", "amd64")
    planted = tmp_path / "planted"
    planted.mkdir()
    (planted / real.name).write_bytes(forged)
    assert debs.harvest(planted) == (1, [])

    built = build(tmp_path / "build", cache, tdl("forged", body="""
      <packages><package name='tree'/></packages>"""))
    assert "package cache: 0 of 1 cached packages match the package lists" in built.ctx.lines
    assert "package cache: 1 packages added" in built.ctx.lines
    assert downloaded_packages(built.ctx.lines) == {real.name}
    assert (debs.dir / real.name).read_bytes() == genuine
    with mounted_root(built.disk) as root:
        assert (root / "usr/bin/tree").stat().st_size > 0
