#!/usr/bin/env python3
"""Render the plugin template (templates/imagefactory-plugin) for both kinds and prove that
each result is a working plugin: ruff clean, its noxfile loads, it builds and passes
``twine check``, it installs beside imagefactory-core, its own tests pass, and a real
``imagefactory serve`` lists it and completes builds through it (a base image of the OS
plugin's OS, a target image of the cloud plugin's target made from it, a push into the cloud
plugin's directory provider and a delete there).

`nox -s template` and tests/template/test_cookiecutter.py both run this script. It uses the
interpreter it runs with, which must have imagefactory-core, cookiecutter, build, twine,
pytest, ruff and nox installed. The rendered projects are installed without dependencies into
a directory of their own that only the commands run here see (PYTHONPATH): the environment
itself is left as it was.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import requests
from cookiecutter.main import cookiecutter

REPO = Path(__file__).resolve().parent.parent
TEMPLATE = REPO / "templates" / "imagefactory-plugin"
# The plugin names the check renders: ids check_os and check_cloud, distributions
# imagefactory-check-os and imagefactory-check-cloud.
NAMES = {"os": "check-os", "cloud": "check-cloud"}
OS_ID, CLOUD_ID = "check_os", "check_cloud"
PACKAGES = {"os": "imagefactory_check_os", "cloud": "imagefactory_check_cloud"}
SETTLED = ("COMPLETE", "FAILED", "DELETED", "DELETEFAILED")
BUILD_TIMEOUT = 120.0
START_TIMEOUT = 30.0
MOTD = "built through the template's OS plugin\n"
TDL = f"""<template>
  <name>template-check</name>
  <description>the plugin template's end-to-end check</description>
  <os>
    <name>{OS_ID}</name>
    <version>1</version>
    <arch>x86_64</arch>
    <install type='url'><url>http://example.org/unused/</url></install>
  </os>
  <files><file name='/etc/motd'>{MOTD}</file></files>
</template>"""


STARTED = time.monotonic()


class CheckFailed(Exception):
    """What did not work, with the output that says why."""


def step(message: str) -> None:
    print(f"[{time.monotonic() - STARTED:6.1f} s] {message}", flush=True)


def run(argv: list[str], *, cwd: Path | None = None, env: dict[str, str] | None = None,
        timeout: float = 300) -> str:
    """Run a command; its output, or CheckFailed with that output."""
    result = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True,
                            timeout=timeout, check=False)
    output = result.stdout + result.stderr
    if result.returncode != 0:
        raise CheckFailed(f"{' '.join(argv)} (in {cwd}) exited with {result.returncode}:\n"
                          f"{output}")
    return output


def render(kind: str, out: Path) -> Path:
    """The template rendered for `kind`, as a plugin author would with cookiecutter."""
    return Path(cookiecutter(str(TEMPLATE), no_input=True, output_dir=str(out),
                             extra_context={"plugin_name": NAMES[kind], "kind": kind,
                                            "author_name": "Template Check",
                                            "author_email": "check@example.org"}))


def check_refusal(out: Path) -> None:
    """A name that would make an unusable plugin (here a shipped plugin's id) is refused,
    saying why, before anything is written."""
    result = subprocess.run([sys.executable, "-m", "cookiecutter", "--no-input",
                             "--output-dir", str(out), str(TEMPLATE), "plugin_name=debian",
                             "kind=os"], capture_output=True, text=True, check=False)
    if result.returncode == 0 or "a plugin imagefactory ships" not in result.stderr:
        raise CheckFailed(f"the template did not refuse the name debian:\n{result.stderr}")
    if out.exists() and any(out.iterdir()):
        raise CheckFailed(f"the refused name debian left files in {out}")


def check_project(kind: str, project: Path, dist: Path) -> None:
    """Only `kind`'s code was rendered; the project is ruff clean, its noxfile offers the
    tests and lint sessions, and it builds into distributions PyPI would take."""
    package = project / "src" / PACKAGES[kind]
    modules = {path.name for path in package.iterdir()}
    own = {"os": "filesystem.py", "cloud": "directory.py"}
    other = own["cloud" if kind == "os" else "os"]
    if own[kind] not in modules or other in modules or (project / "kinds").exists():
        raise CheckFailed(f"{project} does not hold {kind} code only: {sorted(modules)}")
    run([sys.executable, "-m", "ruff", "check", "--no-cache", "."], cwd=project)
    listed = run([sys.executable, "-m", "nox", "--list", "--no-color"], cwd=project)
    if "tests" not in listed or "lint" not in listed:
        raise CheckFailed(f"{project}/noxfile.py lacks the tests or lint session:\n{listed}")
    run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(dist), "."],
        cwd=project)
    run([sys.executable, "-m", "twine", "check", "--strict",
         *map(str, sorted(dist.glob(f"{PACKAGES[kind]}-*")))])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def service(root: Path, env: dict[str, str], provider_root: Path) -> Iterator[str]:
    """A real ``imagefactory serve`` on 127.0.0.1 with the rendered plugins (other installed
    plugins disabled, so only these are under test); yields its base URL."""
    port = free_port()
    shipped = sorted({ep.name for ep in entry_points(group="imagefactory.plugins")})
    config = root / "imagefactory.conf"
    config.write_text(json.dumps({
        "state_dir": str(root / "state"),
        "cache_path": str(root / "cache"),
        "disabled_plugins": shipped,
        "plugins": {CLOUD_ID: {f"{CLOUD_ID}_directories": [str(provider_root)]}},
        "server_threads": 4,
    }))
    log = root / "service.log"
    command = [str(Path(sys.executable).with_name("imagefactory")), "serve", "--config",
               str(config), "--address", "127.0.0.1", "--port", str(port), "--no-ssl",
               "--no-oauth"]
    url = f"http://127.0.0.1:{port}/imagefactory"
    with log.open("wb") as output:
        proc = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=output,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if proc.poll() is not None:
                raise CheckFailed(f"imagefactory serve exited with {proc.returncode}:\n"
                                  f"{log.read_text(errors='replace')[-4000:]}")
            try:
                if requests.get(url, timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                raise CheckFailed(f"imagefactory serve did not answer within {START_TIMEOUT} s")
            time.sleep(0.1)
        try:
            yield url
        except CheckFailed as failure:
            raise CheckFailed(f"{failure}\n--- service log ---\n"
                              f"{log.read_text(errors='replace')[-4000:]}") from None
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def expect(answer: requests.Response, status: int) -> dict[str, Any]:
    if answer.status_code != status:
        raise CheckFailed(f"{answer.request.method} {answer.url} answered "
                          f"{answer.status_code}, not {status}: {answer.text}")
    return answer.json() if answer.content else {}


def settled(url: str, kind: str, image_id: str, wanted: str) -> dict[str, Any]:
    """Poll an image until its status settles; it must settle as `wanted`."""
    href = f"{url}/{kind}s/{image_id}"
    deadline = time.monotonic() + BUILD_TIMEOUT
    while True:
        image = expect(requests.get(href, timeout=10), 200)[kind]
        if image["status"] in SETTLED:
            break
        if time.monotonic() > deadline:
            raise CheckFailed(f"{href} still {image['status']} after {BUILD_TIMEOUT} s")
        time.sleep(0.2)
    if image["status"] != wanted:
        build_log = requests.get(f"{href}/log", timeout=10).text
        raise CheckFailed(f"{href} ended {image['status']}, not {wanted}: "
                          f"{image['status_detail']}\n--- build log ---\n{build_log[-4000:]}")
    return image


def create(url: str, kind: str, fields: dict[str, Any]) -> dict[str, Any]:
    """POST an image; it must be accepted and COMPLETE."""
    image = expect(requests.post(f"{url}/{kind}s", json={kind: fields}, timeout=30), 202)
    return settled(url, kind, image[kind]["id"], "COMPLETE")


def download(url: str, kind: str, image_id: str, path: Path) -> Path:
    with requests.get(f"{url}/{kind}s/{image_id}/raw_image", stream=True, timeout=30) as body:
        if body.status_code != 200:
            raise CheckFailed(f"raw_image of {kind} {image_id}: {body.status_code}")
        with path.open("wb") as out:
            for chunk in body.iter_content(1024 * 1024):
                out.write(chunk)
    return path


def check_service(url: str, root: Path, provider_root: Path) -> None:
    """The plugins are listed, and a build through each completes."""
    listed = {entry["id"]: entry
              for entry in expect(requests.get(f"{url}/plugins", timeout=10), 200)["plugins"]}
    for plugin_id, kind in ((OS_ID, "os"), (CLOUD_ID, "cloud")):
        entry = listed.get(plugin_id)
        if entry is None or entry["status"] != "loaded" or entry["type"] != kind:
            raise CheckFailed(f"GET /imagefactory/plugins does not list {plugin_id} as a "
                              f"loaded {kind} plugin: {entry or sorted(listed)}")
    step(f"the service lists {OS_ID} and {CLOUD_ID}; building a base image")

    base = create(url, "base_image", {"template": TDL})
    disk = download(url, "base_image", base["id"], root / "base.raw")
    motd = run(["debugfs", "-R", "cat /etc/motd", str(disk)])
    if MOTD not in motd or "/etc/motd" not in (base["icicle"] or ""):
        raise CheckFailed(f"the base image lacks the template's file: {motd!r}, "
                          f"ICICLE {base['icicle']!r}")
    step("base image COMPLETE; building a vmdk target image from it")

    target = create(url, "target_image", {"base_image_id": base["id"], "target": CLOUD_ID,
                                          "parameters": {f"{CLOUD_ID}_format": "vmdk"}})
    if target["properties"].get("disk_format") != "vmdk":
        raise CheckFailed(f"the target image is not vmdk: {target['properties']}")
    step("target image COMPLETE; pushing it to the directory provider")

    credentials = {f"{CLOUD_ID}_credentials": {}}
    refused = expect(requests.post(f"{url}/provider_images", timeout=30, json={
        "provider_image": {"target_image_id": target["id"], "provider": {"directory": "/etc"},
                           "credentials": credentials}}), 400)
    if "not one pushes may use" not in refused.get("description", ""):
        raise CheckFailed(f"a directory outside the operator's was refused, but why? {refused}")
    provider = {"directory": str(provider_root / "images")}
    pushed = create(url, "provider_image", {"target_image_id": target["id"],
                                            "provider": provider, "credentials": credentials})
    copy = provider_root / "images" / pushed["identifier_on_provider"]
    original = download(url, "target_image", target["id"], root / "target.vmdk")
    if not copy.is_file() or copy.read_bytes() != original.read_bytes():
        raise CheckFailed(f"{copy} is not the target image")
    step(f"provider image COMPLETE as {copy}; deleting it there")

    expect(requests.delete(f"{url}/provider_images/{pushed['id']}", timeout=30, json={
        "provider_image": {"provider": provider, "credentials": credentials,
                           "target": CLOUD_ID}}), 204)
    settled(url, "provider_image", pushed["id"], "DELETED")
    if copy.exists():
        raise CheckFailed(f"the provider image was DELETED but {copy} is still there")
    step("provider image DELETED and its file gone")


def check(root: Path) -> None:
    step(f"rendering {TEMPLATE.relative_to(REPO)} for both kinds into {root}")
    check_refusal(root / "refused")
    projects = {kind: render(kind, root / "rendered") for kind in NAMES}
    dist = root / "dist"
    for kind, project in projects.items():
        check_project(kind, project, dist)
        step(f"{project.name}: {kind} code only, ruff clean, noxfile loads, twine check passes")
    site = root / "site"
    run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
         "--target", str(site), *map(str, sorted(dist.glob("*.whl")))])
    env = {**os.environ,
           "PYTHONPATH": os.pathsep.join(filter(None, [str(site),
                                                       os.environ.get("PYTHONPATH")]))}
    step("both wheels installed beside imagefactory-core")
    for project in projects.values():
        output = run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
                     cwd=project, env=env)
        step(f"{project.name}: {output.strip().splitlines()[-1]}")
    provider_root = root / "provider"
    (provider_root / "images").mkdir(parents=True)
    (root / "service").mkdir()
    with service(root / "service", env, provider_root) as url:
        step(f"imagefactory serve answers at {url}")
        check_service(url, root, provider_root)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", action="store_true",
                        help="keep the rendered projects and the service's files")
    args = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="imagefactory-template-"))
    try:
        check(root)
    except CheckFailed as failure:
        print(f"FAILED: {failure}", file=sys.stderr)
        print(f"(files kept in {root})", file=sys.stderr)
        return 1
    if args.keep:
        step(f"files kept in {root}")
    else:
        shutil.rmtree(root)
    step("the plugin template works for both kinds")
    return 0


if __name__ == "__main__":
    sys.exit(main())
