"""Apply a template's customisation to a root tree, in the order TDL documents.

Repositories, precommands, packages, files, commands, then the repositories that are not
``persisted`` are removed. Cloud plugins' `TargetContent` goes through the same steps
(packages, files, commands) via `apply_content`.

Repositories. A TDL repository has one ``<url>``. A URL alone is a flat repository (``deb URL
./``); a URL followed by a suite and components (``http://host/debian bookworm-backports main``)
is an ordinary one. ``signed=no`` (TDL's default) marks it ``trusted=yes`` for apt;
``signed=yes`` makes apt verify it against the keys in the image, which a precommand can add
(``/etc/apt/trusted.gpg.d``) since precommands run before packages. ``sslverify=no`` (the
default) turns off certificate checks for that host.

Packages are installed with apt-get, without recommended packages unless
``install_recommends`` is set. A package's ``<repository>``, ``<file>`` and ``<arguments>``
have no meaning for apt and are logged as ignored.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Iterable, Sequence

from imagefactory_core.plugin import (
    BuildContext,
    BuildError,
    Command,
    CommandFailed,
    File,
    Repository,
    TargetContent,
    Template,
)

from .debcache import DebCache, cached_archives
from .fetch import fetch
from .progress import Milestone, watching
from .rootfs import SCRIPT, SCRIPTS, RootFS
from .settings import Settings, checked_url

_PACKAGE = re.compile(r"[a-z0-9][a-z0-9+.-]*(:[a-z0-9-]+)?([=/][A-Za-z0-9.+~:_-]+)?")
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
_SUITE_WORD = re.compile(r"[A-Za-z0-9._/-]{1,100}")
BUILD_SOURCES = "/etc/apt/imagefactory-build.list"
"""Where the sources of a build-only mirror go (removed by build-env.sh end)."""
_APT_INSTALL = ["apt-get", "install", "--yes", "-o", "Dpkg::Options::=--force-confdef",
                "-o", "Dpkg::Options::=--force-confold"]
_APT_MILESTONES = [
    Milestone("Get:", 10, "customise: download packages"),
    Milestone("Unpacking ", 50, "customise: unpack packages"),
    Milestone("Setting up ", 70, "customise: configure packages"),
]


def customise(ctx: BuildContext, root: RootFS, template: Template, settings: Settings,
              debs: DebCache) -> None:
    """Apply every customisation `template` asks for (progress 0-100 of `ctx`)."""
    begin_build_environment(ctx, root)
    if template.repositories:
        ctx.progress(0, "customise: repositories")
        add_repositories(ctx, root, template.repositories, settings, debs)
    if template.precommands:
        ctx.progress(5, "customise: precommands")
        run_commands(ctx, root, template.precommands, settings.command_timeout, "precommand")
    if template.packages:
        ctx.progress(15, "customise: packages")
        for package in template.packages:
            ignored = [tag for tag in ("repository", "file", "arguments")
                       if getattr(package, tag) is not None]
            if ignored:
                ctx.log(f"package {package.name}: <{'>, <'.join(ignored)}> ignored by apt")
        install_packages(ctx.scaled(15, 70), root, [p.name for p in template.packages],
                         settings, debs)
    if template.files:
        ctx.progress(70, "customise: files")
        write_files(ctx, root, [(f.name, _file_data(ctx, f)) for f in template.files])
    if template.commands:
        ctx.progress(75, "customise: commands")
        run_commands(ctx, root, template.commands, settings.command_timeout, "command")
    transient = [r for r in template.repositories if not r.persisted]
    if transient:
        ctx.progress(98, "customise: removing repositories that are not persisted")
        root.run(ctx, ["rm", "-f", *(path for r in transient for path in _repository_paths(r))])
    end_build_environment(ctx, root)
    ctx.progress(100)


def apply_content(ctx: BuildContext, root: RootFS, content: TargetContent,
                  settings: Settings, debs: DebCache, sources: Sequence[str] = ()) -> None:
    """Apply a cloud plugin's packages, files and commands (progress 0-100 of `ctx`), with apt
    reading `sources` instead of the image's own when given."""
    begin_build_environment(ctx, root, sources)
    if content.packages:
        ctx.progress(0, "customise: target packages")
        install_packages(ctx.scaled(0, 80), root, list(content.packages), settings, debs)
    if content.files:
        ctx.progress(80, "customise: target files")
        write_files(ctx, root, list(content.files.items()))
    if content.commands:
        ctx.progress(85, "customise: target commands")
        commands = [Command(f"target command {n}", body)
                    for n, body in enumerate(content.commands, 1)]
        run_commands(ctx, root, commands, settings.command_timeout, "command")
    end_build_environment(ctx, root)
    ctx.progress(100)


def begin_build_environment(ctx: BuildContext, root: RootFS,
                            sources: Sequence[str] = ()) -> None:
    """Settings for the build only: the proxy, and `sources` (one-line apt sources) that apt
    reads instead of the image's own until `end_build_environment`. The values are checked
    parameters (URLs without quotes or white space), so they cannot break out of the lines.
    apt reaches the network through the sandbox's egress proxy, which goes through
    ``apt_proxy`` when the operator set one (`install_packages`)."""
    options = []
    if sources:
        root.write_file(ctx, BUILD_SOURCES, "".join(f"{line}\n" for line in sources).encode())
        options += [f'Dir::Etc::SourceList "{BUILD_SOURCES}";',
                    f'Dir::Etc::SourceParts "{BUILD_SOURCES}.d";']
    root.run_script(ctx, SCRIPTS / "build-env.sh", "begin", *options)


def end_build_environment(ctx: BuildContext, root: RootFS) -> None:
    root.run_script(ctx, SCRIPTS / "build-env.sh", "end")


def add_repositories(ctx: BuildContext, root: RootFS, repositories: Iterable[Repository],
                     settings: Settings, debs: DebCache) -> None:
    repositories = list(repositories)
    if any(_checks_certificates(r) for r in repositories) and not _exists(ctx, root, CA_BUNDLE):
        ctx.log("an https repository with sslverify=yes needs ca-certificates: installing it")
        install_packages(ctx, root, ["ca-certificates"], settings, debs)
    for repository in repositories:
        sources, apt_conf = _repository_paths(repository)
        root.write_file(ctx, sources, (_source_line(repository) + "\n").encode())
        host = urllib.parse.urlsplit(repository.url.split()[0]).hostname
        if repository.url.startswith("https://") and not repository.sslverify and host:
            options = (f'Acquire::https::{host}::Verify-Peer "false";\n'
                       f'Acquire::https::{host}::Verify-Host "false";\n')
            root.write_file(ctx, apt_conf, options.encode())


def install_packages(ctx: BuildContext, root: RootFS, names: list[str], settings: Settings,
                     debs: DebCache) -> None:
    """apt-get update, then apt-get install `names` (packages from and into `debs`)."""
    for name in names:
        if not _PACKAGE.fullmatch(name):
            raise BuildError(f"'{name}' is not a Debian package name (name[:arch][=version])")
    ctx.progress(0, "customise: package lists")
    root.run(ctx, ["apt-get", "update"], network=True, egress_allow=settings.egress_allow,
             egress_via=settings.apt_proxy)
    recommends = [] if settings.install_recommends else ["--no-install-recommends"]
    # The cached packages are verified against the lists just updated, then apt runs.
    argv = ["/bin/sh", "-c", f'sh {SCRIPT} / && exec "$@"', "sh",
            *_APT_INSTALL, *recommends, "--", *names]
    with cached_archives(ctx, root.scratch, debs) as archives:
        try:
            root.run(watching(ctx, _APT_MILESTONES), argv, network=True, archives=archives,
                     script=SCRIPTS / "verify-archives.sh", egress_allow=settings.egress_allow,
                     egress_via=settings.apt_proxy)
        except CommandFailed as error:
            raise BuildError(f"installing packages {' '.join(names)} failed "
                             f"(exit code {error.returncode}):\n{error.output_tail}") from error
    ctx.progress(100)


def write_files(ctx: BuildContext, root: RootFS, files: list[tuple[str, bytes]]) -> None:
    for path, data in files:
        if not path.startswith("/") or ".." in path.split("/"):
            raise BuildError(f"file name '{path}' must be an absolute path without '..'")
        ctx.log(f"writing {path} ({len(data)} bytes)")
        root.write_file(ctx, path, data)


def run_commands(ctx: BuildContext, root: RootFS, commands: Iterable[Command], timeout: int,
                 kind: str) -> None:
    """Run each command in the tree; the first that fails fails the build with its output."""
    for command in commands:
        body = command.body
        if command.type == "url":
            body = fetch(ctx, command.body, f"{kind} {command.name}").decode("utf-8", "replace")
        ctx.log(f"running {kind} {command.name}")
        try:
            root.run_text(ctx, body, timeout=timeout, network=True)
        except CommandFailed as error:
            raise BuildError(f"{kind} '{command.name}' failed (exit code {error.returncode}):\n"
                             f"{error.output_tail}") from error


def _file_data(ctx: BuildContext, file: File) -> bytes:
    if file.type == "url":
        return fetch(ctx, file.content, f"file {file.name}")
    return file.data()


def _source_line(repository: Repository) -> str:
    """The sources.list line of a TDL repository: ``URL [SUITE [COMPONENT…]]``, each word
    checked, since one newline or option would add a source of the template's choosing."""
    words = repository.url.split()
    if not words:
        raise BuildError(f"repository {repository.name!r} has no URL")
    checked_url(words[0], f"repository {repository.name!r} <url>")
    for word in words[1:]:
        if not _SUITE_WORD.fullmatch(word):
            raise BuildError(f"repository {repository.name!r}: {word[:60]!r} is not a suite or "
                             "component name (letters, digits, '.', '_', '-', '/')")
    options = "" if repository.signed else "[trusted=yes] "
    location = words if len(words) > 1 else [words[0], "./"]
    return f"deb {options}{' '.join(location)}"


def _repository_paths(repository: Repository) -> tuple[str, str]:
    """The sources.list.d file and the apt.conf.d file of a repository (apt accepts only
    letters, digits, '_', '-' and '.' in those names)."""
    slug = re.sub(r"[^A-Za-z0-9_.-]", "-", repository.name)
    return (f"/etc/apt/sources.list.d/imagefactory-{slug}.list",
            f"/etc/apt/apt.conf.d/90imagefactory-{slug}")


def _checks_certificates(repository: Repository) -> bool:
    return repository.url.startswith("https://") and repository.sslverify


def _exists(ctx: BuildContext, root: RootFS, path: str) -> bool:
    result = root.run(ctx, ["/bin/sh", "-c", 'test -e "$1" && echo yes || true', "sh", path],
                      capture=True)
    return result.stdout.strip() == "yes"
