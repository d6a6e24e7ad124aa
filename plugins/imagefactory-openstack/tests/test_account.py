"""Reading the seed's provider and credential formats, and refusing what only the operator may
choose (no service needed)."""

from typing import Any

import pytest
from imagefactory_core.plugin import BuildError, OutboundPolicy
from imagefactory_openstack.account import Account, OperatorRules
from imagefactory_openstack.account import account_from_request as read_account

KEYSTONE = "http://127.0.0.1:5000/v3"
RULES = OperatorRules(
    clouds=("mycloud",),
    endpoints=("http://127.0.0.1:5000", "http://127.0.0.1:9292", "https://keystone.example:5000",
               "https://glance:9292", "http://g:1", "http://h:1"),
    outbound=OutboundPolicy(("127.0.0.1",)))


def account_from_request(provider: Any, credentials: Any,
                         rules: OperatorRules = RULES) -> Account:
    return read_account(provider, credentials, rules)


def seed_credentials(**extra: str) -> dict[str, dict[str, str]]:
    return {"openstack_credentials": {"username": " admin\n", "password": "s3cret",
                                      "tenant": "demo", "auth_url": KEYSTONE,
                                      "strategy": "keystone", **extra}}


def test_seed_xml_credentials_map_to_keystone_v3_password_auth() -> None:
    account = account_from_request({"glance-host": "127.0.0.1", "glance-port": 9292},
                                   seed_credentials())
    assert account.auth == {"auth_url": KEYSTONE, "username": "admin", "password": "s3cret",
                            "project_name": "demo", "user_domain_name": "Default",
                            "project_domain_name": "Default"}
    assert account.glance_url == "http://127.0.0.1:9292"
    assert account.cloud is None


def test_flat_json_with_domains_and_auth_url_in_provider() -> None:
    account = account_from_request(
        {"auth_url": "https://keystone.example:5000/v2.0", "region_name": "north"},
        {"username": "u", "password": "p", "project_id": "0123", "user_domain_name": "ldap"})
    assert account.auth == {"auth_url": "https://keystone.example:5000/v3", "username": "u",
                            "password": "p", "project_id": "0123", "user_domain_name": "ldap",
                            "project_domain_name": "Default"}
    assert account.glance_url is None
    assert account.region_name == "north"


def test_glance_endpoint_alone_means_no_token() -> None:
    account = account_from_request({"glance-host": "glance", "glance-port": "9292",
                                    "scheme": "https"}, {})
    assert account == Account(cloud=None, auth=None, glance_url="https://glance:9292")
    assert "without authentication" in account.describe()


def test_noauth_strategy_ignores_keystone() -> None:
    account = account_from_request({"glance-host": "g", "glance-port": 1},
                                   seed_credentials(strategy="noauth"))
    assert account.auth is None


def test_cloud_name_takes_credentials_as_overrides() -> None:
    account = account_from_request("mycloud", {"openstack_credentials": {"password": "pw",
                                                                         "tenant": "t"}})
    assert account.cloud == "mycloud"
    assert account.auth == {"password": "pw", "project_name": "t"}


@pytest.mark.parametrize(("provider", "credentials", "message"), [
    ({"auth_url": KEYSTONE}, {"username": "u"}, "lack password, tenant"),
    ({"glance-host": "h", "glance-port": 1}, {"strategy": "keystone"}, "lack auth_url"),
    ({"glance-host": "h"}, {}, "both glance-host and glance-port"),
    ({}, {}, "needs glance-host and glance-port"),
    ({"glance-host": "h", "glance-port": 1}, {"strategy": "oauth"}, "strategy must be"),
    ({"glance-host": "h", "glance-port": 1, "scheme": "ftp"}, {}, "scheme must be"),
])
def test_incomplete_requests_name_what_is_missing(provider: dict, credentials: dict,
                                                  message: str) -> None:
    with pytest.raises(BuildError, match=message):
        account_from_request(provider, credentials)


def test_password_never_shows_in_repr_or_description() -> None:
    account = account_from_request({}, seed_credentials())
    assert "s3cret" not in repr(account)
    assert "s3cret" not in account.describe()
    assert "admin" in account.describe()


@pytest.mark.parametrize(("provider", "credentials", "message"), [
    ({"auth_url": "http://169.254.169.254/v3"}, seed_credentials(auth_url=""),
     "OpenStack Keystone auth_url: http://169.254.169.254/v3 is not an endpoint this service "
     "may use; the operator lists those in the configuration (plugins.openstack.endpoints)"),
    ({"glance-host": "127.0.0.1", "glance-port": 9293}, {},
     "OpenStack Glance endpoint (glance-host, glance-port): http://127.0.0.1:9293 is not an "
     "endpoint"),
    # the operator's password must not go to a Keystone the request chose
    ("mycloud", {"password": "pw", "auth_url": "http://attacker.example/v3"},
     "credentials field 'auth_url' cannot be given for cloud 'mycloud': a named cloud's "
     "endpoints and region are the operator's (clouds.yaml)"),
    ({"cloud": "mycloud", "glance-host": "127.0.0.1", "glance-port": 9292}, {},
     "provider field 'glance-host' cannot be given for cloud 'mycloud'"),
    ({"cloud": "mycloud", "region_name": "elsewhere"}, {},
     "provider field 'region_name' cannot be given for cloud 'mycloud'"),
    ("othercloud", {}, "cloud 'othercloud' is not one requests may name; the operator lists "
                       "those in the configuration (plugins.openstack.clouds)"),
    ({"auth_url": KEYSTONE, "verify": False}, seed_credentials(),
     "provider field 'verify' is not accepted from requests: TLS verification is the "
     "operator's"),
    ({"cloud": "mycloud", "cacert": "/tmp/mine.pem"}, {}, "provider field 'cacert'"),
    ({"auth_url": KEYSTONE}, seed_credentials(insecure="true"), "credentials field 'insecure'"),
])
def test_what_only_the_operator_may_choose_is_refused(provider: Any, credentials: dict,
                                                      message: str) -> None:
    with pytest.raises(BuildError) as refused:
        account_from_request(provider, credentials)
    assert message in str(refused.value)
    assert "s3cret" not in str(refused.value)


def test_a_listed_endpoint_on_a_refused_address_needs_outbound_allow() -> None:
    strict = OperatorRules(endpoints=("http://127.0.0.1:5000",))
    with pytest.raises(BuildError, match=r"http://127.0.0.1:5000/v3 is a loopback address, "
                                         r"which this service does not connect to \(the "
                                         r"operator may allow it: configuration outbound_allow"):
        account_from_request({}, seed_credentials(), strict)


@pytest.mark.parametrize(("tls_verify", "ca_bundle", "verify"), [
    (True, None, None), (False, None, False), (True, "/etc/ssl/ours.pem", "/etc/ssl/ours.pem")])
def test_tls_verification_is_the_operators(tls_verify: bool, ca_bundle: str | None,
                                           verify: bool | str | None) -> None:
    rules = OperatorRules(endpoints=RULES.endpoints, outbound=RULES.outbound,
                          tls_verify=tls_verify, ca_bundle=ca_bundle)
    assert account_from_request({}, seed_credentials(), rules).verify == verify
    assert account_from_request("mycloud", {}, OperatorRules(
        clouds=("mycloud",), tls_verify=tls_verify, ca_bundle=ca_bundle)).verify is None
