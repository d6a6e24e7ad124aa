"""Real Keystone + Glance on 127.0.0.1 for the openstack plugin's tests and its benchmark.

Both come from PyPI into their own venv (`install.sh`), because they pin many dependencies the
project's .venv must not get. Neither runs standalone any more, so both are served by gunicorn.
Nothing here depends on pytest: `bench/push_openstack` starts the same services.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import string
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openstack

SUPPORT_DIR = Path(__file__).resolve().parent
REGION = "RegionOne"
ADMIN = "admin"
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))
# The services' own deprecation chatter (eventlet, oslo) only buries real errors in the logs.
_SERVICE_ENV = {"PYTHONWARNINGS": "ignore"}


def ensure_venv() -> Path:
    """Install the service venv unless the cached one works (see install.sh); return its path."""
    done = subprocess.run([SUPPORT_DIR / "install.sh"], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"install.sh failed ({done.returncode}):\n{done.stderr[-4000:]}")
    return Path(done.stdout.split()[-1])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _render(template: str, target: Path, **values: object) -> None:
    text = string.Template((SUPPORT_DIR / template).read_text()).substitute(values)
    with target.open("a") as out:
        out.write(text)


@dataclass
class Service:
    """One gunicorn-served API in its own process group, logging to a file."""

    name: str
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    @classmethod
    def start(cls, name: str, venv: Path, port: int, app: str, state: Path,
              env: dict[str, str], *extra: str) -> Service:
        log = state / f"{name}-gunicorn.log"
        argv = [str(venv / "bin" / "gunicorn"), "--bind", f"127.0.0.1:{port}",
                "--worker-class", "gthread", "--workers", "1", "--threads", "8",
                "--timeout", "600", "--graceful-timeout", "5", *extra, app]
        with log.open("ab") as out:
            process = subprocess.Popen(argv, cwd=state, stdout=out, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, start_new_session=True,
                                       env={**os.environ, **_SERVICE_ENV, **env})
        return cls(name, f"http://127.0.0.1:{port}", process, log)

    def wait_until_answers(self, path: str, timeout: float = 120.0) -> None:
        """Poll until the API answers HTTP at all (Glance's root answers 300, which is fine).

        A service that dies or never answers is stopped, and the error carries its log's tail.
        """
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                self.stop()
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n"
                                   f"{self.log_tail()}")
            try:
                _NO_PROXY.open(self.url + path, timeout=5).close()
                return
            except urllib.error.HTTPError:
                return
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"{self.name} did not answer on {self.url} within "
                                       f"{timeout:.0f} s:\n{self.log_tail()}") from None
                time.sleep(0.1)

    def log_tail(self, lines: int = 40) -> str:
        found = [self.log, *self.log.parent.glob(f"{self.name}.log")]
        return "\n".join("\n".join(path.read_text(errors="replace").splitlines()[-lines:])
                         for path in found if path.exists())

    def stop(self) -> None:
        for sig, grace in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=grace)
                return


def _manage(venv: Path, tool: str, config_args: list[str], *args: str) -> None:
    done = subprocess.run([str(venv / "bin" / tool), *config_args, *args], capture_output=True,
                          text=True, env={**os.environ, **_SERVICE_ENV})
    if done.returncode != 0:
        raise RuntimeError(f"{tool} {args[0]} failed:\n{done.stdout[-2000:]}{done.stderr[-4000:]}")


def start_keystone(venv: Path, state: Path, port: int, admin_password: str) -> Service:
    """Configure, initialise and serve Keystone on `port`; return once it answers on /v3."""
    state.mkdir(parents=True, exist_ok=True)
    auth_url = f"http://127.0.0.1:{port}/v3"
    conf = state / "keystone.conf"
    _render("keystone.conf.in", conf, state_dir=state)
    config = ["--config-file", str(conf)]
    owner = ["--keystone-user", str(os.getuid()), "--keystone-group", str(os.getgid())]
    # Key repositories do not need the database: set them up while the schema is created.
    with ThreadPoolExecutor(3) as pool:
        jobs = [pool.submit(_manage, venv, "keystone-manage", config, "db_sync"),
                pool.submit(_manage, venv, "keystone-manage", config, "fernet_setup", *owner),
                pool.submit(_manage, venv, "keystone-manage", config, "credential_setup", *owner)]
        for job in jobs:
            job.result()
    # `--option=value`: a generated password may start with "-", which argparse would
    # take for an option if it came as the next argument
    _manage(venv, "keystone-manage", config, "bootstrap",
            f"--bootstrap-password={admin_password}", "--bootstrap-username", ADMIN,
            "--bootstrap-project-name", ADMIN, "--bootstrap-region-id", REGION,
            *(f"--bootstrap-{kind}-url={auth_url}" for kind in ("admin", "internal", "public")))
    service = Service.start("keystone", venv, port, "keystone_wsgi:application", state,
                            {"OS_KEYSTONE_CONFIG_DIR": str(state)},
                            "--pythonpath", str(SUPPORT_DIR))
    service.wait_until_answers("/v3")
    return service


def register_glance(auth: dict[str, str], glance_url: str, glance_password: str) -> None:
    """Create what Glance needs in Keystone: its service user and the image endpoints."""
    conn = openstack.connect(load_yaml_config=False, load_envvars=False, **auth)
    try:
        service_project = conn.identity.create_project(name="service", domain_id="default")
        user = conn.identity.create_user(name="glance", password=glance_password,
                                         domain_id="default", default_project_id=service_project.id)
        for role_name in ("admin", "service"):
            role = conn.identity.find_role(role_name, ignore_missing=False)
            conn.identity.assign_project_role_to_user(service_project, user, role)
        image = conn.identity.create_service(name="glance", type="image")
        for interface in ("public", "internal", "admin"):
            conn.identity.create_endpoint(service_id=image.id, interface=interface,
                                          url=glance_url, region_id=REGION)
    finally:
        conn.close()


def prepare_glance(venv: Path, state: Path, port: int, *, auth_url: str | None = None,
                   glance_password: str | None = None) -> None:
    """Write Glance's configuration and create its database; with `auth_url` it will check
    tokens with that Keystone (which it first calls on the first request, not at start)."""
    state.mkdir(parents=True, exist_ok=True)
    conf = state / "glance-api.conf"
    _render("glance-api.conf.in", conf, state_dir=state, port=port, venv=venv,
            flavor="keystone" if auth_url else "")
    if auth_url:
        _render("glance-authtoken.conf.in", conf, auth_url=auth_url,
                glance_password=glance_password)
    _manage(venv, "glance-manage", ["--config-file", str(conf)], "db_sync")


def serve_glance(venv: Path, state: Path, port: int) -> Service:
    """Serve a prepared Glance; return once it answers."""
    service = Service.start("glance", venv, port, "glance.wsgi.api:application", state,
                            {"OS_GLANCE_CONFIG_DIR": str(state)})
    service.wait_until_answers("/")
    return service


@contextlib.contextmanager
def keystone_and_glance(state: Path) -> Iterator[dict[str, Any]]:
    """Run Keystone + a Keystone-protected Glance; yield how to reach them as admin.

    The dict: auth_url, username, password, project_name, user_domain_name,
    project_domain_name, region_name (the keyword arguments of `openstack.connect`), plus
    glance_url, glance_host, glance_port and timings (seconds for install and start).
    """
    started = time.monotonic()
    venv = ensure_venv()
    installed = time.monotonic()
    admin_password = secrets.token_urlsafe(12)
    glance_password = secrets.token_urlsafe(12)
    keystone_port, glance_port = free_port(), free_port()
    auth = {"auth_url": f"http://127.0.0.1:{keystone_port}/v3", "username": ADMIN,
            "password": admin_password, "project_name": ADMIN,
            "user_domain_name": "Default", "project_domain_name": "Default",
            "region_name": REGION}
    glance_url = f"http://127.0.0.1:{glance_port}"
    services: list[Service] = []
    try:
        # Glance needs Keystone only from its first request on: set both up side by side.
        with ThreadPoolExecutor(2) as pool:
            glance_ready = pool.submit(prepare_glance, venv, state / "glance", glance_port,
                                       auth_url=auth["auth_url"],
                                       glance_password=glance_password)
            keystone = pool.submit(start_keystone, venv, state / "keystone", keystone_port,
                                   admin_password)
            services.append(keystone.result())
            registered = pool.submit(register_glance, auth, glance_url, glance_password)
            glance_ready.result()
            services.append(serve_glance(venv, state / "glance", glance_port))
            registered.result()
        yield {**auth, "glance_url": glance_url, "glance_host": "127.0.0.1",
               "glance_port": glance_port,
               "timings": {"install": installed - started, "start": time.monotonic() - installed}}
    finally:
        for service in reversed(services):
            service.stop()


@contextlib.contextmanager
def glance_without_auth(state: Path) -> Iterator[dict[str, Any]]:
    """Run a Glance that takes requests without tokens; yield glance_url/_host/_port."""
    venv = ensure_venv()
    port = free_port()
    prepare_glance(venv, state, port)
    service = serve_glance(venv, state, port)
    try:
        yield {"glance_url": service.url, "glance_host": "127.0.0.1", "glance_port": port}
    finally:
        service.stop()
