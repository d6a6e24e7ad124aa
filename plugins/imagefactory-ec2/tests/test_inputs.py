"""Credentials, provider and parameters: the accepted shapes, and clear errors otherwise."""

from __future__ import annotations

import json

import imagefactory_ec2
import pytest
from imagefactory_core.plugin import BuildError
from imagefactory_core.testing import ParameterError, plugin_parameters
from imagefactory_ec2.credentials import parse_credentials
from imagefactory_ec2.provider import parse_provider
from imagefactory_ec2.settings import PushSettings

SEED_XML_SHAPE = {"ec2_credentials": {
    "account_number": "\n  1234-5678-9012\n",
    "access_key": "\n  BEEFFEEDBEEFFEEDBEEF\n",
    "secret_access_key": "asdHGK46783HGAlasdfc12FjerIe7g",
    "certificate": "-----BEGIN CERTIFICATE-----\n...",
    "key": "-----BEGIN PRIVATE KEY-----\n...",
}}


def test_seed_xml_credentials_are_stripped_and_certificate_ignored() -> None:
    creds = parse_credentials(SEED_XML_SHAPE)
    assert creds.access_key == "BEEFFEEDBEEFFEEDBEEF"
    assert creds.secret_access_key == "asdHGK46783HGAlasdfc12FjerIe7g"
    assert creds.account_number == "123456789012"
    assert "asdHGK" not in repr(creds) and "BEEFFEED" not in repr(creds)


@pytest.mark.parametrize("document", [
    {"access_key": "AKIA1", "secret_access_key": "s3cr3t"},
    {"ec2_credentials": {"access_key": "AKIA1", "secret_access_key": "s3cr3t",
                         "session_token": "tok"}},
])
def test_json_credentials_flat_or_wrapped(document: dict) -> None:
    creds = parse_credentials(document)
    assert (creds.access_key, creds.secret_access_key, creds.account_number) == \
        ("AKIA1", "s3cr3t", None)
    assert "s3cr3t" in creds.secrets


@pytest.mark.parametrize(("document", "message"), [
    (None, "needs credentials"),
    ({"ec2_credentials": {"access_key": "AKIA1"}}, "lack secret_access_key"),
    ({"ec2_credentials": {"account_number": "1"}}, "lack access_key and secret_access_key"),
    ({"access_key": "A", "secret_access_key": "s3cr3t", "password": "hunter2"},
     "unknown ec2 credential field(s): password"),
    ({"access_key": "A", "secret_access_key": "s3cr3t", "account_number": "12-34"},
     "12-digit"),
])
def test_bad_credentials_name_the_problem_but_no_value(document: object, message: str) -> None:
    with pytest.raises(BuildError) as caught:
        parse_credentials(document)  # type: ignore[arg-type]
    assert message in str(caught.value)
    assert "s3cr3t" not in str(caught.value) and "hunter2" not in str(caught.value)


def test_provider_forms() -> None:
    assert parse_provider("ec2-eu-west-1").region == "eu-west-1"
    assert parse_provider("ec2-us-gov-west-1").endpoint("ec2") is None
    as_json = json.dumps({"region": "us-east-1", "endpoint_url": "http://127.0.0.1:1",
                          "s3_endpoint": "http://127.0.0.1:2"})
    for given in (as_json, json.loads(as_json)):
        provider = parse_provider(given)
        assert provider.region == "us-east-1"
        assert provider.endpoint("ec2") == provider.endpoint("ebs") == "http://127.0.0.1:1"
        assert provider.endpoint("s3") == "http://127.0.0.1:2"


@pytest.mark.parametrize(("provider", "message"), [
    ("openstack-kvm", "not an AWS region"),
    ("ec2-", "not an AWS region"),
    ("{not json", "not valid JSON"),
    ({"endpoint_url": "http://127.0.0.1:1"}, "needs a region"),
    ({"region": "us-east-1", "ec2_url": "x"}, "unknown ec2 provider field(s): ec2_url"),
    (None, "needs a provider"),
    ("", "needs a provider"),
])
def test_bad_providers(provider: object, message: str) -> None:
    with pytest.raises(BuildError) as caught:
        parse_provider(provider)  # type: ignore[arg-type]
    assert message in str(caught.value)


def test_settings_come_from_parameters_then_config() -> None:
    resolved = plugin_parameters(imagefactory_ec2, {"ec2_upload": "S3"},
                                 {"ec2_upload_threads": "4", "ec2_s3_bucket": "staging"})
    assert PushSettings.read(resolved) == PushSettings(upload="s3", threads=4, boot_mode=None,
                                                       s3_bucket="staging")
    defaults = plugin_parameters(imagefactory_ec2)
    assert PushSettings.read(defaults).upload == "ebs"
    assert defaults["ec2_image_format"] == "raw"
    assert plugin_parameters(imagefactory_ec2, config={"ec2_image_format": "VMDK"})[
        "ec2_image_format"] == "vmdk"


@pytest.mark.parametrize(("parameters", "message"), [
    ({"ec2_upload": "ftp"}, "parameter 'ec2_upload' (request): cannot use 'ftp': expected a "
                            "string, one of ebs, s3"),
    ({"ec2_upload_threads": "many"}, "expected a whole number, from 1 to 128"),
    ({"ec2_upload_threads": 0}, "expected a whole number, from 1 to 128"),
    ({"ec2_boot_mode": "bios"}, "one of uefi-preferred, uefi, legacy-bios"),
    ({"ec2_image_format": "qcow2"}, "one of raw, vmdk, vhd"),
    ({"ec2_s3_bucket": "Bad_Bucket"}, "matching"),
])
def test_bad_settings(parameters: dict, message: str) -> None:
    with pytest.raises(ParameterError) as raised:
        plugin_parameters(imagefactory_ec2, parameters)
    assert message in str(raised.value)
