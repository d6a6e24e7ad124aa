"""An imagefactory.conf of the original Image Factory, and its daemon's option spellings, read
into our configuration: the keys we use are mapped, the others reported once by name (never a
refusal), while a file in our own format stays strict."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from imagefactory_core.config import load_config
from imagefactory_core.errors import InvalidRequest
from imagefactory_core.legacyconfig import ORIGINAL_ONLY, is_original


@pytest.fixture(autouse=True)
def no_system_config(monkeypatch, tmp_path):
    """This machine's /etc/imagefactory/imagefactory.conf, if any, stays out of the tests."""
    monkeypatch.setattr("imagefactory_core.config.DEFAULT_CONFIG_FILE",
                        tmp_path / "etc" / "imagefactory.conf")


def original_conf(tmp_path: Path, **changes: Any) -> dict[str, Any]:
    """The keys of the original's packaged imagefactory.conf, with paths under `tmp_path`."""
    values: dict[str, Any] = {
        "debug": 0, "no_ssl": 0, "no_oauth": 0,
        "imgdir": str(tmp_path / "images"),
        "ec2_ami_type": "ebs", "rhevm_image_format": "qcow2",
        "openstack_image_format": "qcow2",
        "clients": {"mock-key": "mock-secret"},
        "proxy_ami_id": "ami-id",
        "max_concurrent_local_sessions": 3, "max_concurrent_ec2_sessions": 4,
        "ec2-32bit-util": "m1.small", "ec2-64bit-util": "t2.micro",
        "image_manager": "file",
        "image_manager_args": {"storage_path": str(tmp_path / "storage")},
        "tdl_require_root_pw": 1,
        "jeos_config": [str(tmp_path / "jeos_images")],
    }
    values.update(changes)
    return {k: v for k, v in values.items() if v is not None}


def load(tmp_path: Path, values: dict[str, Any], **overrides: Any):  # type: ignore[no-untyped-def]
    path = tmp_path / "imagefactory.conf"
    path.write_text(json.dumps(values))
    return load_config(path, env={}, overrides=overrides)


def said(config: Any, level: int = logging.WARNING) -> list[str]:
    return [message for at, message in config.notices if at == level]


def about(config: Any, key: str) -> str:
    """The one warning that names `key`."""
    (message,) = [m for m in said(config) if f"key {key!r} " in m]
    return message


def test_the_originals_packaged_file_starts_with_every_key_we_use(tmp_path):
    config = load(tmp_path, original_conf(tmp_path))
    assert config.clients == {"mock-key": "mock-secret"}
    assert (config.debug, config.no_ssl, config.no_oauth) == (False, False, False)
    assert config.max_concurrent_local_sessions == 3
    assert config.tdl_require_root_pw is True
    assert config.storage_dir == tmp_path / "storage"
    assert config.plugins == {}
    source = str(tmp_path / "imagefactory.conf")
    assert said(config, logging.INFO) == [
        f"{source}: read the original Image Factory's settings: key 'ec2_ami_type' 'ebs' is "
        "what this service does; key 'image_manager' 'file' is what this service does"]


def test_each_key_we_do_not_use_is_reported_once_by_name_and_why(tmp_path):
    config = load(tmp_path, original_conf(tmp_path))
    source = str(tmp_path / "imagefactory.conf")
    unused = said(config)
    reported = ["ec2-32bit-util", "ec2-64bit-util", "imgdir", "jeos_config",
                "max_concurrent_ec2_sessions", "openstack_image_format", "proxy_ami_id",
                "rhevm_image_format"]
    assert len(unused) == len(reported)
    for key, message in zip(reported, unused, strict=True):
        assert message.startswith(f"{source}: key {key!r} of the original Image Factory is "
                                  "not used: "), message
    assert unused[2].endswith("image bodies go to image_manager_args.storage_path, which is "
                              "set; builds work in state_dir/work")
    assert unused[5].endswith("a setting of the openstack plugin now: "
                              "plugins.openstack.openstack_image_format "
                              "(docs/plugins/openstack.md)")
    assert unused[6].endswith("builds on an EC2 utility instance (snapshot style) are not done "
                              "here: the ec2 plugin uploads the disk image it built")


def test_imgdir_is_the_image_storage_when_the_file_names_no_other(tmp_path):
    config = load(tmp_path, original_conf(tmp_path, image_manager_args=None))
    assert config.storage_dir == tmp_path / "images"
    assert "key 'imgdir' -> storage_path" in said(config, logging.INFO)[0]
    assert not [m for m in said(config) if "'imgdir'" in m]


@pytest.mark.parametrize(("pem", "expected"), [
    ("/etc/pki/imagefactory/server.pem", "/etc/pki/imagefactory/server.pem"),
    ("*", None),
])
def test_ssl_pem_is_the_certificate_and_its_key(tmp_path, pem, expected):
    config = load(tmp_path, original_conf(tmp_path, ssl_pem=pem))
    assert (config.ssl_cert, config.ssl_key) == (expected, expected)
    assert not [m for m in said(config) if "'ssl_pem'" in m]


def test_our_own_certificate_keys_win_over_ssl_pem(tmp_path):
    config = load(tmp_path, original_conf(tmp_path, ssl_pem="/one.pem", ssl_cert="/c.pem",
                                          ssl_key="/k.pem"))
    assert (config.ssl_cert, config.ssl_key) == ("/c.pem", "/k.pem")
    assert about(config, "ssl_pem").endswith(
        "is not used: ssl_cert and ssl_key are set")


def test_keys_of_ours_in_an_original_file_are_used(tmp_path):
    config = load(tmp_path, original_conf(
        tmp_path, state_dir=str(tmp_path / "state"), port=9001,
        plugins={"openstack": {"openstack_image_format": "raw"}}))
    assert config.state_dir == str(tmp_path / "state")
    assert config.port == 9001
    assert config.plugins == {"openstack": {"openstack_image_format": "raw"}}


def test_a_key_neither_knows_is_reported_not_refused_in_an_original_file(tmp_path):
    config = load(tmp_path, original_conf(tmp_path, max_concurent_local_sessions=5))
    assert config.max_concurrent_local_sessions == 3
    assert f"{tmp_path / 'imagefactory.conf'}: key 'max_concurent_local_sessions' is not a " \
           "key of this service or of the original Image Factory (misspelt?); not used" \
           in said(config)


def test_the_originals_other_image_managers_are_reported(tmp_path):
    config = load(tmp_path, original_conf(tmp_path, image_manager="mongo", image_manager_args={
        "storage_path": str(tmp_path / "storage"), "host": "mongo.example"}))
    assert config.storage_dir == tmp_path / "storage"
    named = [m.split(": ", 2)[1] for m in said(config)]
    assert "key 'image_manager' of the original Image Factory is not used" in named
    assert "key 'image_manager_args.host' of the original Image Factory is not used" in named


def test_a_plugin_directory_marks_a_file_as_the_originals(tmp_path):
    values = {"port": 9002, "plugins": "/etc/imagefactory/plugins.d"}
    assert is_original(values)
    config = load(tmp_path, values)
    assert (config.port, config.plugins) == (9002, {})
    assert about(config, "plugins").endswith(
        "plugins are Python distributions found through the 'imagefactory.plugins' entry "
        "points (plugin_modules, disabled_plugins), not a directory")


@pytest.mark.parametrize(("values", "key"), [
    ({"max_concurrent_local_sessions": 0}, "max_concurrent_local_sessions"),
    ({"clients": ["mock-key"]}, "clients"),
    ({"debug": "loud"}, "debug"),
    ({"image_manager_args": {"storage_path": 7}}, "storage_path"),
])
def test_a_value_we_cannot_use_is_still_an_error_in_an_original_file(tmp_path, values, key):
    with pytest.raises(InvalidRequest) as raised:
        load(tmp_path, original_conf(tmp_path, **values))
    assert repr(key) in str(raised.value)


@pytest.mark.parametrize(("values", "named"), [
    ({"port": 9003, "colour": "blue"}, "'colour'"),
    ({"image_manager_args": {"storage_path": "/srv", "host": "x"}}, "image_manager_args.host"),
])
def test_our_own_format_stays_strict(tmp_path, values, named):
    assert not is_original(values)
    with pytest.raises(InvalidRequest) as raised:
        load(tmp_path, values)
    assert named in str(raised.value)


def test_every_key_the_original_ships_or_reads_is_known():
    """The original's packaged file and its daemon's options (ApplicationConfiguration)."""
    shipped = {"imgdir", "ec2_ami_type", "rhevm_image_format", "openstack_image_format",
               "proxy_ami_id", "max_concurrent_ec2_sessions", "ec2_32bit_util",
               "ec2_64bit_util", "image_manager", "jeos_config", "ssl_pem", "timeout",
               "tmpdir", "plugins", "verbose", "foreground", "secondary", "ec2_build_style"}
    assert shipped <= set(ORIGINAL_ONLY)


def test_the_daemons_option_spellings_map_to_ours(tmp_path):
    """`imagefactory serve --imgdir DIR --ssl_pem PEM --nodebug --timeout 60 …` pass these
    (tests/server/test_migration_server.py runs the command itself)."""
    config = load(tmp_path, {"debug": True}, imgdir=str(tmp_path / "images"),
                  ssl_pem="/srv/server.pem", debug=False, timeout="60", foreground=True,
                  ec2_32bit_util="m1.small")
    assert config.storage_dir == tmp_path / "images"
    assert (config.ssl_cert, config.ssl_key) == ("/srv/server.pem", "/srv/server.pem")
    assert config.debug is False
    assert said(config, logging.INFO) == [
        "command line: read the original Image Factory's settings: option --imgdir -> "
        "storage_path; option --ssl_pem -> ssl_cert and ssl_key (one PEM file holding both)"]
    assert [m.split(" of the original")[0] for m in said(config)] == [
        "command line: option --ec2-32bit-util", "command line: option --foreground",
        "command line: option --timeout"]


def test_the_command_line_imgdir_wins_over_the_files_storage(tmp_path):
    config = load(tmp_path, original_conf(tmp_path), imgdir=str(tmp_path / "fast"))
    assert config.storage_dir == tmp_path / "fast"


def test_docs_migrating_names_every_key_of_the_original():
    """docs/migrating.md is where an operator looks up a key the log reported."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "migrating.md").read_text()
    missing = [key for key in ORIGINAL_ONLY
               if f"`{key}`" not in text and f"`{key.replace('_', '-')}`" not in text]
    assert not missing, missing
