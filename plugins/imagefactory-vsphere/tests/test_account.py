"""Reading a request's provider and credentials, and what a request may not choose: checked
at POST by ``imagefactory_check_provider`` (no connection is made)."""

from __future__ import annotations

import json
from typing import Any

import imagefactory_vsphere as plugin
import pytest
from imagefactory_core.plugin import BuildError, OutboundPolicy
from imagefactory_core.testing import loaded_plugin, plugin_parameters
from imagefactory_vsphere.account import OperatorRules, account_from_request

URL = "https://vcenter.example.com/sdk"
PROVIDER = {"api-url": URL, "datastore": "ds1", "network_name": "VM Network"}
CREDENTIALS = {"vsphere_credentials": {"username": "\n  admin\n", "password": "pw"}}


def check(provider: Any, credentials: Any = CREDENTIALS, **config: Any) -> None:
    plugin.imagefactory_check_provider(
        provider=provider, credentials=credentials,
        parameters=plugin_parameters(plugin, {}, {"endpoints": [URL], **config}),
        outbound=OutboundPolicy())


def test_the_seed_forms_are_read():
    account = account_from_request(
        {**PROVIDER, "compute_resource": "C1", "resource_pool": "P", "folder": "F"},
        CREDENTIALS, OperatorRules(endpoints=(URL,)))
    assert (account.api_url, account.username, account.password) == (URL, "admin", "pw")
    assert (account.compute_resource, account.resource_pool, account.folder) == ("C1", "P", "F")
    assert "pw" not in repr(account)
    as_text = account_from_request(json.dumps({"api-url": URL, "datastore": "ds1",
                                               "network_name": "n"}),
                                   {"username": "u", "password": "p"},
                                   OperatorRules(endpoints=(URL,)))
    assert as_text.network == "n"


@pytest.mark.parametrize(("provider", "says"), [
    ("vcenter1", "a vSphere provider is a JSON object"),
    ({**PROVIDER, "api-url": "https://elsewhere.example.com/sdk"},
     "is not an endpoint this service may use"),
    ({**PROVIDER, "api-url": "http://vcenter.example.com/sdk"}, "is not an https:// URL"),
    ({**PROVIDER, "tls_verify": False}, "'tls_verify' is not accepted from requests"),
    ({**PROVIDER, "ca_file": "/etc/shadow"}, "'ca_file' is not accepted from requests"),
    ({**PROVIDER, "username": "u"}, "unknown vSphere provider field(s): username"),
    ({"api-url": URL}, "lacks datastore, network_name"),
    ({**PROVIDER, "ca_cert": "not a certificate"}, "holds no usable CA certificate"),
])
def test_a_provider_is_refused(provider, says):
    with pytest.raises(BuildError) as refused:
        check(provider)
    assert says in str(refused.value)


@pytest.mark.parametrize(("credentials", "says"), [
    ({"vsphere_credentials": {"username": "u"}}, "need a username and a password"),
    ({"vsphere_credentials": {"username": "u", "password": "p", "token": "t"}},
     "unknown vSphere credential field(s): token"),
    ({"vsphere_credentials": "u:p"}, "must be <vsphere_credentials>"),
])
def test_credentials_are_refused(credentials, says):
    with pytest.raises(BuildError) as refused:
        check(PROVIDER, credentials)
    assert says in str(refused.value)


def test_a_literal_address_the_policy_refuses_is_refused_at_post():
    url = "https://169.254.169.254/sdk"
    with pytest.raises(BuildError, match="which this service does not connect to"):
        check({**PROVIDER, "api-url": url}, endpoints=[url])


def test_the_plugin_loads_as_the_service_loads_it():
    shown = loaded_plugin(plugin)
    assert shown["status"] == "loaded" and shown["type"] == "cloud"
    assert shown["targets"] == [["vsphere"]]
    names = {p["name"] for p in shown["parameters"]}
    assert {"vsphere_disk_adapter", "vsphere_package", "endpoints", "tls_verify"} <= names
    assert plugin_parameters(plugin)["vsphere_disk_adapter"] == "lsilogic"
