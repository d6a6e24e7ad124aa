"""Secrets never leave: the template's rootpw, provider credentials and callback user-info appear
in no response, no build log, no callback, no service log line and no byte of the state
directory (database, its WAL, logs, bodies). Credentials are not stored at all, not even sealed.

Besides FakeOS and fakecloud, two careless test plugins try to leak what they were given
through the build context (log lines, command lines, error messages); the core masks it.
"""

from __future__ import annotations

import json
import logging
import shutil
import stat
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import falcon.testing
import pytest
from imagefactory_core.plugin import (
    BuildContext,
    BuildError,
    BuildResult,
    CloudTarget,
    ImageView,
    OSTarget,
    Parameter,
    PushResult,
    Template,
    hookimpl,
)
from imagefactory_core.plugins import load_plugins
from imagefactory_core.testing import wait_for_status
from sqlalchemy import text

from tests.plugins import fake_cloud, fake_os

from .conftest import fake_tdl

ROOTPW = "Rootpw-7c1e-secret"
CRED_PASSWORD = "good"
CRED_KEY = "Cred-Key-93ab-secret"
CB_PASSWORD = "Cb-Pass-5d20-secret"
PARAM_TOKEN = "Param-Token-41f7-secret"
SECRETS = (ROOTPW, CRED_KEY, CB_PASSWORD, PARAM_TOKEN)

CREDENTIALS_XML = f"""<provider_credentials>
  <fake_credentials>
    <username>alice</username>
    <password>{CRED_PASSWORD}</password>
    <api_key>{CRED_KEY}</api_key>
  </fake_credentials>
</provider_credentials>"""
CREDENTIALS_JSON = {"fake_credentials": {"username": "alice", "password": CRED_PASSWORD,
                                         "api_key": CRED_KEY}}


def tdl(name: str = "secretive", os_name: str = "FakeOS") -> str:
    return (fake_tdl(name).replace("<rootpw>changeme</rootpw>", f"<rootpw>{ROOTPW}</rootpw>")
            .replace("<name>FakeOS</name>", f"<name>{os_name}</name>"))


class LeakyOS:
    """Builds a disk, writing its root password everywhere it can."""

    IMAGEFACTORY_PLUGIN_API = "1.0"

    @hookimpl
    def imagefactory_os_targets(self) -> list[OSTarget]:
        return [OSTarget("LeakyOS", r"\d+", ("x86_64",))]

    @hookimpl
    def imagefactory_create_base_image(self, ctx: BuildContext, template: Template,
                                       parameters: dict[str, Any]) -> BuildResult:
        password = template.os.rootpw or ""
        ctx.log(f"setting the root password to {password}")
        ctx.progress(20, f"chpasswd root:{password}")
        ctx.run(["echo", f"root:{password}"])
        if template.name == "leak-in-error":
            raise BuildError(f"could not set the root password {password}")
        if template.name == "leak-in-crash":
            raise RuntimeError(f"unexpected password {password}")
        if template.name == "leak-in-timeout":
            ctx.run(["sh", "-c", "sleep 30", "sh", password], timeout=0.3)
        if template.name == "leak-in-command":
            ctx.run(["sh", "-c", "exit 3", "sh", password])
        ctx.body_path.write_bytes(b"LEAKYOS\n")
        return BuildResult()


class LeakyCloud:
    """A cloud plugin that logs and echoes the credentials it is given."""

    IMAGEFACTORY_PLUGIN_API = "1.0"

    @hookimpl
    def imagefactory_parameters(self) -> list[Parameter]:
        return [Parameter("refuse", "boolean", False, "make the push fail")]

    @hookimpl
    def imagefactory_cloud_targets(self) -> list[CloudTarget]:
        return [CloudTarget("leakycloud")]

    @hookimpl
    def imagefactory_create_target_image(self, ctx: BuildContext, base_image: ImageView,
                                         source_disk: Path) -> BuildResult:
        shutil.copyfile(source_disk, ctx.body_path)
        return BuildResult()

    @hookimpl
    def imagefactory_push_image(self, ctx: BuildContext, credentials: dict[str, Any],
                                parameters: dict[str, Any]) -> PushResult:
        key = credentials["fake_credentials"]["api_key"]
        ctx.log(f"credentials: {json.dumps(credentials)}")
        ctx.run(["echo", f"--api-key={key}"])
        if parameters["refuse"]:
            raise BuildError(f"the cloud refused key {key}")
        return PushResult("leaky-1", "alice")

    @hookimpl
    def imagefactory_delete_from_provider(self, ctx: BuildContext,
                                          credentials: dict[str, Any]) -> None:
        ctx.log(f"deleting with {json.dumps(credentials)}")


SERVICE_PASSWORD = "Svc-Pass-6e02-secret"
REGISTRY_TOKEN = "Reg-Token-a7d1-secret"
ACCESS_KEY = "Access-Key-0c3b-secret"
API_KEY = "Api-Key-58e4-secret"
DB_PASSWORD = "Db-Pass-2f77-secret"
SECRET_BY_NAME = (SERVICE_PASSWORD, REGISTRY_TOKEN, ACCESS_KEY, API_KEY, DB_PASSWORD)


class NamedOS:
    """Declares parameters whose names say they are secret without declaring them `secret`,
    and an object parameter with secrets nested at several depths; it logs them, shows them
    in its progress and runs a command with them."""

    IMAGEFACTORY_PLUGIN_API = "1.0"

    @hookimpl
    def imagefactory_os_targets(self) -> list[OSTarget]:
        return [OSTarget("NamedOS", r"\d+", ("x86_64",))]

    @hookimpl
    def imagefactory_parameters(self) -> list[Parameter]:
        return [Parameter("named_service_password", "string", help="not declared secret"),
                Parameter("named_registry_token", "string", help="not declared secret"),
                Parameter("named_options", "object", help="secrets nested inside")]

    @hookimpl
    def imagefactory_create_base_image(self, ctx: BuildContext,
                                       parameters: dict[str, Any]) -> BuildResult:
        ctx.log(f"parameters: {json.dumps(parameters)}")
        ctx.progress(50, f"using token {parameters['named_registry_token']}")
        ctx.run(["echo", f"--password={parameters['named_service_password']}"])
        got = json.dumps(parameters, sort_keys=True)
        ctx.body_path.write_bytes(f"NAMEDOS {len(got)}\n".encode())
        return BuildResult()


@pytest.fixture
def imagefactory_plugins():  # type: ignore[no-untyped-def]
    return load_plugins(discover=False, extra=[
        ("FakeOS", fake_os), ("FakeCloud", fake_cloud), ("LeakyOS", LeakyOS()),
        ("LeakyCloud", LeakyCloud()), ("NamedOS", NamedOS())])


class Seen:
    """Everything the service said, to scan for secrets at the end."""

    def __init__(self, client: falcon.testing.TestClient):
        self.client = client
        self.texts: list[str] = []

    def request(self, method: str, path: str, **kwargs: Any) -> falcon.testing.Result:
        result = self.client.simulate_request(method, path, **kwargs)
        self.texts.append(f"{method} {path} -> {result.status_code}\n{result.text}")
        return result

    def post(self, path: str, status: int = 202, **kwargs: Any) -> dict[str, Any]:
        result = self.request("POST", path, **kwargs)
        assert result.status_code == status, result.text
        return next(iter(result.json.values())) if status == 202 else result.json

    def settle(self, collection: str, image_id: str) -> dict[str, Any]:
        done = wait_for_status(self.client, f"/imagefactory/{collection}/{image_id}")
        self.everything(collection, image_id)
        return done

    def everything(self, collection: str, image_id: str) -> None:
        href = f"/imagefactory/{collection}/{image_id}"
        for path in (href, f"{href}/log", f"/imagefactory/{collection}"):
            assert self.request("GET", path).status_code == 200


def assert_nowhere(texts: list[str] | str, *secrets: str) -> None:
    joined = "\n".join(texts) if isinstance(texts, list) else texts
    for secret in secrets or SECRETS:
        assert secret not in joined, f"{secret!r} leaked:\n" + joined[
            max(0, joined.index(secret) - 300):joined.index(secret) + 100]


def state_bytes(root: Path) -> dict[str, bytes]:
    """Every file of the state directory (database, WAL, logs, bodies) except the sealing key."""
    return {str(p): p.read_bytes() for p in root.rglob("*")
            if p.is_file() and p.name != "secret.key"}


def assert_not_stored(config: Any, *secrets: str) -> None:
    files = state_bytes(Path(config.state_dir))
    assert any(name.endswith("imagefactory.db") for name in files)
    for name, data in files.items():
        for secret in secrets or SECRETS:
            assert secret.encode() not in data, f"{secret!r} is in {name}"


def test_no_secret_leaves_through_the_api_logs_callbacks_or_disk(
        client, receiver, imagefactory_config, caplog):
    caplog.set_level(logging.DEBUG)
    seen = Seen(client)
    callbacks = [receiver.url("/hook", f"builder:{CB_PASSWORD}")]
    parameters = {"callbacks": callbacks, "fake_token": PARAM_TOKEN}

    base = seen.post("/imagefactory/base_images",
                     json={"base_image": {"template": tdl(), "parameters": parameters}})
    assert "<rootpw>*****</rootpw>" in base["template"]
    xml_body = (f"<base_image><parameters>{json.dumps(parameters)}</parameters>"
                f"{tdl('as-xml')}</base_image>")
    seen.post("/imagefactory/base_images", body=xml_body,
              headers={"Content-Type": "application/xml"})
    form = urlencode({"template": tdl("as-form"), "parameters": json.dumps(parameters)})
    seen.post("/imagefactory/base_images", body=form,
              headers={"Content-Type": "application/x-www-form-urlencoded"})
    secretive = seen.settle("base_images", base["id"])
    assert secretive["parameters"]["fake_token"] == "*****"
    body = client.app.services.store.body_path(base["id"]).read_bytes()
    assert f"token-length: {len(PARAM_TOKEN)}\n".encode() in body  # it reached the plugin
    assert "logging in with token *****" in seen.request(
        "GET", f"/imagefactory/base_images/{base['id']}/log").text
    leaky = seen.post("/imagefactory/base_images", json={"base_image": {
        "template": tdl("leaky", "LeakyOS"), "parameters": {"callbacks": callbacks[0]}}})
    assert leaky["parameters"]["callbacks"] == [
        f"http://*****@127.0.0.1:{receiver.port}/*****"]

    pushed = seen.post("/imagefactory/provider_images", json={"provider_image": {
        "template": tdl("pushed"), "target": "fakecloud", "provider": "p1",
        "credentials": CREDENTIALS_XML, "parameters": parameters}})
    store = client.app.services.store
    assert PARAM_TOKEN in store.sealed(pushed["id"])  # kept to rebuild after a restart, sealed
    form_push = urlencode({"template": tdl("pushed-form"), "target": "leakycloud",
                           "provider": "p2", "credentials": CREDENTIALS_XML})
    leaky_push = seen.post("/imagefactory/provider_images", body=form_push,
                           headers={"Content-Type": "application/x-www-form-urlencoded"})

    for image in (base, leaky):
        assert seen.settle("base_images", image["id"])["status"] == "COMPLETE"
    for image in (pushed, leaky_push):
        done = seen.settle("provider_images", image["id"])
        assert done["status"] == "COMPLETE", done["status_detail"]
        seen.everything("target_images", done["target_image_id"])
        target = wait_for_status(client, f"/imagefactory/target_images/"
                                         f"{done['target_image_id']}")
        seen.everything("base_images", target["base_image_id"])
        nested = (f"/imagefactory/base_images/{target['base_image_id']}/target_images/"
                  f"{target['id']}/provider_images/{image['id']}")
        assert seen.request("GET", nested).status_code == 200
    for collection in ("base_images", "target_images", "provider_images"):
        for entry in client.simulate_get(f"/imagefactory/{collection}").json[collection]:
            seen.settle(collection, next(iter(entry.values()))["id"])
    seen.request("GET", "/imagefactory/plugins")

    leaky_log = client.simulate_get(f"/imagefactory/base_images/{leaky['id']}/log").text
    assert "setting the root password to *****" in leaky_log
    push_log = client.simulate_get(f"/imagefactory/provider_images/{leaky_push['id']}/log").text
    assert "--api-key=*****" in push_log

    for image in (pushed, leaky_push):
        result = seen.request("DELETE", f"/imagefactory/provider_images/{image['id']}",
                              json={"provider_image": {"credentials": CREDENTIALS_JSON,
                                                       "target": "x", "provider": "p"}})
        assert result.status_code == 204, result.text
        seen.settle("provider_images", image["id"])

    receiver.wait_for("COMPLETE")
    assert_nowhere(seen.texts)
    assert_nowhere([r["raw"].decode() for r in receiver.requests])
    assert_nowhere([f"{r.name}: {r.getMessage()}\n{r.exc_text or ''}" for r in caplog.records])
    assert_not_stored(imagefactory_config)
    assert_not_stored(imagefactory_config, f"<password>{CRED_PASSWORD}</password>",
                      f'"password": "{CRED_PASSWORD}"')
    for image in (pushed, leaky_push):
        assert "credentials" not in json.loads(store.sealed(image["id"]))
        assert CRED_KEY not in store.sealed(image["id"])


@pytest.mark.parametrize("name", ["leak-in-error", "leak-in-crash", "leak-in-timeout",
                                  "leak-in-command"])
def test_failed_build_does_not_leak_the_rootpw_in_its_reason(client, imagefactory_config, name):
    seen = Seen(client)
    image = seen.post("/imagefactory/base_images",
                      json={"base_image": {"template": tdl(name, "LeakyOS")}})
    done = seen.settle("base_images", image["id"])
    assert done["status"] == "FAILED"
    assert done["status_detail"]["error"]
    assert "*****" in done["status_detail"]["error"]
    assert_nowhere(seen.texts, ROOTPW)
    assert_not_stored(imagefactory_config, ROOTPW)


def test_failed_push_does_not_leak_credentials_in_its_reason(client, imagefactory_config):
    seen = Seen(client)
    image = seen.post("/imagefactory/provider_images", json={"provider_image": {
        "template": tdl(), "target": "leakycloud", "provider": "p1",
        "credentials": CREDENTIALS_JSON, "parameters": {"refuse": True}}})
    done = seen.settle("provider_images", image["id"])
    assert done["status"] == "FAILED"
    assert "the cloud refused key *****" in done["status_detail"]["error"]
    assert_nowhere(seen.texts, CRED_KEY)
    assert_not_stored(imagefactory_config, CRED_KEY)


@pytest.mark.parametrize("broken", [
    ("</os>", ""),
    ("<rootpw>", "<rootpw x='1'>"),
    ("<description>", "<rootpw>again</rootpw><description>"),
    ("<name>FakeOS</name>", "<name>Plan9</name>"),
])
def test_rejected_template_does_not_echo_the_rootpw(client, broken):
    result = client.simulate_post("/imagefactory/base_images", json={
        "base_image": {"template": tdl().replace(*broken)}})
    assert result.status_code == 400, result.text
    assert_nowhere(result.text, ROOTPW)


def test_rejected_callback_url_does_not_echo_its_password(client):
    result = client.simulate_post("/imagefactory/base_images", json={"base_image": {
        "template": tdl(), "parameters": {"callbacks": [f"ftp://u:{CB_PASSWORD}@127.0.0.1/",
                                                        f"http://u:{CB_PASSWORD}@[::1/"]}}})
    assert result.status_code == 400, result.text
    assert_nowhere(result.text, CB_PASSWORD)


def test_state_storage_work_and_cache_directories_are_roots_alone(client, imagefactory_config):
    """Bodies and logs hold what templates put in them; work and cache directories hold image
    trees owned by the build sandbox's ids: nobody else may even look in."""
    config = imagefactory_config
    for path in (Path(config.state_dir), config.storage_dir, config.work_dir,
                 config.cache_dir):
        assert stat.S_IMODE(path.stat().st_mode) == 0o700, path


def test_credentials_in_a_delete_url_are_refused_and_not_echoed(client):
    pushed = client.simulate_post("/imagefactory/provider_images", json={"provider_image": {
        "template": tdl("url-creds"), "target": "fakecloud", "provider": "p1",
        "credentials": CREDENTIALS_JSON}}).json["provider_image"]
    wait_for_status(client, f"/imagefactory/provider_images/{pushed['id']}")
    result = client.simulate_delete(f"/imagefactory/provider_images/{pushed['id']}",
                                    query_string=f"credentials={CRED_KEY}&provider=p1")
    assert result.status_code == 400
    assert "request body, never in the URL" in result.json["description"]
    assert_nowhere(result.text, CRED_KEY)


def test_parameters_secret_by_name_are_redacted_in_rows_responses_and_logs(
        client, receiver, imagefactory_config, caplog):
    """Names alone (``*password*``, ``*token*``, ``access_key``, ``api_key``, at any depth)
    hide a value from the stored record, every response, the build log and the callbacks,
    while the plugin still gets it in clear."""
    caplog.set_level(logging.DEBUG)
    seen = Seen(client)
    options = {"access_key": ACCESS_KEY, "region": "eu-west-1",
               "nested": {"api_key": API_KEY, "servers": [{"db_password": DB_PASSWORD,
                                                           "port": 5432}]}}
    parameters = {"named_service_password": SERVICE_PASSWORD,
                  "named_registry_token": REGISTRY_TOKEN, "named_options": options,
                  "callbacks": [receiver.url("/named")]}
    shown = {"named_service_password": "*****", "named_registry_token": "*****",
             "named_options": {"access_key": "*****", "region": "eu-west-1",
                               "nested": {"api_key": "*****",
                                          "servers": [{"db_password": "*****",
                                                       "port": 5432}]}}}
    posted = seen.post("/imagefactory/base_images", json={"base_image": {
        "template": tdl("named", "NamedOS"), "parameters": parameters}})
    done = seen.settle("base_images", posted["id"])
    assert done["status"] == "COMPLETE", done["status_detail"]
    for image in (posted, done):
        assert {k: v for k, v in image["parameters"].items() if k != "callbacks"} == shown

    store = client.app.services.store
    with store.engine.connect() as conn:
        row = conn.execute(text("SELECT parameters, template, activity FROM images "
                                "WHERE id = :id"), {"id": posted["id"]}).one()
    stored = json.loads(row.parameters)
    assert {k: v for k, v in stored.items() if k != "callbacks"} == shown
    assert_nowhere([row.parameters, row.template, row.activity], *SECRET_BY_NAME)

    got = json.dumps({"named_options": options,
                      "named_registry_token": REGISTRY_TOKEN,
                      "named_service_password": SERVICE_PASSWORD}, sort_keys=True)
    assert store.body_path(posted["id"]).read_bytes() == f"NAMEDOS {len(got)}\n".encode()
    log = seen.request("GET", f"/imagefactory/base_images/{posted['id']}/log").text
    assert "--password=*****" in log
    assert "using token *****" in log
    assert '"access_key": "*****"' in log

    receiver.wait_for("COMPLETE", "/named")
    assert_nowhere(seen.texts, *SECRET_BY_NAME)
    assert_nowhere([r["raw"].decode() for r in receiver.requests], *SECRET_BY_NAME)
    assert_nowhere([f"{r.name}: {r.getMessage()}\n{r.exc_text or ''}" for r in caplog.records],
                   *SECRET_BY_NAME)
    assert_not_stored(imagefactory_config, *SECRET_BY_NAME)
