"""Name-based redaction of request parameters: a value whose key says it is secret is never
stored or shown, at any depth; callback URLs lose their user-info."""

import pytest
from imagefactory_core.redaction import REDACTED, redact_parameters, redact_url


@pytest.mark.parametrize("key", ["password", "db_passwd", "ssh_passphrase", "client_secret",
                                 "token", "X-Auth-Token", "credentials", "private_key",
                                 "privatekey", "rootpw", "access_key", "AccessKey", "api_key",
                                 "apikey", "auth", "basic_auth"])
def test_secret_looking_names_are_masked_at_any_depth(key):
    shown = redact_parameters({key: "s3cr3t", "nested": {"deeper": [{key: "s3cr3t"}]}})
    assert shown == {key: REDACTED, "nested": {"deeper": [{key: REDACTED}]}}


@pytest.mark.parametrize("key", ["author", "authority_name", "mirror", "image_name", "keyboard"])
def test_ordinary_names_are_kept(key):
    assert redact_parameters({key: "value"}) == {key: "value"}


def test_callback_urls_lose_their_user_info():
    assert redact_parameters({"callbacks": ["https://u:pw@hooks.example/x?y=1", "http://h/"]}) \
        == {"callbacks": [f"https://{REDACTED}@hooks.example/x?y=1", "http://h/"]}
    assert redact_parameters({"callbacks": "http://u:pw@h/"}) == \
        {"callbacks": [f"http://{REDACTED}@h/"]}
    assert redact_url("http://u:pw@[::1/") == f"http://{REDACTED}@[::1/"  # not parseable
