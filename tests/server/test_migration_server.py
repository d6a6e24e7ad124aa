"""An operator and a client of the original Image Factory against a real `imagefactory serve`
on 127.0.0.1: the original's imagefactory.conf and daemon options start the service (TLS from
one PEM, OAuth clients, image storage, unused keys reported once in the log), and curl's
multipart forms (``curl -F``) and body-less DELETEs get what the seed document promises."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
from collections.abc import Iterator
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest
import requests
from imagefactory_core.tls import ensure_certificate
from oauthlib.oauth1 import Client as OAuthClient
from requests_oauthlib import OAuth1

from tests.rest.conftest import SEED_CREDENTIALS, fake_tdl

from .conftest import (
    CLIENTS,
    IMAGEFACTORY,
    REPO,
    START_TIMEOUT,
    ServerProcess,
    free_port,
    wait_until,
)

pytestmark = pytest.mark.slow

ORIGINAL_CLIENTS = {"mock-key": "mock-secret"}
CLOUD_PLUGIN = "tests.plugins.fake_cloud"


class OriginalDaemon:
    """`imagefactory serve` started as the original's imagefactoryd was: its config file and
    its options. Where the original has no key (our state directory, the test plugins), the
    environment says it, so the file holds the original's keys alone."""

    def __init__(self, root: Path, conf: dict[str, Any], *options: str):
        self.root = root
        self.port = free_port()
        self.conf = root / "imagefactory.conf"
        self.conf.write_text(json.dumps(conf))
        self.options = options
        self.log_file = root / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, cert: Path) -> OriginalDaemon:
        env = {k: v for k, v in os.environ.items() if not k.startswith("IMAGEFACTORY_")}
        env.update({
            "PYTHONPATH": str(REPO),
            "IMAGEFACTORY_STATE_DIR": str(self.root / "state"),
            "IMAGEFACTORY_CACHE_PATH": str(self.root / "cache"),
            "IMAGEFACTORY_SERVER_THREADS": "4",
            "IMAGEFACTORY_PLUGIN_MODULES": "tests.plugins.fake_os,tests.plugins.fake_cloud",
            "IMAGEFACTORY_DISABLED_PLUGINS": ",".join(
                sorted({ep.name for ep in entry_points(group="imagefactory.plugins")})),
        })
        with self.log_file.open("ab") as log:
            self.proc = subprocess.Popen(
                [str(IMAGEFACTORY), "serve", "--config", str(self.conf), "--port",
                 str(self.port), "--address", "127.0.0.1", *self.options],
                cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True)

        def answers() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"the server exited with {self.proc.returncode}:\n"
                                     + self.log()[-4000:])
            with contextlib.suppress(requests.RequestException):
                return requests.get(self.url, verify=str(cert), timeout=2).status_code == 200
            return False

        wait_until(answers, START_TIMEOUT, f"the server to answer:\n{self.log()[-2000:]}")
        return self

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}/imagefactory"

    def log(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


@pytest.fixture
def original_daemon(tmp_path: Path) -> Iterator[list[OriginalDaemon]]:
    made: list[OriginalDaemon] = []
    yield made
    for daemon in made:
        daemon.stop()


def test_an_original_conf_and_the_daemons_options_start_the_service(tmp_path, original_daemon):
    cert, key = ensure_certificate(tmp_path / "tls" / "cert.pem", tmp_path / "tls" / "key.pem")
    pem = tmp_path / "server.pem"  # the original's ssl_pem: certificate and key in one file
    pem.write_bytes(cert.read_bytes() + key.read_bytes())
    conf = {
        "debug": 0, "no_ssl": 0, "no_oauth": 0,
        "imgdir": str(tmp_path / "images"),
        "ec2_ami_type": "ebs", "rhevm_image_format": "qcow2",
        "clients": ORIGINAL_CLIENTS,
        "proxy_ami_id": "ami-id",
        "max_concurrent_local_sessions": 2, "max_concurrent_ec2_sessions": 4,
        "ec2-32bit-util": "m1.small", "ec2-64bit-util": "t2.micro",
        "image_manager": "file",
        "image_manager_args": {"storage_path": str(tmp_path / "storage")},
        "tdl_require_root_pw": 0,
        "jeos_config": ["/etc/imagefactory/jeos_images/"],
    }
    daemon = OriginalDaemon(tmp_path, conf, "--ssl_pem", str(pem), "--imgdir",
                            str(tmp_path / "fast-disk"), "--foreground", "--tmpdir", "/tmp")
    original_daemon.append(daemon)
    daemon.start(cert)

    unsigned = requests.post(f"{daemon.url}/base_images", verify=str(cert), timeout=30,
                             json={"base_image": {"template": fake_tdl()}})
    assert unsigned.status_code == 401, unsigned.text  # OAuth on, with the original's clients
    auth = OAuth1(*next(iter(ORIGINAL_CLIENTS.items())))
    created = requests.post(f"{daemon.url}/base_images", verify=str(cert), timeout=30,
                            auth=auth, json={"base_image": {"template": fake_tdl()}})
    assert created.status_code == 202, created.text
    href = created.json()["base_image"]["href"]

    def settled() -> dict[str, Any] | None:
        shown = requests.get(href, verify=str(cert), timeout=30).json()["base_image"]
        return shown if shown["status"] in ("COMPLETE", "FAILED") else None

    done = wait_until(settled, 60, "the base image to settle")
    assert done["status"] == "COMPLETE", done["status_detail"]
    # --imgdir on the command line wins over the file's image_manager_args.storage_path
    assert (tmp_path / "fast-disk" / f"{done['id']}.body").is_file()
    assert not (tmp_path / "storage").exists()

    log = daemon.log()
    for name in ("key 'proxy_ami_id'", "key 'max_concurrent_ec2_sessions'",
                 "key 'ec2-32bit-util'", "key 'ec2-64bit-util'", "key 'rhevm_image_format'",
                 "key 'jeos_config'", "key 'imgdir'", "option --foreground",
                 "option --tmpdir"):
        lines = [line for line in log.splitlines() if f"{name} of the original" in line]
        assert len(lines) == 1, (name, lines)
        assert " WARNING " in lines[0] and "is not used: " in lines[0], lines[0]
    mapped = [line for line in log.splitlines() if "read the original Image Factory's" in line]
    assert len(mapped) == 2, mapped
    assert "option --ssl_pem -> ssl_cert and ssl_key" in mapped[1]
    assert "option --imgdir -> storage_path" in mapped[1]
    assert "mock-secret" not in log


# -- curl -F and the seed's DELETE -------------------------------------------------------------
def curl(server: ServerProcess, method: str, path: str, *form: str) -> tuple[int, Any]:
    """curl with its -F form fields, signed with OAuth 1.0a as the original's clients signed
    (a multipart body is not part of the signature); the status and the JSON answer."""
    url = server.url + path
    _, headers, _ = OAuthClient(*next(iter(CLIENTS.items()))).sign(url, http_method=method)
    args = [arg for field in form for arg in ("-F", field)]
    result = subprocess.run(
        ["curl", "-sS", "-X", method, "-H", f"Authorization: {headers['Authorization']}",
         "-H", "Accept: application/json", *args, "-w", "\n%{http_code}", url],
        capture_output=True, text=True, timeout=60, check=True)
    body, _, status = result.stdout.rpartition("\n")
    return int(status), json.loads(body) if body.strip() else None


@pytest.fixture
def cloud_server(servers, tmp_path) -> ServerProcess:  # type: ignore[no-untyped-def]
    """A server whose fake cloud keeps its images in a file the test reads."""
    server: ServerProcess = servers(
        plugins={CLOUD_PLUGIN: {"fake_cloud_file": str(tmp_path / "cloud.json")}})
    return server.start()


def cloud(tmp_path: Path) -> dict[str, Any]:
    return dict(json.loads((tmp_path / "cloud.json").read_text()))


def test_curl_multipart_forms_build_push_and_delete(cloud_server, tmp_path):
    template = tmp_path / "web.tdl"
    template.write_text(fake_tdl("curl"))
    credentials = tmp_path / "credentials.xml"
    credentials.write_text(SEED_CREDENTIALS)

    status, answer = curl(cloud_server, "POST", "/base_images", f"template=@{template}",
                          'parameters={"fake_build_seconds": 0}')
    assert status == 202, answer
    base = answer["base_image"]
    assert "<name>curl</name>" in base["template"]
    assert cloud_server.wait_for(f"/base_images/{base['id']}")["status"] == "COMPLETE"

    status, answer = curl(cloud_server, "POST", f"/base_images/{base['id']}/target_images",
                          "target=fakecloud")
    assert status == 202, answer
    target = answer["target_image"]
    assert cloud_server.wait_for(f"/target_images/{target['id']}")["status"] == "COMPLETE"

    pushes = []
    for _ in range(2):  # as the seed's example, with the credentials read from a file
        status, answer = curl(cloud_server, "POST",
                              f"/target_images/{target['id']}/provider_images",
                              "target=fakecloud", "provider=p1", f"credentials=<{credentials}")
        assert status == 202, answer
        pushed = cloud_server.wait_for(f"/provider_images/{answer['provider_image']['id']}")
        assert pushed["status"] == "COMPLETE", pushed["status_detail"]
        pushes.append(pushed)
    kept, removed = pushes
    assert {kept["identifier_on_provider"], removed["identifier_on_provider"]} <= set(
        cloud(tmp_path))

    # the seed's own example: a DELETE with no body answers 204, and the image stays there
    status, answer = curl(cloud_server, "DELETE", f"/provider_images/{kept['id']}")
    assert (status, answer) == (204, None)
    forgotten = cloud_server.get(f"/provider_images/{kept['id']}")
    assert forgotten["status"] == "DELETED"
    assert forgotten["status_detail"]["activity"].startswith(
        f"Forgotten: still on fakecloud as {kept['identifier_on_provider']}")
    assert kept["identifier_on_provider"] in cloud(tmp_path)
    assert f"provider image {kept['id']} forgotten by a DELETE without credentials; it " \
           f"stays on fakecloud as {kept['identifier_on_provider']}" in cloud_server.log()

    # with credentials, the DELETE removes it from the cloud too
    status, answer = curl(cloud_server, "DELETE", f"/provider_images/{removed['id']}",
                          "target=fakecloud", "provider=p1", f"credentials=<{credentials}")
    assert (status, answer) == (204, None)
    assert cloud_server.wait_for(f"/provider_images/{removed['id']}")["status"] == "DELETED"
    assert removed["identifier_on_provider"] not in cloud(tmp_path)
    assert kept["identifier_on_provider"] in cloud(tmp_path)


def test_a_curl_form_the_service_cannot_read_is_a_400_a_person_can_act_on(cloud_server):
    status, answer = curl(cloud_server, "POST", "/target_images", "target=fakecloud",
                          "target=fakecloud")
    assert status == 400
    assert answer["description"] == "form field target given more than once"
