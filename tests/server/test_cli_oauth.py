"""Where the command finds the service and its OAuth client: the command line, the environment
(IMAGEFACTORY_URL, IMAGEFACTORY_KEY, IMAGEFACTORY_SECRET), or a client configuration file;
requests are signed against a real server that refuses unsigned writes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.rest.conftest import fake_tdl

from . import clirun
from .conftest import free_port

pytestmark = pytest.mark.slow


@pytest.fixture
def home(tmp_path: Path) -> Path:
    (tmp_path / "fake.tdl").write_text(fake_tdl("signed"))
    return tmp_path


def build(home: Path, *options: str, env: dict[str, str] | None = None,
          check: bool = True) -> tuple[int, str]:
    """POST a base image (a signed write); the exit status and stderr."""
    result = clirun.run(home, "base-image", *options, "--output", "json", "fake.tdl", env=env,
                        check=check)
    if check:
        assert json.loads(result.stdout)["status"] in ("NEW", "PENDING", "BUILDING",
                                                       "COMPLETE")
    return result.returncode, result.stderr


def write_client_config(path: Path, mode: int, **values: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(values))
    path.chmod(mode)
    return path


def test_key_and_secret_from_the_environment(server, home):
    env = clirun.environment(home, IMAGEFACTORY_URL=clirun.service_url(server),
                             IMAGEFACTORY_KEY=clirun.KEY, IMAGEFACTORY_SECRET=clirun.SECRET)
    build(home, env=env)
    env["IMAGEFACTORY_SECRET"] = "not-the-secret"
    status, stderr = build(home, env=env, check=False)
    assert status == 1 and "HTTP 401" in stderr
    assert "not-the-secret" not in stderr
    build(home, "--secret", clirun.SECRET, env=env)  # the command line before the environment


def test_the_default_client_configuration_file(server, home):
    write_client_config(home / "config" / "imagefactory" / "client.json", 0o600,
                        url=clirun.service_url(server), key=clirun.KEY, secret=clirun.SECRET)
    _, stderr = build(home)
    assert stderr == ""


def test_a_named_client_configuration_and_its_permissions(server, home):
    named = write_client_config(home / "factory.json", 0o644, url=clirun.service_url(server),
                                key=clirun.KEY, secret=clirun.SECRET)
    _, stderr = build(home, "--client-config", str(named))
    assert f"{named} holds an OAuth secret that other users may read" in stderr
    assert clirun.SECRET not in stderr

    env = clirun.environment(home, IMAGEFACTORY_CLIENT_CONFIG=str(named),
                             IMAGEFACTORY_SECRET="not-the-secret")
    status, stderr = build(home, env=env, check=False)  # the environment before the file
    assert status == 1 and "HTTP 401" in stderr


def test_settings_that_cannot_work_are_refused_before_any_request(server, home):
    status, stderr = build(home, "--url", clirun.service_url(server), "--key", clirun.KEY,
                           check=False)
    assert status == 2 and "an OAuth key needs its secret" in stderr
    status, stderr = build(home, "--client-config", str(home / "absent.json"), check=False)
    assert status == 2 and "absent.json does not exist" in stderr
    typo = write_client_config(home / "typo.json", 0o600, URL="http://x", secret="s")
    status, stderr = build(home, "--client-config", str(typo), check=False)
    assert status == 2 and "unknown key(s) URL" in stderr
    status, stderr = build(home, "--url", f"http://127.0.0.1:{free_port()}", check=False)
    assert status == 1
    assert "cannot reach http://127.0.0.1:" in stderr and "--local" in stderr
