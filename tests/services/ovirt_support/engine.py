"""A fake oVirt engine at the protocol level: the HTTP and XML that ovirt-engine-sdk-python
speaks, over TLS with a certificate of a throwaway CA, in front of a real imageio daemon.

What it answers:

* SSO: ``POST /ovirt-engine/sso/oauth/token`` (grant_type password, scope ovirt-app-api) gives
  a bearer token for a known user and password, and a 401 with the engine's JSON error
  otherwise; ``POST /ovirt-engine/services/sso-logout`` revokes a token.
* ``/ovirt-engine/api``: the root; ``clusters``, ``datacenters`` (with their attached
  ``storagedomains``), ``storagedomains``; ``disks`` (add, get, remove); ``imagetransfers``
  (add, get, ``finalize``, ``cancel``: each transfer is a real imageio ticket on the disk's
  file); ``vms`` (add from the Blank template, get, remove, ``diskattachments``); ``templates``
  (add from a VM, which copies its disks, get, remove, ``diskattachments``).

A request without a valid token gets a 401. What the engine refuses (`inventory.Fault`)
becomes a ``<fault>``; an unknown path a 404; a body that is not the expected XML a 400.
Nothing here depends on pytest: `bench/push_rhevm` runs the same engine.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import re
import secrets
import ssl
import threading
import urllib.parse
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import representation as xml
from .imageio import Imageio
from .inventory import Fault, Inventory, default_inventory
from .pki import Pki, make_pki

SSO_TOKEN = "/ovirt-engine/sso/oauth/token"
SSO_LOGOUT = "/ovirt-engine/services/sso-logout"
USER = "admin@internal"
_USER_ID = "58ca604b-017d-0374-0220-00000000014e"

Route = tuple[str, re.Pattern[str], Callable[..., "_Answer"]]


@dataclass
class _Answer:
    status: int
    body: ET.Element | None = None


class EngineServer(http.server.ThreadingHTTPServer):
    """The fake engine: `inventory` is its state, `password` the admin's, `requests` what it
    was asked (method and path, for tests that check what a client did)."""

    daemon_threads = True

    def __init__(self, inventory: Inventory, pki: Pki | None, password: str) -> None:
        self.inventory = inventory
        self.password = password
        self.tokens: set[str] = set()
        self.requests: list[tuple[str, str]] = []
        self.requests_lock = threading.Lock()
        self.tls: ssl.SSLContext | None = None
        if pki is not None:
            self.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.tls.load_cert_chain(pki.cert_file, pki.key_file)
        super().__init__(("127.0.0.1", 0), _Handler)

    @property
    def base_url(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self.server_address[1]}"

    @property
    def api_url(self) -> str:
        return self.base_url + xml.API


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: EngineServer

    def setup(self) -> None:
        # The TLS handshake happens in the request's thread, not in the accepting one.
        if self.server.tls is not None:
            self.request = self.server.tls.wrap_socket(self.request, server_side=True)
        super().setup()

    def handle(self) -> None:
        with contextlib.suppress(ssl.SSLError, ConnectionError):
            super().handle()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests check `EngineServer.requests` instead."""

    # -- dispatch -------------------------------------------------------------------------
    def _dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        path, _, query = self.path.partition("?")
        with self.server.requests_lock:
            self.server.requests.append((self.command, path))
        if path == SSO_TOKEN and self.command == "POST":
            self._sso_token(urllib.parse.parse_qs(body.decode()))
            return
        if path == SSO_LOGOUT and self.command == "POST":
            self.server.tokens.discard(urllib.parse.parse_qs(body.decode()).get("token",
                                                                                [""])[0])
            self._json(200, {})
            return
        if not path.startswith(xml.API):
            self._xml(_Answer(404, xml.fault("Not Found", f"No such resource {path}")))
            return
        authorization = self.headers.get("Authorization", "")
        if authorization.removeprefix("Bearer ") not in self.server.tokens:
            self._empty(401)
            return
        self._xml(self._api(path.removeprefix(xml.API).strip("/"), body,
                            urllib.parse.parse_qs(query)))

    do_GET = do_POST = do_PUT = do_DELETE = _dispatch

    def _api(self, path: str, body: bytes, query: dict[str, list[str]]) -> _Answer:
        api = _Api(self.server.inventory)
        for method, pattern, action in _ROUTES:
            match = pattern.fullmatch(path)
            if match and method == self.command:
                try:
                    return action(api, *match.groups(), body=body, query=query)
                except Fault as fault:
                    return _Answer(fault.status, xml.fault(fault.reason, fault.detail))
                except ValueError as exc:
                    return _Answer(400, xml.fault("Bad Request", str(exc)))
        return _Answer(404, xml.fault("Not Found", f"No such resource {self.command} "
                                                   f"/{path}"))

    # -- SSO ------------------------------------------------------------------------------
    def _sso_token(self, form: dict[str, list[str]]) -> None:
        def one(key: str) -> str:
            return form.get(key, [""])[0]

        if one("grant_type") != "password" or one("scope") != "ovirt-app-api":
            self._json(400, {"error_code": "invalid_request",
                             "error": "Unsupported grant_type or scope."})
            return
        if one("username") != USER or not secrets.compare_digest(one("password"),
                                                                 self.server.password):
            self._json(401, {"error_code": "access_denied",
                             "error": f"Cannot authenticate user '{one('username')}': The "
                                      "username or password is incorrect."})
            return
        token = secrets.token_urlsafe(32)
        self.server.tokens.add(token)
        self._json(200, {"access_token": token, "scope": "ovirt-app-api",
                         "token_type": "bearer", "exp": "3600"})

    # -- answers --------------------------------------------------------------------------
    def _json(self, status: int, value: dict[str, Any]) -> None:
        self._send(status, json.dumps(value).encode(), "application/json")

    def _xml(self, answer: _Answer) -> None:
        if answer.body is None:
            self._empty(answer.status)
            return
        self._send(answer.status, xml.document(answer.body), "application/xml;charset=UTF-8")

    def _empty(self, status: int) -> None:
        self._send(status, b"", None)

    def _send(self, status: int, payload: bytes, content_type: str | None) -> None:
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


class _Api:
    """The API's resources over an inventory (routes: `_ROUTES`)."""

    def __init__(self, inventory: Inventory) -> None:
        self.inventory = inventory

    def root(self, **_: Any) -> _Answer:
        return _Answer(200, xml.api_root(self.inventory, _USER_ID))

    # clusters, data centers, storage domains
    def clusters(self, **_: Any) -> _Answer:
        with self.inventory.lock:
            return _Answer(200, xml.collection("clusters", [
                xml.cluster(found) for found in self.inventory.clusters.values()]))

    def cluster(self, cluster_id: str, **_: Any) -> _Answer:
        with self.inventory.lock:
            return _Answer(200, xml.cluster(self.inventory.cluster_named({"id": cluster_id})))

    def data_centers(self, **_: Any) -> _Answer:
        with self.inventory.lock:
            return _Answer(200, xml.collection("data_centers", [
                xml.data_center(found) for found in self.inventory.data_centers.values()]))

    def data_center(self, data_center_id: str, **_: Any) -> _Answer:
        with self.inventory.lock:
            found = self.inventory.data_centers.get(data_center_id)
            if found is None:
                raise Fault(404, f"Entity not found: {data_center_id}", reason="Not Found")
            return _Answer(200, xml.data_center(found))

    def attached_domains(self, data_center_id: str, **_: Any) -> _Answer:
        self.data_center(data_center_id)
        with self.inventory.lock:
            return _Answer(200, xml.collection("storage_domains", [
                xml.storage_domain(found, attached=True)
                for found in self.inventory.storage_domains.values()
                if found.data_center == data_center_id]))

    def storage_domains(self, **_: Any) -> _Answer:
        with self.inventory.lock:
            return _Answer(200, xml.collection("storage_domains", [
                xml.storage_domain(found) for found in self.inventory.storage_domains.values()]))

    def storage_domain(self, domain_id: str, **_: Any) -> _Answer:
        with self.inventory.lock:
            found = self.inventory.storage_domains.get(domain_id)
            if found is None:
                raise Fault(404, f"Entity not found: {domain_id}", reason="Not Found")
            return _Answer(200, xml.storage_domain(found))

    # disks
    def disks(self, **_: Any) -> _Answer:
        with self.inventory.lock:
            return _Answer(200, xml.collection("disks", [
                xml.disk(self.inventory.disk(disk_id)) for disk_id in list(self.inventory.disks)]))

    def add_disk(self, body: bytes, **_: Any) -> _Answer:
        sent = xml.parse(body, "disk")
        domain = sent.find("storage_domains/storage_domain")
        made = self.inventory.add_disk(
            xml.text(sent, "name") or xml.text(sent, "alias") or "disk",
            xml.text(sent, "description") or "", xml.text(sent, "format"),
            xml.number(sent, "provisioned_size"), xml.number(sent, "initial_size"),
            domain.get("id") if domain is not None else None)
        return _Answer(201, xml.disk(made))

    def disk(self, disk_id: str, **_: Any) -> _Answer:
        return _Answer(200, xml.disk(self.inventory.disk(disk_id)))

    def remove_disk(self, disk_id: str, **_: Any) -> _Answer:
        self.inventory.remove_disk(disk_id)
        return _Answer(200)

    # image transfers
    def add_transfer(self, body: bytes, **_: Any) -> _Answer:
        sent = xml.parse(body, "image_transfer")
        disk = sent.find("disk")
        made = self.inventory.add_transfer(
            disk.get("id") if disk is not None else None, xml.text(sent, "direction"),
            xml.text(sent, "format"), xml.number(sent, "inactivity_timeout"))
        return _Answer(201, xml.transfer(made, self.inventory.transfer_urls(made)))

    def transfer(self, transfer_id: str, **_: Any) -> _Answer:
        found = self.inventory.transfer(transfer_id)
        return _Answer(200, xml.transfer(found, self.inventory.transfer_urls(found)))

    def finalize(self, transfer_id: str, body: bytes, **_: Any) -> _Answer:
        xml.parse(body, "action")
        self.inventory.finalize_transfer(transfer_id)
        return _Answer(200, _action())

    def cancel(self, transfer_id: str, body: bytes, **_: Any) -> _Answer:
        xml.parse(body, "action")
        self.inventory.cancel_transfer(transfer_id)
        return _Answer(200, _action())

    # VMs
    def vms(self, **_: Any) -> _Answer:
        with self.inventory.lock:
            return _Answer(200, xml.collection("vms", [
                xml.vm(found) for found in self.inventory.vms.values()]))

    def add_vm(self, body: bytes, **_: Any) -> _Answer:
        sent = xml.parse(body, "vm")
        made = self.inventory.add_vm(
            xml.text(sent, "name"), xml.text(sent, "description") or "",
            xml.reference(sent, "cluster") or {}, xml.reference(sent, "template") or {},
            xml.text(sent, "os/type"))
        return _Answer(201, xml.vm(made))

    def vm(self, vm_id: str, **_: Any) -> _Answer:
        return _Answer(200, xml.vm(self.inventory.vm(vm_id)))

    def remove_vm(self, vm_id: str, **_: Any) -> _Answer:
        self.inventory.remove_vm(vm_id)
        return _Answer(200)

    def vm_disks(self, vm_id: str, **_: Any) -> _Answer:
        with self.inventory.lock:
            found = self.inventory.vm(vm_id)
            return _Answer(200, xml.collection("disk_attachments", [
                xml.disk_attachment(self.inventory.disk(disk_id), "vm", vm_id)
                for disk_id in found.disks]))

    def attach(self, vm_id: str, body: bytes, **_: Any) -> _Answer:
        sent = xml.parse(body, "disk_attachment")
        disk = sent.find("disk")
        attached = self.inventory.attach_disk(
            vm_id, disk.get("id") if disk is not None else None, xml.text(sent, "interface"),
            xml.flag(sent, "bootable"))
        return _Answer(201, xml.disk_attachment(attached, "vm", vm_id))

    # templates
    def templates(self, **_: Any) -> _Answer:
        with self.inventory.lock:
            return _Answer(200, xml.collection("templates", [
                xml.template(found) for found in self.inventory.templates.values()]))

    def add_template(self, body: bytes, **_: Any) -> _Answer:
        sent = xml.parse(body, "template")
        vm = sent.find("vm")
        made = self.inventory.add_template(
            xml.text(sent, "name"), xml.text(sent, "description") or "",
            vm.get("id") if vm is not None else None, xml.reference(sent, "cluster"))
        return _Answer(201, xml.template(made))

    def template(self, template_id: str, **_: Any) -> _Answer:
        return _Answer(200, xml.template(self.inventory.template(template_id)))

    def remove_template(self, template_id: str, **_: Any) -> _Answer:
        self.inventory.remove_template(template_id)
        return _Answer(200)

    def template_disks(self, template_id: str, **_: Any) -> _Answer:
        with self.inventory.lock:
            found = self.inventory.template(template_id)
            return _Answer(200, xml.collection("disk_attachments", [
                xml.disk_attachment(self.inventory.disk(disk_id), "template", template_id)
                for disk_id in found.disks]))


def _action() -> ET.Element:
    action = ET.Element("action")
    ET.SubElement(action, "status").text = "complete"
    return action


_ID = r"([0-9a-f-]{36})"
_ROUTES: list[Route] = [
    ("GET", re.compile(r""), _Api.root),
    ("GET", re.compile(r"clusters"), _Api.clusters),
    ("GET", re.compile(rf"clusters/{_ID}"), _Api.cluster),
    ("GET", re.compile(r"datacenters"), _Api.data_centers),
    ("GET", re.compile(rf"datacenters/{_ID}"), _Api.data_center),
    ("GET", re.compile(rf"datacenters/{_ID}/storagedomains"), _Api.attached_domains),
    ("GET", re.compile(r"storagedomains"), _Api.storage_domains),
    ("GET", re.compile(rf"storagedomains/{_ID}"), _Api.storage_domain),
    ("GET", re.compile(r"disks"), _Api.disks),
    ("POST", re.compile(r"disks"), _Api.add_disk),
    ("GET", re.compile(rf"disks/{_ID}"), _Api.disk),
    ("DELETE", re.compile(rf"disks/{_ID}"), _Api.remove_disk),
    ("POST", re.compile(r"imagetransfers"), _Api.add_transfer),
    ("GET", re.compile(rf"imagetransfers/{_ID}"), _Api.transfer),
    ("POST", re.compile(rf"imagetransfers/{_ID}/finalize"), _Api.finalize),
    ("POST", re.compile(rf"imagetransfers/{_ID}/cancel"), _Api.cancel),
    ("GET", re.compile(r"vms"), _Api.vms),
    ("POST", re.compile(r"vms"), _Api.add_vm),
    ("GET", re.compile(rf"vms/{_ID}"), _Api.vm),
    ("DELETE", re.compile(rf"vms/{_ID}"), _Api.remove_vm),
    ("GET", re.compile(rf"vms/{_ID}/diskattachments"), _Api.vm_disks),
    ("POST", re.compile(rf"vms/{_ID}/diskattachments"), _Api.attach),
    ("GET", re.compile(r"templates"), _Api.templates),
    ("POST", re.compile(r"templates"), _Api.add_template),
    ("GET", re.compile(rf"templates/{_ID}"), _Api.template),
    ("DELETE", re.compile(rf"templates/{_ID}"), _Api.remove_template),
    ("GET", re.compile(rf"templates/{_ID}/diskattachments"), _Api.template_disks),
]


@dataclass
class Engine:
    """A running fake engine and its imageio daemon: where to reach them and how to log in."""

    server: EngineServer
    imageio: Imageio
    pki: Pki | None

    @property
    def inventory(self) -> Inventory:
        return self.server.inventory

    @property
    def api_url(self) -> str:
        return self.server.api_url

    @property
    def username(self) -> str:
        return USER

    @property
    def password(self) -> str:
        return self.server.password

    @property
    def ca_file(self) -> Path | None:
        return self.pki.ca_file if self.pki else None


@contextlib.contextmanager
def running_engine(state: Path, tls: bool = True) -> Iterator[Engine]:
    """Start imageio and the fake engine (over TLS unless told otherwise) under `state`;
    stop both at the end."""
    imageio = Imageio.start(state / "imageio")
    try:
        with default_inventory(state, imageio) as inventory:
            pki = make_pki(state / "pki") if tls else None
            server = EngineServer(inventory, pki, secrets.token_urlsafe(12))
            thread = threading.Thread(target=server.serve_forever, name="fake-ovirt-engine",
                                      daemon=True)
            thread.start()
            try:
                yield Engine(server, imageio, pki)
            finally:
                server.shutdown()
                server.server_close()
    finally:
        imageio.stop()
