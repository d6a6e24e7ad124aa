"""Reading the seed's provider and credential formats (no service needed)."""

import pytest
from imagefactory_core.plugin import BuildError
from imagefactory_openstack.account import Account, account_from_request

KEYSTONE = "http://127.0.0.1:5000/v3"


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
