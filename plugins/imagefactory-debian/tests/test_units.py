"""Fast tests of the plugin's parts that need no real build: settings, naming, layout, caches
under concurrency, progress, registration."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import threading
import time
from pathlib import Path

import imagefactory_debian
import pytest
from debian_plugin_testing import tdl
from imagefactory_core.plugin import (
    BuildCancelled,
    BuildError,
    Repository,
    Template,
    parse_template,
)
from imagefactory_core.testing import (
    ParameterError,
    loaded_plugin,
    make_build_context,
    plugin_parameters,
)
from imagefactory_debian import (
    imagefactory_create_base_image,
    imagefactory_os_targets,
    phases,
    releases,
)
from imagefactory_debian.aptlists import LISTS, ListsCache, prefixes
from imagefactory_debian.customise import _source_line
from imagefactory_debian.debcache import MANIFEST, DebCache, deb_file_name
from imagefactory_debian.disk import GiB, Layout, MiB
from imagefactory_debian.jeos import JeosCache
from imagefactory_debian.phases import phase
from imagefactory_debian.progress import Milestone, watching
from imagefactory_debian.recipe import JeosRecipe
from imagefactory_debian.rootfs import SCRIPTS
from imagefactory_debian.rootimage import _forget_older, image_of
from imagefactory_debian.settings import CLOUD_DRIVERS, Settings
from imagefactory_debian.system import hostname


def template(**os_extra: str) -> Template:
    extra = "".join(f"<{tag}>{text}</{tag}>" for tag, text in os_extra.items())
    return parse_template(tdl("t", extra_os=extra))


# -- registration and releases ------------------------------------------------------------------
def test_os_target_names_debian_11_to_13_by_number_and_codename():
    (target,) = imagefactory_os_targets()
    assert target.name == "Debian"
    assert "x86_64" in target.arches
    for version in ("11", "12", "13", "12.5", "bullseye", "bookworm", "trixie", "Bookworm"):
        assert re.fullmatch(target.versions, version, re.IGNORECASE), version
    for version in ("10", "14", "sid", "buster", "12a"):
        assert not re.fullmatch(target.versions, version, re.IGNORECASE), version


def test_release_numbers_and_codenames_are_the_same_release():
    assert releases.release("12").codename == releases.release("bookworm").codename == "bookworm"
    assert releases.release("11.9").codename == "bullseye"
    assert "systemd-resolved" not in releases.release("11").base_packages  # inside systemd
    assert "systemd-resolved" in releases.release("13").base_packages
    with pytest.raises(BuildError, match="not supported"):
        releases.release("10")


def test_aarch64_is_offered_only_when_the_host_can_build_it():
    assert ("aarch64" in releases.buildable_architectures()) == (
        (releases.GRUB_LIBRARY / "arm64-efi").is_dir() and releases._can_build(
            releases.ARCHITECTURES["aarch64"]))


# -- settings -----------------------------------------------------------------------------------
def settings(template: Template, request: dict | None = None,
             config: dict | None = None) -> Settings:
    """The settings of a build with the parameters the core resolves from `request` and the
    plugin's `config`."""
    return Settings.read(template, plugin_parameters(imagefactory_debian, request, config))


def test_mirror_comes_from_the_tdl_unless_config_or_parameters_override_it():
    text = tdl("t").replace("http://deb.debian.org/debian", "http://mirror.example/debian/")
    parsed = parse_template(text)
    assert settings(parsed).mirror == "http://mirror.example/debian"
    assert settings(parsed, config={"mirror": "http://b.example/debian"}).mirror == \
        "http://b.example/debian"
    assert settings(parsed, {"mirror": "http://c.example/debian"},
                    {"mirror": "http://b.example/debian"}).mirror == "http://c.example/debian"


def test_an_iso_install_needs_a_mirror_from_elsewhere(tmp_path: Path):
    iso = parse_template(tdl("t").replace(
        "<install type='url'><url>http://deb.debian.org/debian</url></install>",
        "<install type='iso'><iso>http://cdimage.example/debian-12.iso</iso></install>"))
    with pytest.raises(BuildError, match="ISO installs are not supported"):
        imagefactory_create_base_image(ctx=make_build_context(tmp_path), template=iso,
                                       parameters=plugin_parameters(imagefactory_debian))
    assert settings(iso, config={"mirror": "http://m.example/debian"}).mirror == \
        "http://m.example/debian"


def test_security_mirror_follows_a_debian_mirror_and_can_be_turned_off():
    parsed = template()
    assert settings(parsed).security_mirror == "http://deb.debian.org/debian-security"
    assert settings(parsed, config={"security_updates": False}).security_mirror is None
    assert settings(parsed, {"mirror": "http://mirror.example/pub/"}).security_mirror is None
    assert settings(parsed, {"mirror": "http://mirror.example/pub/", "security_mirror":
                             "http://mirror.example/sec/"}).security_mirror == \
        "http://mirror.example/sec"


def test_settings_defaults_and_checks():
    built = settings(template(kernelparam="quiet"), config={"kernel_cmdline": "net.ifnames=0"})
    assert built.with_docs and not built.install_recommends
    assert built.initramfs_modules == CLOUD_DRIVERS
    assert built.kernel_cmdline == "net.ifnames=0 quiet"
    assert built.apt_proxy is None and built.components == ("main",)
    assert settings(template(), {"initramfs_modules": "most"}).initramfs_modules is None
    assert settings(template(), {"with_docs": "no"}).with_docs is False
    assert settings(template(), {"components": "main contrib"}).components == \
        ("main", "contrib")
    for bad, name in [({"with_docs": "maybe"}, "with_docs"),
                      ({"apt_proxy": "proxy:3128"}, "apt_proxy"),
                      ({"apt_proxy": "http://user:secret@proxy:3128"}, "apt_proxy"),
                      ({"jeos_cache_entries": 0}, "jeos_cache_entries")]:
        with pytest.raises(ParameterError, match=name) as refused:
            settings(template(), bad)
        assert "secret" not in str(refused.value)  # a URL's user:password@ is not echoed


@pytest.mark.parametrize(("request_parameters", "name"), [
    ({"mirror": "http://m.example/debian\ndeb [trusted=yes] http://evil.example/ x main"},
     "mirror"),
    ({"apt_proxy": 'http://p.example/";\nAPT::Update::Pre-Invoke {"touch /pwned";};'},
     "apt_proxy"),
    ({"components": ["main", "contrib\ndeb [trusted=yes] http://evil.example/ x"]},
     "components"),
    ({"kernel_cmdline": "quiet\n}\nmenuentry evil {"}, "kernel_cmdline"),
    ({"initramfs_modules": ["virtio_blk", "../../etc"]}, "initramfs_modules"),
])
def test_values_that_would_inject_into_tools_are_refused(request_parameters, name):
    with pytest.raises(ParameterError, match=f"parameter '{name}'"):
        settings(template(), request_parameters)


def test_what_decides_where_the_service_connects_or_what_it_spends_is_operator_only():
    declared = {p["name"]: p for p in loaded_plugin(imagefactory_debian)["parameters"]}
    assert {name for name, p in declared.items() if p["operator_only"]} == {
        "mirror", "security_mirror", "apt_proxy", "jeos_cache_entries",
        "deb_cache_max_age_days", "command_timeout"}


# -- recipe, naming, layout ---------------------------------------------------------------------
def test_jeos_key_changes_with_what_changes_the_tree_only():
    parsed = template()
    arch = releases.ARCHITECTURES["x86_64"]
    bookworm = releases.release("12")
    def recipe(release: releases.Release, chosen: Settings) -> JeosRecipe:
        assert chosen.mirror
        return JeosRecipe.of(release, arch, chosen.mirror, chosen)

    base = recipe(bookworm, settings(parsed))
    same = recipe(bookworm, settings(parsed, {"apt_proxy": "http://p:3128",
                                              "kernel_cmdline": "quiet"}))
    assert base.key == same.key and base.key.startswith("bookworm-amd64-")
    for change in ({"mirror": "http://m.example/debian"}, {"with_docs": False},
                   {"components": "main contrib"}, {"initramfs_modules": "most"}):
        assert recipe(bookworm, settings(parsed, change)).key != base.key, change
    assert recipe(releases.release("13"), settings(parsed)).key != base.key
    assert base.sources() == [
        "deb http://deb.debian.org/debian bookworm main",
        "deb http://deb.debian.org/debian bookworm-updates main",
        "deb http://deb.debian.org/debian-security bookworm-security main",
    ]


def test_hostnames_are_valid_labels():
    assert hostname("Imagefactory Debian_Test") == "imagefactory-debian-test"
    assert hostname("---") == "debian"
    assert len(hostname("x" * 100)) == 63


def test_layout_puts_the_esp_first_and_the_root_last():
    layout = Layout.for_size(None)
    assert layout.size == 10 * GiB
    assert layout.esp.start == 1 * MiB and layout.root.start == 256 * MiB
    assert layout.root.start + layout.root.size == layout.size - MiB
    assert Layout.for_size(3 * GiB + 1).size == 3 * GiB + MiB
    with pytest.raises(BuildError, match="at least"):
        Layout.for_size(512 * MiB)


def test_repository_source_lines():
    flat = Repository("r", "http://repo.example/debs")
    assert _source_line(flat) == "deb [trusted=yes] http://repo.example/debs ./"
    full = Repository("r", "http://deb.debian.org/debian bookworm-backports main", signed=True)
    assert _source_line(full) == "deb http://deb.debian.org/debian bookworm-backports main"


@pytest.mark.parametrize("url", [
    "http://repo.example/debs bookworm main\ndeb [trusted=yes] http://evil.example/ x main",
    "http://repo.example/debs [trusted=yes] bookworm main",
    "file:///etc bookworm main",
    'http://repo.example/"debs',
])
def test_repository_urls_that_would_add_sources_are_refused(url):
    with pytest.raises(BuildError, match="repository 'r'"):
        _source_line(Repository("r", url))


def test_the_templates_install_url_is_checked_like_a_url_parameter():
    text = tdl("t").replace("http://deb.debian.org/debian",
                            "http://deb.debian.org/debian&#10;deb [trusted=yes] http://evil/ x")
    with pytest.raises(BuildError, match="<install><url>"):
        settings(parse_template(text))


def test_deb_file_names_encode_the_epoch():
    assert deb_file_name("libc6", "2.36-9", "amd64") == "libc6_2.36-9_amd64.deb"
    assert deb_file_name("e2fsprogs", "1:1.47.0-2", "amd64") == "e2fsprogs_1%3a1.47.0-2_amd64.deb"


# -- package cache ------------------------------------------------------------------------------
def deb(content: bytes) -> bytes:
    """Bytes that start like a Debian package (an ar archive whose first member is
    debian-binary), followed by `content`."""
    return b"!<arch>\ndebian-binary   " + content


def cached(cache: DebCache, name: str) -> bytes:
    return (cache.dir / name).read_bytes()


def test_package_cache_seeds_harvests_and_names_each_file_by_its_hash(tmp_path: Path):
    cache = DebCache(tmp_path / "debs", "bookworm", "amd64")
    first = tmp_path / "first"
    first.mkdir()
    (first / "a_1_amd64.deb").write_bytes(deb(b"a"))
    assert cache.harvest(first) == (1, [])
    second = tmp_path / "second"
    second.mkdir()
    (second / "a_1_amd64.deb").write_bytes(deb(b"a"))  # the same package downloaded again
    (second / "b_1_amd64.deb").write_bytes(deb(b"b"))
    assert cache.harvest(second) == (1, [])
    digest = hashlib.sha256(deb(b"a")).hexdigest()
    assert os.readlink(cache.dir / "a_1_amd64.deb") == f"by-hash/{digest}"
    assert (cache.files / digest).read_bytes() == deb(b"a")
    archives = tmp_path / "archives"
    assert cache.seed(archives) == 2
    assert sorted(p.name for p in archives.iterdir()) == [MANIFEST, "a_1_amd64.deb",
                                                           "b_1_amd64.deb"]
    assert f"{digest} a_1_amd64.deb\n" in (archives / MANIFEST).read_text()
    # the seeded links are the cached files: harvesting them again copies nothing
    assert (archives / "a_1_amd64.deb").stat().st_ino == (cache.files / digest).stat().st_ino
    assert cache.harvest(archives) == (0, [])


def test_a_name_whose_file_a_build_refused_points_at_what_it_downloaded(tmp_path: Path):
    """A template may plant a forged file under a Debian package's name; builds whose lists
    refuse it download the real package, which then takes the name over."""
    cache = DebCache(tmp_path / "debs", "bookworm", "amd64")
    forged = tmp_path / "forged"
    forged.mkdir()
    (forged / "libc6_2.36_amd64.deb").write_bytes(deb(b"forged"))
    cache.harvest(forged)
    real = tmp_path / "real"
    real.mkdir()
    (real / "libc6_2.36_amd64.deb").write_bytes(deb(b"real"))
    assert cache.harvest(real) == (1, [])
    assert cached(cache, "libc6_2.36_amd64.deb") == deb(b"real")


def test_the_cache_takes_only_regular_package_files_and_copies_them(tmp_path: Path):
    """A sandbox writes the archives directory: links planted there are never followed on the
    host, nor FIFOs opened to hang the build, nor other files taken; what is taken is a copy
    owned by root, so the sandbox cannot change it afterwards."""
    cache = DebCache(tmp_path / "debs", "bookworm", "amd64")
    archives = tmp_path / "archives"
    archives.mkdir()
    secret = tmp_path / "host-secret"
    secret.write_bytes(deb(b"host file"))
    (archives / "link_1_amd64.deb").symlink_to(secret)
    os.mkfifo(archives / "fifo_1_amd64.deb")
    (archives / "text_1_amd64.deb").write_bytes(b"#!/bin/sh\nrm -rf /\n")
    (archives / "a b;c_1_amd64.deb").write_bytes(deb(b"odd name"))
    (archives / "good_1_amd64.deb").write_bytes(deb(b"good"))
    os.chown(archives / "good_1_amd64.deb", 100000, 100000)
    added, refused = cache.harvest(archives)
    assert added == 1
    assert dict(refused) == {"link_1_amd64.deb": "a symbolic link",
                             "fifo_1_amd64.deb": "not a regular file",
                             "text_1_amd64.deb": "not a Debian package",
                             "a b;c_1_amd64.deb": "not a package file name"}
    taken = cache.dir / "good_1_amd64.deb"
    assert taken.read_bytes() == deb(b"good")
    assert taken.stat().st_uid == 0
    assert taken.stat().st_ino != (archives / "good_1_amd64.deb").stat().st_ino
    assert sorted(p.name for p in cache.dir.iterdir()) == ["by-hash", "good_1_amd64.deb"]
    assert len(list(cache.files.iterdir())) == 1


def test_package_cache_harvests_concurrently_without_partial_files(tmp_path: Path):
    cache = DebCache(tmp_path / "debs", "bookworm", "amd64")
    sources = []
    for n in range(8):
        source = tmp_path / f"build{n}"
        source.mkdir()
        for package in range(50):
            (source / f"p{package}_1_amd64.deb").write_bytes(deb(bytes([package]) * 4096))
        sources.append(source)
    threads = [threading.Thread(target=cache.harvest, args=(s,)) for s in sources]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    names = sorted(cache.dir.glob("*.deb"))
    assert len(names) == 50
    assert len(list(cache.files.iterdir())) == 50
    assert all(f.read_bytes() == deb(bytes([int(f.name[1:].split("_")[0])]) * 4096)
               for f in names)


def test_package_cache_forgets_packages_unused_for_too_long(tmp_path: Path):
    cache = DebCache(tmp_path / "debs", "bookworm", "amd64")
    archives = tmp_path / "archives"
    archives.mkdir()
    for name in ("used_1_all.deb", "stale_1_all.deb"):
        (archives / name).write_bytes(deb(name.encode()))
    cache.harvest(archives)
    old = time.time() - 40 * 86400
    for file in cache.files.iterdir():
        os.utime(file, (old, old))
    (cache.dir / "unverified_1_all.deb").write_bytes(deb(b"layout before by-hash"))
    assert cache.refresh(["used_1_all.deb"], max_age_days=30) == 1
    assert [p.name for p in cache.dir.glob("*.deb")] == ["used_1_all.deb"]
    assert cached(cache, "used_1_all.deb") == deb(b"used_1_all.deb")


PACKAGES_LIST = """\
Package: good
Version: 1:2.0-1
Architecture: amd64
Filename: pool/main/g/good/good_2.0-1_amd64.deb
SHA256: {good}

Package: forged
Version: 1.0
Architecture: all
SHA256: {real}
"""


def test_cached_packages_are_kept_only_when_the_lists_vouch_for_their_hash(tmp_path: Path):
    """apt checks only the size of a package in its archives directory: verify-archives.sh,
    run before apt, removes every cached package whose hash the build's own lists do not
    give."""
    cache = DebCache(tmp_path / "debs", "bookworm", "amd64")
    downloaded = tmp_path / "downloaded"
    downloaded.mkdir()
    for name, content in (("good_1%3a2.0-1_amd64.deb", b"good"), ("forged_1.0_all.deb", b"x"),
                          ("old_0.9_all.deb", b"old")):
        (downloaded / name).write_bytes(deb(content))
    cache.harvest(downloaded)
    root = tmp_path / "root"
    lists = root / "var/lib/apt/lists"
    lists.mkdir(parents=True)
    (lists / "deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages").write_text(
        PACKAGES_LIST.format(good=hashlib.sha256(deb(b"good")).hexdigest(),
                             real=hashlib.sha256(deb(b"real")).hexdigest()))
    archives = root / "var/cache/apt/archives"
    assert cache.seed(archives) == 3
    done = subprocess.run(["sh", SCRIPTS / "verify-archives.sh", root], capture_output=True,
                          text=True, check=True)
    assert sorted(p.name for p in archives.iterdir()) == ["good_1%3a2.0-1_amd64.deb"]
    assert "1 of 3 cached packages match the package lists" in done.stderr


def test_no_docs_prunes_what_tar_extracted_against_the_dpkg_rules(tmp_path: Path):
    """mmdebstrap extracts the essential packages with tar, which ignores dpkg's path rules:
    the extract hook removes what they exclude, and keeps what they include."""
    share = tmp_path / "usr/share"
    kept = ["doc/bash/copyright", "locale/locale.alias", "bash-completion/bash"]
    gone = ["doc/bash/README", "doc/util-linux/examples/a.sh", "man/man1/ls.1.gz",
            "man/fr/man1/ls.1.gz", "info/dir", "locale/de/LC_MESSAGES/bash.mo"]
    for name in kept + gone:
        (share / name).parent.mkdir(parents=True, exist_ok=True)
        (share / name).write_text(name)
    (share / "doc/libc6-dev").symlink_to("libc6")
    subprocess.run(["sh", SCRIPTS / "no-docs.sh", tmp_path, "prune"], check=True)
    assert sorted(str(p.relative_to(share)) for p in share.rglob("*") if not p.is_dir()) == \
        sorted(kept)
    assert not (share / "locale/de").exists() and (share / "man").is_dir()


def test_package_lists_are_kept_per_source_and_taken_only_as_regular_files(tmp_path: Path):
    sources = ["deb http://deb.debian.org/debian bookworm main",
               "deb http://deb.debian.org/debian-security bookworm-security main",
               "deb [trusted=yes] http://example.org/flat ./",
               "deb http://mirror:8080/debian bookworm main"]
    assert prefixes(sources) == ("deb.debian.org_debian_dists_bookworm_",
                                 "deb.debian.org_debian-security_dists_bookworm-security_")
    wanted = prefixes(sources[:1])
    lists = tmp_path / "tree" / LISTS
    lists.mkdir(parents=True)
    names = {"deb.debian.org_debian_dists_bookworm_InRelease": "release",
             "deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages": "packages",
             "other.org_debian_dists_bookworm_InRelease": "another source",
             "deb.debian.org_debian_dists_bookworm_main_i18n_Translation-en": "not kept"}
    for name, text in names.items():
        (lists / name).write_text(text)
    secret = tmp_path / "host-secret"
    secret.write_text("host file")
    (lists / "deb.debian.org_debian_dists_bookworm_main_binary-arm64_Packages").symlink_to(
        secret)
    old = time.time() - 3600
    os.utime(lists / "deb.debian.org_debian_dists_bookworm_InRelease", (old, old))
    cache = ListsCache(tmp_path / "lists")
    cache.dir.mkdir()
    assert cache.harvest(tmp_path / "tree", wanted) == 2
    assert sorted(p.name for p in cache.dir.iterdir()) == sorted(list(names)[:2])
    fresh = tmp_path / "fresh" / LISTS
    assert cache.seed(fresh, wanted) == 2
    release = fresh / "deb.debian.org_debian_dists_bookworm_InRelease"
    assert release.read_text() == "release"
    assert abs(release.stat().st_mtime - old) < 1  # apt asks the mirror: modified since then?
    assert cache.seed(tmp_path / "other" / LISTS, prefixes(sources[1:2])) == 0


# -- JEOS cache ---------------------------------------------------------------------------------
def test_concurrent_builds_of_one_recipe_make_the_tree_once(tmp_path: Path):
    cache = JeosCache(tmp_path / "jeos", max_entries=4)
    cache.root.mkdir()
    made = []

    def make(tree: Path) -> None:
        made.append(tree)
        time.sleep(0.5)
        (tree / "etc").mkdir()

    results = []

    def use(n: int) -> None:
        ctx = make_build_context(tmp_path / f"b{n}")
        with cache.use(ctx, "bookworm-amd64-k", make) as tree:
            results.append((tree.hit, (tree.path / "etc").is_dir()))

    threads = [threading.Thread(target=use, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(made) == 1
    assert sorted(results) == [(False, True), (True, True), (True, True), (True, True)]
    assert sorted(p.name for p in cache.root.iterdir()) == [
        "bookworm-amd64-k", "bookworm-amd64-k.lock"]


def test_a_failed_tree_is_not_published_and_its_staging_is_removed(tmp_path: Path):
    cache = JeosCache(tmp_path / "jeos", max_entries=4)
    cache.root.mkdir()

    def make(tree: Path) -> None:
        (tree / "partial").write_text("x")
        raise BuildCancelled("cancelled")

    with pytest.raises(BuildCancelled), cache.use(make_build_context(tmp_path / "b"), "k", make):
        pass
    assert [p.name for p in cache.root.iterdir()] == ["k.lock"]


def test_eviction_drops_the_least_recently_used_trees_but_never_one_in_use(tmp_path: Path):
    cache = JeosCache(tmp_path / "jeos", max_entries=2)
    cache.root.mkdir()
    ctx = make_build_context(tmp_path / "b")

    def make(tree: Path) -> None:
        (tree / "etc").mkdir()

    with cache.use(ctx, "old-in-use", make):
        for key in ("a", "b", "c"):
            with cache.use(ctx, key, make) as base:
                image_of(base.path, GiB).write_bytes(b"image")  # as a build makes it
            time.sleep(0.01)
        trees = sorted(p.name for p in cache.root.iterdir() if p.is_dir())
    assert "old-in-use" in trees and "c" in trees
    assert "a" not in trees
    images = [p.name for p in cache.root.glob("*.ext4")]
    assert image_of(cache.root / "c", GiB).name in images  # a tree's images go with it
    assert not any(name.startswith("a.") for name in images)


def test_a_jeos_tree_keeps_the_images_of_the_root_sizes_used_last(tmp_path: Path):
    tree = tmp_path / "key"
    for age, size in enumerate([3 * GiB, 2 * GiB, GiB]):
        image = image_of(tree, size)
        image.write_bytes(b"image")
        os.utime(image, (1000 - age, 1000 - age))
    _forget_older(tree)
    assert sorted(p.name for p in tmp_path.glob("*.ext4")) == sorted(
        image_of(tree, size).name for size in (3 * GiB, 2 * GiB))


def test_waiting_for_a_tree_honours_cancellation(tmp_path: Path):
    cache = JeosCache(tmp_path / "jeos", max_entries=2)
    cache.root.mkdir()
    started = threading.Event()

    def slow(tree: Path) -> None:
        started.set()
        time.sleep(2)
        (tree / "etc").mkdir()

    def make_it() -> None:
        with cache.use(make_build_context(tmp_path / "a"), "k", slow):
            pass

    maker = threading.Thread(target=make_it)
    maker.start()
    started.wait(5)
    waiter = make_build_context(tmp_path / "w")
    threading.Timer(0.3, waiter.cancel_event.set).start()
    began = time.monotonic()
    with pytest.raises(BuildCancelled), cache.use(waiter, "k", slow):
        pass
    assert time.monotonic() - began < 1.5
    maker.join()


# -- progress -----------------------------------------------------------------------------------
def test_progress_follows_milestones_in_order(tmp_path: Path):
    ctx = make_build_context(tmp_path)
    watched = watching(ctx, [Milestone("I: a", 10, "a"), Milestone("I: b", 20, "b"),
                             Milestone("Unpacking ", 50, "unpack", after_previous=True)])
    for line in ("Unpacking early", "I: b", "Unpacking late", "I: a"):
        watched.log(line)
    assert ctx.reports == [(20, "b"), (50, "unpack")]
    assert "Unpacking early" in ctx.lines


def test_phases_log_their_wall_time_in_one_stable_line(tmp_path: Path):
    ctx = make_build_context(tmp_path)
    with phase(ctx, "root-fs"):
        time.sleep(0.15)
    with pytest.raises(RuntimeError), phase(ctx, "esp"):
        raise RuntimeError("a failed phase logs no time")
    (line,) = [line for line in ctx.lines if line.startswith("phase ")]
    assert re.fullmatch(r"phase root-fs: 0\.[1-9] s", line)
    assert phases.parse(["phase total: 12.3 s", "noise", line]) == {
        "total": 12.3, "root-fs": float(line.split()[2])}


def test_a_long_commands_phases_are_told_by_its_output(tmp_path: Path):
    ctx = make_build_context(tmp_path)
    with phases.marked(ctx, "lists", [("I: a", "a"), ("I: skipped", "b"), ("I: c", "c")]) as timed:
        for text in ("I: a", "noise", "I: c", "I: a"):
            timed.log(text)
    assert list(phases.parse(ctx.lines)) == ["lists", "a", "c"]
    assert ctx.lines[:2] == ["I: a", "phase lists: 0.0 s"]
