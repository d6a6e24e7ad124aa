"""Name-based redaction of request parameters: a value whose key says it is secret is never
stored or shown, at any depth; callback URLs keep only their scheme, host and port."""

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


def test_callback_urls_keep_only_scheme_host_and_port():
    assert redact_parameters({"callbacks": ["https://u:pw@hooks.example/x?y=1", "http://h/"]}) \
        == {"callbacks": [f"https://{REDACTED}@hooks.example/{REDACTED}", "http://h/"]}
    assert redact_parameters({"callbacks": "http://u:pw@h/"}) == \
        {"callbacks": [f"http://{REDACTED}@h/"]}
    assert redact_url("http://u:pw@[::1/") == f"http://{REDACTED}@[::1/"  # not parseable


@pytest.mark.parametrize(("url", "shown"), [
    ("https://hooks.example:8443/t/0123abcd", f"https://hooks.example:8443/{REDACTED}"),
    ("http://h?token=0123abcd", f"http://h/{REDACTED}"),
    ("http://h/#0123abcd", f"http://h/{REDACTED}"),
    ("http://a:b@c@h:1/0123abcd", f"http://{REDACTED}@h:1/{REDACTED}"),
    ("javascript:0123abcd", f"javascript:{REDACTED}"),
    ("0123abcd", REDACTED),
])
def test_a_token_in_any_part_of_a_callback_url_is_hidden(url, shown):
    assert redact_url(url) == shown
    assert redact_url(shown) == shown
