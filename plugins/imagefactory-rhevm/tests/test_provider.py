"""Reading a request's provider and credentials, and refusing what only the operator may
choose: unit checks of `account_from_request`, then the same refusals as a 400 at POST (the
plugin's ``imagefactory_check_provider``)."""

import json
from pathlib import Path
from typing import Any

import falcon.testing
import imagefactory_rhevm as plugin
import pytest
from imagefactory_core.plugin import BuildError, OutboundPolicy
from imagefactory_core.testing import make_config, plugin_parameters
from imagefactory_rhevm.provider import Account, account_from_request

ENGINE = "https://engine.example/ovirt-engine/api"
CREDENTIALS = {"rhevm_credentials": {"username": "admin@internal", "password": "pw"}}


def account(provider: Any, credentials: Any = None, config: dict[str, Any] | None = None,
            outbound: OutboundPolicy | None = None, **request: Any) -> Account:
    parameters = plugin_parameters(plugin, request, {"endpoints": [ENGINE], **(config or {})})
    return account_from_request(provider, CREDENTIALS if credentials is None else credentials,
                                parameters, outbound or OutboundPolicy())


def test_the_seeds_provider_and_xml_credentials() -> None:
    """The original's example: its NFS fields are accepted and explained."""
    found = account({"api-url": ENGINE, "username": "admin@internal", "nfs-path": "/exports",
                     "nfs-dir": "/mnt/rhevm", "nfs-host": "nfs.example", "cluster": "_any_",
                     "timeout": 1800})
    assert (found.api_url, found.username, found.password) == (ENGINE, "admin@internal", "pw")
    assert (found.cluster, found.storage_domain, found.verify) == ("_any_", None, True)
    assert found.timeout == 1800
    assert found.notes == ("provider field(s) nfs-host, nfs-path, nfs-dir are no longer needed "
                           "and are ignored: the disk is uploaded through imageio straight into "
                           "a data storage domain, with no NFS export domain",)
    assert "pw" not in repr(found)


def test_a_json_string_provider_and_flat_credentials() -> None:
    found = account(json.dumps({"api-url": ENGINE, "cluster": "Default",
                                "storage-domain": "data"}),
                    {"username": " admin@internal\n ", "password": "secret"})
    assert (found.username, found.password) == ("admin@internal", "secret")
    assert (found.cluster, found.storage_domain, found.notes) == ("Default", "data", ())


def test_parameters_give_what_the_provider_does_not_and_the_provider_wins() -> None:
    assert (account({"api-url": ENGINE}, rhevm_cluster="Remote",
                    rhevm_storage_domain="remote-data").cluster) == "Remote"
    found = account({"api-url": ENGINE, "cluster": "Default"},
                    config={"rhevm_cluster": "Remote", "rhevm_storage_domain": "remote-data"})
    assert (found.cluster, found.storage_domain) == ("Default", "remote-data")


def test_tls_verification_is_on_pinned_or_off_only_with_the_operators_consent() -> None:
    assert account({"api-url": ENGINE, "ca-file": "/etc/pki/engine-ca.pem"}).verify == \
        "/etc/pki/engine-ca.pem"
    assert account({"api-url": ENGINE}, config={"ca_file": "/etc/operator-ca.pem"}).verify == \
        "/etc/operator-ca.pem"
    with pytest.raises(BuildError, match="provider field 'insecure' is not accepted: .* "
                                         r"\(the operator may allow .*allow_insecure\)"):
        account({"api-url": ENGINE, "insecure": True})
    assert account({"api-url": ENGINE, "insecure": "true"},
                   config={"allow_insecure": True}).verify is False


def test_a_provider_timeout_only_shortens_the_operators() -> None:
    assert account({"api-url": ENGINE, "timeout": 60}).timeout == 60
    assert account({"api-url": ENGINE, "timeout": "99999"}, config={"timeout": 600}).timeout == 600


@pytest.mark.parametrize(("provider", "credentials", "message"), [
    ("rhevm-1", None, "an oVirt provider is a JSON object"),
    ("{not json", None, "the oVirt provider is not valid JSON"),
    ({"cluster": "Default"}, None, "the oVirt provider needs an api-url"),
    ({"api-url": ENGINE, "password": "x"}, None, "provider field 'password' is not accepted"),
    ({"api-url": ENGINE, "datastore": "x"}, None, "unknown oVirt provider field(s): datastore"),
    ({"api-url": ENGINE}, {"rhevm_credentials": {"password": "pw"}},
     "oVirt credentials lack username"),
    ({"api-url": ENGINE}, {"rhevm_credentials": {"username": "u"}},
     "oVirt credentials lack password"),
    ({"api-url": ENGINE, "cluster": "no spaces allowed"}, None,
     "provider field 'cluster': 'no spaces allowed' is not an oVirt name"),
    ({"api-url": ENGINE, "ca-file": "ca.pem"}, None,
     "provider field 'ca-file' must be an absolute path"),
    ({"api-url": ENGINE, "ca-file": "/ca.pem", "insecure": True}, None,
     "'ca-file' and 'insecure' contradict each other"),
    ({"api-url": ENGINE, "insecure": "maybe"}, None, "'insecure' must be true or false"),
    ({"api-url": ENGINE, "timeout": "soon"}, None, "'timeout' must be a number of seconds"),
    ({"api-url": ENGINE, "timeout": 0}, None, "'timeout' must be above 0 seconds"),
    ({"api-url": "https://elsewhere.example/ovirt-engine/api"}, None,
     "is not an endpoint this service may use; the operator lists those in the configuration "
     "(plugins.rhevm.endpoints)"),
])
def test_what_is_refused(provider: Any, credentials: Any, message: str) -> None:
    with pytest.raises(BuildError) as refused:
        account(provider, credentials)
    assert message in str(refused.value)


def test_a_listed_literal_address_the_outbound_policy_refuses() -> None:
    metadata = "http://169.254.169.254/ovirt-engine/api"
    with pytest.raises(BuildError, match="is a link-local address, which this service does not "
                                         "connect to"):
        account({"api-url": metadata}, config={"endpoints": [metadata]})


TDL = """<template><name>refused</name>
  <os><name>Debian</name><version>12</version><arch>x86_64</arch><rootpw>pw</rootpw>
    <install type="url"><url>http://deb.debian.org/debian</url></install></os>
</template>"""


@pytest.fixture
def imagefactory_config(tmp_path: Path) -> Any:
    return make_config(tmp_path, plugins={"rhevm": {"endpoints": [ENGINE]}})


@pytest.mark.parametrize(("provider", "credentials", "message"), [
    ({"api-url": "https://127.0.0.1:8443/ovirt-engine/api"}, CREDENTIALS,
     "https://127.0.0.1:8443/ovirt-engine/api is not an endpoint this service may use"),
    ({"api-url": ENGINE, "insecure": True}, CREDENTIALS,
     "provider field 'insecure' is not accepted"),
    ({"api-url": ENGINE, "password": "the-operators-secret"}, CREDENTIALS,
     "provider field 'password' is not accepted"),
    ({"api-url": ENGINE}, {"rhevm_credentials": {"username": "admin@internal"}},
     "oVirt credentials lack password"),
])
def test_post_answers_400_naming_the_field_and_creates_nothing(
        imagefactory_client: falcon.testing.TestClient, provider: Any,
        credentials: dict[str, Any], message: str) -> None:
    answer = imagefactory_client.simulate_post("/imagefactory/provider_images", json={
        "provider_image": {"target": "ovirt", "template": TDL, "provider": provider,
                           "credentials": credentials}})
    assert answer.status_code == 400, answer.text
    assert message in answer.json["description"]
    assert "the-operators-secret" not in answer.text
    for collection in ("base_images", "target_images", "provider_images"):
        listed = imagefactory_client.simulate_get(f"/imagefactory/{collection}").json
        assert listed[collection] == []
