"""Endpoints a request names are the operator's choice: only listed ones (``endpoints``), and
every connection obeys the outbound policy (``outbound_allow``), checked when it is made."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import falcon.testing
import imagefactory_ec2
import pytest
from imagefactory_core.plugin import BuildError, OutboundPolicy
from imagefactory_core.testing import make_config, plugin_parameters
from imagefactory_ec2 import imagefactory_check_provider, imagefactory_push_image

LISTED = "http://127.0.0.1:5000"
TDL = """<template><name>refused</name>
  <os><name>Debian</name><version>12</version><arch>x86_64</arch><rootpw>pw</rootpw>
    <install type="url"><url>http://deb.debian.org/debian</url></install></os>
</template>"""


def check(provider: Any, endpoints: list[str] | None, allow: tuple[str, ...] = ()) -> None:
    imagefactory_check_provider(
        provider=provider, outbound=OutboundPolicy(allow),
        parameters=plugin_parameters(imagefactory_ec2, config={"endpoints": endpoints or []}))


@pytest.mark.parametrize(("provider", "endpoints", "message"), [
    ({"region": "us-east-1", "endpoint_url": "http://169.254.169.254"}, None,
     "ec2 provider endpoint_url: http://169.254.169.254 is not an endpoint this service may "
     "use; the operator lists those in the configuration (plugins.ec2.endpoints)"),
    ({"region": "us-east-1", "s3_endpoint": "http://127.0.0.1:5001"}, [LISTED],
     "ec2 provider s3_endpoint: http://127.0.0.1:5001 is not an endpoint"),
    ({"region": "us-east-1", "endpoint_url": "https://127.0.0.1:5000"}, [LISTED],
     "is not an endpoint"),  # another scheme is another endpoint
    ({"region": "us-east-1", "endpoint_url": LISTED}, [LISTED],
     "ec2 provider endpoint_url: http://127.0.0.1:5000 is a loopback address, which this "
     "service does not connect to (the operator may allow it: configuration outbound_allow)"),
    ({"region": "us-east-1", "endpoint_url": "file:///etc/passwd"}, [LISTED],
     "'file:///etc/passwd' is not an http:// or https:// URL"),
])
def test_endpoints_the_operator_did_not_allow_are_refused(provider: dict[str, str],
                                                          endpoints: list[str] | None,
                                                          message: str) -> None:
    with pytest.raises(BuildError) as refused:
        check(provider, endpoints)
    assert message in str(refused.value)


@pytest.mark.parametrize("provider", [
    "ec2-us-east-1",
    {"region": "eu-west-1"},
    {"region": "us-east-1", "endpoint_url": "http://127.0.0.1:5000/", "sts_endpoint": LISTED},
    {"region": "us-east-1", "endpoint_url": "HTTP://127.0.0.1:5000"},
])
def test_aws_itself_and_listed_allowed_endpoints_pass(provider: Any) -> None:
    check(provider, [LISTED], allow=("127.0.0.1",))


def test_a_listed_name_resolving_to_loopback_is_refused_when_connecting(
        kit, moto_endpoint: dict[str, Any]) -> None:
    """The operator listed ``localhost`` but does not allow loopback addresses: the name is
    resolved when the connection is made, refused, and the push fails at once (no retries)."""
    by_name = f"http://localhost:{urlsplit(moto_endpoint['endpoint_url']).port}"
    ctx = kit.ctx(outbound_allow=())
    with pytest.raises(BuildError) as refused:
        imagefactory_push_image(
            ctx=ctx, template=kit.template(), target_image=kit.target(kit.disk()), target="ec2",
            provider={"region": "us-east-1", "endpoint_url": by_name},
            credentials=kit.json_credentials(moto_endpoint),
            parameters=plugin_parameters(imagefactory_ec2, config={"endpoints": [by_name]}))
    message = str(refused.value)
    assert message.startswith(f"cannot connect to {by_name}: refused by the outbound policy: "
                              "localhost resolves to ")
    assert "127.0.0.1 (a loopback address)" in message
    assert kit.tagged_snapshots(kit.client(moto_endpoint, "ec2"), ctx.image_id) == []


def test_an_unlisted_endpoint_fails_the_push_before_any_connection(kit) -> None:
    ctx = kit.ctx()
    with pytest.raises(BuildError, match="is not an endpoint this service may use"):
        imagefactory_push_image(
            ctx=ctx, template=kit.template(), target_image=kit.target(kit.disk()), target="ec2",
            provider={"region": "us-east-1", "endpoint_url": "http://127.0.0.1:9"},
            credentials={"access_key": "AKIA1", "secret_access_key": "s3cr3t"},
            parameters=plugin_parameters(imagefactory_ec2))


@pytest.fixture
def imagefactory_config(tmp_path: Path) -> Any:
    return make_config(tmp_path, plugins={"ec2": {"endpoints": [LISTED]}})


@pytest.mark.parametrize(("endpoint", "message"), [
    ("http://169.254.169.254/latest", "is not an endpoint this service may use"),
    (LISTED, "is a loopback address"),
])
def test_post_answers_400_and_creates_nothing(imagefactory_client: falcon.testing.TestClient,
                                              endpoint: str, message: str) -> None:
    answer = imagefactory_client.simulate_post("/imagefactory/provider_images", json={
        "provider_image": {"target": "ec2", "template": TDL,
                           "provider": {"region": "us-east-1", "endpoint_url": endpoint},
                           "credentials": {"access_key": "AKIA1",
                                           "secret_access_key": "s3cr3t"}}})
    assert answer.status_code == 400, answer.text
    assert message in answer.json["description"]
    assert "s3cr3t" not in answer.text
    for collection in ("base_images", "target_images", "provider_images"):
        listed = imagefactory_client.simulate_get(f"/imagefactory/{collection}").json
        assert listed[collection] == []


def test_a_proxy_variable_does_not_carry_a_push_past_the_policy(kit, monkeypatch) -> None:
    """The environment names a proxy on an address the operator allows; the listed endpoint's
    name resolves to a refused address. botocore would send the request to the proxy, which
    would forward it: the push ignores proxy variables, so the name is resolved, checked and
    refused. (The name's resolution is the test's: no resolver here knows a private name.)"""
    refused_endpoint = "http://build-host.internal:9"
    real_getaddrinfo = socket.getaddrinfo

    def resolve(host: str, *args: Any, **kwargs: Any) -> Any:
        if host == "build-host.internal":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.1", args[0]))]
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    with socket.create_server(("127.0.0.1", 0)) as proxy:
        proxy.settimeout(0.5)
        for variable in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy"):
            monkeypatch.setenv(variable, f"http://127.0.0.1:{proxy.getsockname()[1]}")
        with pytest.raises(BuildError, match="refused by the outbound policy"):
            imagefactory_push_image(
                ctx=kit.ctx(outbound_allow=("127.0.0.1",)), template=kit.template(),
                target_image=kit.target(kit.disk()), target="ec2",
                provider={"region": "us-east-1", "endpoint_url": refused_endpoint},
                credentials={"access_key": "AKIA1", "secret_access_key": "s3cr3t"},
                parameters=plugin_parameters(imagefactory_ec2,
                                             config={"endpoints": [refused_endpoint]}))
        with pytest.raises(TimeoutError):
            proxy.accept()  # the proxy never saw the request
