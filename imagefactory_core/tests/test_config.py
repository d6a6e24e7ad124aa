"""Configuration: imagefactory.conf (JSON) < environment < command line; the original's keys;
``IMAGEFACTORY_DISABLED_PLUGINS``; and a clear error, naming the key, for every bad value."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from imagefactory_core.cli import main
from imagefactory_core.config import Config, load_config
from imagefactory_core.errors import InvalidRequest


def conf(tmp_path: Path, values: Any, name: str = "imagefactory.conf") -> Path:
    path = tmp_path / name
    path.write_text(values if isinstance(values, str) else json.dumps(values))
    return path


@pytest.fixture(autouse=True)
def no_system_config(monkeypatch, tmp_path):
    """This machine's /etc/imagefactory/imagefactory.conf, if any, stays out of the tests."""
    monkeypatch.setattr("imagefactory_core.config.DEFAULT_CONFIG_FILE",
                        tmp_path / "etc" / "imagefactory.conf")


def test_defaults_without_file_or_environment():
    config = load_config(env={})
    assert config == Config()
    assert config.port == 8075
    assert config.max_concurrent_local_sessions == 2
    assert config.oauth_enabled and not config.no_ssl and not config.protect_reads
    assert config.storage_dir == Path("/var/lib/imagefactory/storage")
    assert config.db_url == "sqlite:////var/lib/imagefactory/imagefactory.db"


def test_file_then_environment_then_overrides(tmp_path):
    path = conf(tmp_path, {"port": 1001, "address": "127.0.0.1", "debug": True,
                           "callback_timeout": 3.5, "state_dir": str(tmp_path / "file")})
    env = {"IMAGEFACTORY_PORT": "1002", "IMAGEFACTORY_DEBUG": "off",
           "IMAGEFACTORY_STATE_DIR": str(tmp_path / "env")}
    assert load_config(path, env={}).port == 1001
    from_env = load_config(path, env=env)
    assert (from_env.port, from_env.debug, from_env.state_dir) == (1002, False,
                                                                   str(tmp_path / "env"))
    assert from_env.address == "127.0.0.1"
    assert from_env.callback_timeout == 3.5
    final = load_config(path, env=env, overrides={"port": 1003, "debug": True})
    assert (final.port, final.debug, final.state_dir) == (1003, True, str(tmp_path / "env"))
    assert final.address == "127.0.0.1"


def test_the_originals_keys(tmp_path):
    path = conf(tmp_path, {
        "debug": 1, "no_ssl": 0, "no_oauth": 1,
        "clients": {"mock-key": "mock-secret"},
        "max_concurrent_local_sessions": 3,
        "image_manager_args": {"storage_path": str(tmp_path / "bodies")},
        "tdl_require_root_pw": 1,
        "state_dir": str(tmp_path / "state"),
    })
    config = load_config(path, env={})
    assert config.debug is True and config.no_ssl is False and config.no_oauth is True
    assert not config.oauth_enabled
    assert config.clients == {"mock-key": "mock-secret"}
    assert config.max_concurrent_local_sessions == 3
    assert config.tdl_require_root_pw is True
    assert config.storage_path == str(tmp_path / "bodies")
    assert config.storage_dir == tmp_path / "bodies"
    assert config.work_dir == tmp_path / "state" / "work"
    assert config.secret_key_file == tmp_path / "state" / "secret.key"
    assert config.db_url == f"sqlite:///{tmp_path / 'state' / 'imagefactory.db'}"


def test_dashed_spellings_are_the_same_keys(tmp_path):
    config = load_config(conf(tmp_path, {"max-concurrent-local-sessions": 4, "no-ssl": True}),
                         env={}, overrides={"protect-reads": True})
    assert config.max_concurrent_local_sessions == 4
    assert config.no_ssl and config.protect_reads


def test_the_default_file_is_read_when_it_exists(tmp_path):
    default = tmp_path / "etc" / "imagefactory.conf"
    default.parent.mkdir()
    default.write_text(json.dumps({"port": 2000}))
    assert load_config(env={}).port == 2000


def test_environment_names_the_file(tmp_path):
    named = conf(tmp_path, {"port": 2001}, "named.conf")
    assert load_config(env={"IMAGEFACTORY_CONFIG": str(named)}).port == 2001
    explicit = conf(tmp_path, {"port": 2002}, "explicit.conf")
    assert load_config(explicit, env={"IMAGEFACTORY_CONFIG": str(named)}).port == 2002


@pytest.mark.parametrize(("raw", "expected"), [
    ("broken-os, fedora,,  ec2 ", ["broken-os", "fedora", "ec2"]),
    ("single", ["single"]),
    ('["a", "b c"]', ["a", "b c"]),
    ("", []),
])
def test_disabled_plugins_from_the_environment(raw, expected):
    assert load_config(env={"IMAGEFACTORY_DISABLED_PLUGINS": raw}).disabled_plugins == expected


def test_environment_values_are_typed():
    config = load_config(env={
        "IMAGEFACTORY_NO_SSL": "yes", "IMAGEFACTORY_PROTECT_READS": "TRUE",
        "IMAGEFACTORY_MAX_REQUEST_BYTES": "1024", "IMAGEFACTORY_CALLBACK_TIMEOUT": "0.5",
        "IMAGEFACTORY_CLIENTS": '{"k": "s"}', "IMAGEFACTORY_PLUGIN_MODULES": "a.b,c",
        "IMAGEFACTORY_PLUGINS": '{"debian": {"mirror": "http://127.0.0.1:9/"}}',
        "IMAGEFACTORY_OPERATOR_PARAMETERS": '{"ci": ["mirror", "apt_proxy"]}',
    })
    assert config.no_ssl is True and config.protect_reads is True
    assert config.max_request_bytes == 1024
    assert config.callback_timeout == 0.5
    assert config.clients == {"k": "s"}
    assert config.plugin_modules == ["a.b", "c"]
    assert config.plugins == {"debian": {"mirror": "http://127.0.0.1:9/"}}
    assert config.operator_parameters == {"ci": ["mirror", "apt_proxy"]}


BAD_VALUES = [
    ({"port": "eighty"}, "port"),
    ({"port": 70000}, "port"),
    ({"port": 0}, "port"),
    ({"port": True}, "port"),
    ({"port": 80.5}, "port"),
    ({"no_ssl": "maybe"}, "no_ssl"),
    ({"no_ssl": [1]}, "no_ssl"),
    ({"debug": None}, "debug"),
    ({"clients": ["client1"]}, "clients"),
    ({"clients": {"client1": 5}}, "clients"),
    ({"clients": "not json"}, "clients"),
    ({"disabled_plugins": 5}, "disabled_plugins"),
    ({"disabled_plugins": {"a": 1}}, "disabled_plugins"),
    ({"plugins": []}, "plugins"),
    ({"plugins": {"debian": "fast"}}, "plugins"),
    ({"operator_parameters": {"ci": "mirror"}}, "operator_parameters"),
    ({"operator_parameters": ["mirror"]}, "operator_parameters"),
    ({"max_concurrent_local_sessions": 0}, "max_concurrent_local_sessions"),
    ({"max_concurrent_uploads": -2}, "max_concurrent_uploads"),
    ({"callback_timeout": "soon"}, "callback_timeout"),
    ({"callback_retries": -1}, "callback_retries"),
    ({"state_dir": 5}, "state_dir"),
    ({"image_manager_args": "/srv"}, "image_manager_args"),
    ({"no_such_key": 1}, "no_such_key"),
]


@pytest.mark.parametrize(("values", "key"), BAD_VALUES)
def test_bad_value_in_the_file_is_a_clear_error(tmp_path, values, key):
    with pytest.raises(InvalidRequest) as raised:
        load_config(conf(tmp_path, values), env={})
    assert repr(key) in str(raised.value)


@pytest.mark.parametrize(("name", "raw"), [
    ("PORT", "x"), ("NO_OAUTH", "perhaps"), ("CLIENTS", "{broken"), ("CLIENTS", "[]"),
    ("MAX_CONCURRENT_LOCAL_SESSIONS", "0"), ("SERVER_THREADS", "1.5"),
])
def test_bad_value_in_the_environment_is_a_clear_error(name, raw):
    with pytest.raises(InvalidRequest) as raised:
        load_config(env={f"IMAGEFACTORY_{name}": raw})
    assert repr(name.lower()) in str(raised.value)


def test_client_secrets_are_not_echoed_in_errors():
    with pytest.raises(InvalidRequest) as raised:
        load_config(env={"IMAGEFACTORY_CLIENTS": '{"k": "hunter2-secret"'})
    assert "hunter2-secret" not in str(raised.value)


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", '"text"'])
def test_unusable_file_is_a_clear_error(tmp_path, content):
    path = conf(tmp_path, content)
    with pytest.raises(InvalidRequest) as raised:
        load_config(path, env={})
    assert str(path) in str(raised.value)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(InvalidRequest) as raised:
        load_config(tmp_path / "absent.conf", env={})
    assert "absent.conf" in str(raised.value)


def test_serve_refuses_a_bad_config_with_exit_status_2(tmp_path, capsys):
    path = conf(tmp_path, {"port": "eighty", "state_dir": str(tmp_path)})
    with pytest.raises(SystemExit) as exited:
        main(["serve", "--config", str(path)])
    assert exited.value.code == 2
    assert "'port'" in capsys.readouterr().err


def test_sandbox_settings_come_from_the_sandbox_keys():
    config = load_config(env={
        "IMAGEFACTORY_SANDBOX_MEMORY_MIB": "512", "IMAGEFACTORY_SANDBOX_PROCESSES": "64",
        "IMAGEFACTORY_SANDBOX_TREE_MIB": "8192", "IMAGEFACTORY_SANDBOX_WALL_SECONDS": "3600",
        "IMAGEFACTORY_SANDBOX_NETWORK": "none",
        "IMAGEFACTORY_SANDBOX_EGRESS_ALLOW": "10.20.0.0/16,http://mirror.internal:8080/debian",
    })
    settings = config.sandbox_settings()
    assert (settings.limits.memory_mib, settings.limits.processes, settings.limits.tree_mib,
            settings.limits.wall_seconds) == (512, 64, 8192, 3600)
    assert settings.network == "none"
    assert settings.egress_allow == ("10.20.0.0/16", "http://mirror.internal:8080/debian")
    unlimited = load_config(env={}).sandbox_settings().limits
    assert (unlimited.tree_mib, unlimited.wall_seconds) == (None, None)


@pytest.mark.parametrize(("key", "value", "message"), [
    ("sandbox_network", "host", "is neither 'egress' nor 'none'"),
    ("sandbox_egress_allow", ["not a host!"], "neither a CIDR nor a host name"),
    ("sandbox_egress_allow", ["http:///no-host"], "names no host"),
])
def test_bad_sandbox_settings_are_clear_errors(key, value, message):
    with pytest.raises(InvalidRequest) as raised:
        load_config(env={}, overrides={key: value}).sandbox_settings()
    assert message in str(raised.value)


@pytest.mark.parametrize(("values", "said"), [
    ({"build_workers": "threads"}, "is not one of embedded, external, in-process"),
    ({"queue_url": "http://127.0.0.1:6379"}, "a Celery broker URL starts with"),
    ({"build_workers": "in-process", "queue_url": "redis://127.0.0.1:6379/0"},
     "in-process builds take no queue"),
])
def test_where_builds_run_is_checked(values, said):
    with pytest.raises(InvalidRequest, match=said):
        Config(**values).checked_workers()


def test_a_broker_password_is_not_echoed_in_errors(tmp_path):
    path = conf(tmp_path, json.dumps({"queue_url": ["redis://:broker-pw-5e1@127.0.0.1/0"]}))
    with pytest.raises(InvalidRequest) as raised:
        load_config(path, env={})
    assert "queue_url" in str(raised.value) and "broker-pw-5e1" not in str(raised.value)


def test_serve_refuses_a_worker_mode_it_does_not_know(tmp_path, capsys):
    path = conf(tmp_path, json.dumps({"build_workers": "threads",
                                      "state_dir": str(tmp_path / "state")}))
    with pytest.raises(SystemExit):
        main(["serve", "--config", str(path), "--no-ssl", "--no-oauth"])
    assert "build_workers" in capsys.readouterr().err
