"""Secrets audit of a real server process: a build with a root password and pushes with
credentials, secret parameters and a callback whose URL holds secrets; then every response
(body and headers), every line the server printed (access and error log), every build log,
every callback body, every row of every database table and every byte of every file under the
server's state, storage and cache directories is searched for each secret, in clear and encoded.
None may be found.

The cloud plugin is `careless_cloud`, which tries to leak everything it gets; FakeOS logs its
declared-secret ``fake_token``. The image body holds ``rootpw-set``, never the password. A
second test pushes with the real ec2 plugin to a moto server.
tests/rest/test_secrets.py checks the same in-process, with more failure paths; this one adds
the real process (gunicorn's own logging), parameters that are secret by name only (nested
too), encoded forms and the raw database rows.
"""

from __future__ import annotations

import json
import secrets
import signal
from collections.abc import Iterator
from importlib.metadata import entry_points
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.rest.conftest import fake_tdl
from tests.rest.test_callbacks import Receiver
from tests.server.conftest import SETTLED, ServerProcess, wait_until

from .careless_cloud import NAMED_SECRETS, digest
from .evidence import Evidence

pytestmark = pytest.mark.slow
MODULES = ["tests.plugins.fake_os", "tests.plugins.fake_cloud", "tests.audit.careless_cloud"]


def make_secret(label: str, url_safe: bool = False) -> str:
    """A fresh value per run; '+' and '/' make its percent-encoded form differ from it."""
    tail = "" if url_safe else "+x/y"
    return f"{label}{secrets.token_hex(8)}{tail}"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    started = Receiver()
    yield started
    started.close()


def credentials(values: dict[str, str]) -> dict[str, Any]:
    return {"careless_credentials": {"username": "alice", "password": values["cred_password"],
                                     "api_key": values["cred_api_key"],
                                     "session_token": values["cred_session_token"]}}


def credentials_xml(values: dict[str, str]) -> str:
    inner = "".join(f"<{k}>{v}</{k}>" for k, v in
                    credentials(values)["careless_credentials"].items())
    return f"<provider_credentials><careless_credentials>{inner}</careless_credentials>" \
           "</provider_credentials>"


def test_no_secret_is_found_anywhere_the_service_writes_or_answers(servers, receiver):
    values = {name: make_secret(name) for name in (
        "rootpw", "fake_token", *NAMED_SECRETS, "vault_secret", "settings_password",
        "cred_password", "cred_api_key", "cred_session_token")}
    values |= {name: make_secret(name, url_safe=True) for name in (
        "callback_password", "callback_path", "callback_query_token")}
    server: ServerProcess = servers(plugin_modules=MODULES, outbound_allow=["127.0.0.1"])
    evidence = Evidence()
    server.session.hooks["response"].append(lambda response, **_: evidence.add_response(response))
    server.start()

    callback = (f"http://hook:{values['callback_password']}@127.0.0.1:{receiver.port}"
                f"/hooks/{values['callback_path']}?token={values['callback_query_token']}")
    template = fake_tdl("audited").replace("<rootpw>changeme</rootpw>",
                                           f"<rootpw>{values['rootpw']}</rootpw>")
    parameters = {"callbacks": [callback], "fake_token": values["fake_token"],
                  **{name: values[name] for name in (*NAMED_SECRETS, "vault_secret")},
                  "settings": {"db": {"password": values["settings_password"], "port": 5432}}}

    pushed = server.post("/provider_images", {"provider_image": {
        "template": template, "target": "carelesscloud", "provider": "careless-region",
        "credentials": credentials(values), "parameters": parameters}})
    refused_form = server.request("POST", "/provider_images", data=urlencode({
        "template": template, "target": "carelesscloud", "provider": "careless-region",
        "credentials": credentials_xml(values),
        "parameters": json.dumps({**parameters, "refuse": True})}),
        headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert refused_form.status_code == 202, refused_form.text
    refused = next(iter(refused_form.json().values()))

    # Requests the service refuses must not echo what they carried either.
    bad_callback = callback.replace(f"127.0.0.1:{receiver.port}", "169.254.169.254")
    for bad in ({"callbacks": [bad_callback]}, {"api_key": [values["api_key"]]}):
        answer = server.request("POST", "/base_images", json={"base_image": {
            "template": template, "parameters": bad}})
        assert answer.status_code == 400, answer.text

    done = server.wait_for(f"/provider_images/{pushed['id']}")
    assert done["status"] == "COMPLETE", done["status_detail"]
    failed = server.wait_for(f"/provider_images/{refused['id']}")
    assert failed["status"] == "FAILED"
    assert "the cloud refused" in failed["status_detail"]["error"]

    # The values reached the plugins in clear: a core that dropped them would "leak" nothing.
    received = done["properties"]
    for name in (*NAMED_SECRETS, "vault_secret"):
        assert received[f"sha256_{name}"] == digest(values[name]), name
    assert received["sha256_settings_password"] == digest(values["settings_password"])
    assert received["sha256_credentials"] == digest(json.dumps(credentials(values),
                                                               sort_keys=True))
    base_id = server.get(f"/target_images/{done['target_image_id']}")["base_image_id"]
    body = server.request("GET", f"/base_images/{base_id}/raw_image").content
    assert b"rootpw-set\n" in body
    assert f"token-length: {len(values['fake_token'])}\n".encode() in body
    assert "logging in with token *****" in server.request(
        "GET", f"/base_images/{base_id}/log").text

    in_url = server.request("DELETE", f"/provider_images/{pushed['id']}?" + urlencode(
        {"credentials": json.dumps(credentials(values)), "provider": "careless-region"}))
    assert in_url.status_code == 400, in_url.text
    deleted = server.request("DELETE", f"/provider_images/{pushed['id']}", json={
        "provider_image": {"credentials": credentials(values), "provider": "careless-region"}})
    assert deleted.status_code == 204, deleted.text
    assert server.wait_for(f"/provider_images/{pushed['id']}")["status"] == "DELETED"

    visit_everything(server)
    wait_until(lambda: {"DELETED", "FAILED"} <= set(receiver.statuses()), 30,
               "the final callbacks")
    for delivered in receiver.requests:
        evidence.add(f"callback PUT {delivered['path']} (body)", delivered["raw"])
    assert_nothing_kept(server, evidence, values)


def test_no_ec2_credential_is_found_after_a_push_to_moto(servers, moto_endpoint_aws_blocks):
    """The real ec2 plugin pushes to moto (which takes any key) with fresh credentials."""
    moto = moto_endpoint_aws_blocks
    values = {"rootpw": make_secret("rootpw"), "session_token": make_secret("session_token"),
              "access_key": f"AKIA{secrets.token_hex(8).upper()}",
              "secret_access_key": make_secret("secret_access_key")}
    server: ServerProcess = servers(
        plugin_modules=MODULES[:1], outbound_allow=["127.0.0.1"],
        disabled_plugins=sorted({ep.name for ep in entry_points(group="imagefactory.plugins")}
                                - {"ec2"}),
        plugins={"ec2": {"endpoints": [moto["endpoint_url"]]}})
    evidence = Evidence()
    server.session.hooks["response"].append(lambda response, **_: evidence.add_response(response))
    server.start()
    ec2_credentials = {"ec2_credentials": {key: values[key] for key in (
        "access_key", "secret_access_key", "session_token")}}
    provider = {"region": moto["region"], "endpoint_url": moto["endpoint_url"]}

    pushed = server.post("/provider_images", {"provider_image": {
        "template": fake_tdl("ec2-audited").replace("<rootpw>changeme</rootpw>",
                                                    f"<rootpw>{values['rootpw']}</rootpw>"),
        "target": "ec2", "provider": provider, "credentials": ec2_credentials}})
    done = server.wait_for(f"/provider_images/{pushed['id']}", timeout=120)
    assert done["status"] == "COMPLETE", done["status_detail"]
    assert done["identifier_on_provider"].startswith("ami-")
    deleted = server.request("DELETE", f"/provider_images/{pushed['id']}", json={
        "provider_image": {"credentials": ec2_credentials, "provider": provider}})
    assert deleted.status_code == 204, deleted.text
    assert server.wait_for(f"/provider_images/{pushed['id']}", timeout=120)["status"] == \
        "DELETED"

    visit_everything(server)
    assert_nothing_kept(server, evidence, values)


def assert_nothing_kept(server: ServerProcess, evidence: Evidence,
                        values: dict[str, str]) -> None:
    """Stop the server (its last log lines are written), add everything it printed and kept
    to `evidence`, and fail listing every secret found."""
    server.signal(signal.SIGTERM, timeout=60)
    evidence.add(f"server output {server.log_file}", server.log_file.read_bytes())
    assert evidence.add_database(server.state_dir / "imagefactory.db") > 0
    assert evidence.add_tree(server.root) > 0  # state, storage, cache, logs, configuration
    leaks = evidence.leaks(values)
    assert not leaks, "secrets leaked:\n" + "\n".join(leaks)


def visit_everything(server: ServerProcess) -> None:
    """GET every resource the API has, so each answer joins the evidence."""
    for path in ("", "/plugins", "/openapi.json"):
        assert server.request("GET", path).status_code == 200
    for plugin in server.request("GET", "/plugins").json()["plugins"]:
        path = plugin["href"].split("/imagefactory", 1)[1]
        assert server.request("GET", path).status_code == 200
    for collection in ("base_images", "target_images", "provider_images"):
        for entry in server.request("GET", f"/{collection}").json()[collection]:
            image = server.wait_for(f"/{collection}/{next(iter(entry.values()))['id']}",
                                    SETTLED)
            answer = server.request("GET", image["href"].split("/imagefactory", 1)[1] + "/log")
            assert answer.status_code == 200
            if image["status"] == "COMPLETE" and "raw_image" in image:
                assert server.request("GET", image["raw_image"].split("/imagefactory", 1)[1],
                                      headers={"Range": "bytes=0-65535"}).status_code == 206
