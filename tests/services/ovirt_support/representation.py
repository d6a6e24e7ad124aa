"""The engine API's XML representation of the fake engine's entities, and the reading of the
XML a client sends.

Element and attribute names follow oVirt's API model (version 4), as ovirt-engine-sdk-python's
readers and writers name them: an entity is ``<disk href="…" id="…">`` with its attributes as
child elements, a reference to another entity is an empty element with ``href`` and ``id``, a
collection wraps its members (``<disks>``), enums are lower case, sub-collections are
``<link rel="…" href="…"/>``, and an error is a ``<fault>`` with ``reason`` and ``detail``.
"""

from __future__ import annotations

import datetime
import xml.etree.ElementTree as ET
from typing import Any

from .inventory import (
    BLANK_TEMPLATE_ID,
    Cluster,
    DataCenter,
    Disk,
    Inventory,
    StorageDomain,
    Template,
    Transfer,
    Vm,
)

API = "/ovirt-engine/api"
VERSION = {"major": "4", "minor": "5", "build": "6", "revision": "0",
           "full_version": "4.5.6-1.fake"}


def href(collection: str, entity_id: str, *more: str) -> str:
    return "/".join([API, collection, entity_id, *more])


def _element(tag: str, parent: ET.Element | None = None, text: Any = None,
             **attributes: str) -> ET.Element:
    element = ET.Element(tag, attributes) if parent is None else \
        ET.SubElement(parent, tag, attributes)
    if text is not None:
        element.text = str(text).lower() if isinstance(text, bool) else str(text)
    return element


def _fields(element: ET.Element, **values: Any) -> ET.Element:
    """Add a child element per value that is not None (in the given order)."""
    for tag, value in values.items():
        if value is not None:
            _element(tag, element, value)
    return element


def _ref(parent: ET.Element, tag: str, collection: str, entity_id: str) -> ET.Element:
    return _element(tag, parent, href=href(collection, entity_id), id=entity_id)


def _entity(tag: str, collection: str, entity_id: str) -> ET.Element:
    return _element(tag, href=href(collection, entity_id), id=entity_id)


def _link(parent: ET.Element, collection: str, entity_id: str, rel: str) -> None:
    _element("link", parent, href=href(collection, entity_id, rel), rel=rel)


def _version(parent: ET.Element, tag: str, full: bool = False) -> None:
    version = _element(tag, parent)
    keys = ("build", "full_version", "major", "minor", "revision") if full else ("major",
                                                                                  "minor")
    _fields(version, **{key: VERSION[key] for key in keys})


def document(root: ET.Element) -> bytes:
    return b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n' + \
        ET.tostring(root, encoding="utf-8")


def collection(tag: str, members: list[ET.Element]) -> ET.Element:
    wrapper = _element(tag)
    wrapper.extend(members)
    return wrapper


def fault(reason: str, detail: str) -> ET.Element:
    return _fields(_element("fault"), reason=reason, detail=f"[{detail}]")


def api_root(inventory: Inventory, user_id: str) -> ET.Element:
    api = _element("api")
    for rel in ("clusters", "datacenters", "disks", "imagetransfers", "storagedomains",
                "templates", "vms"):
        _element("link", api, href=f"{API}/{rel}", rel=rel)
    product = _fields(_element("product_info", api), name="oVirt Engine", vendor="ovirt.org")
    _version(product, "version", full=True)
    special = _element("special_objects", api)
    _ref(special, "blank_template", "templates", BLANK_TEMPLATE_ID)
    summary = _element("summary", api)
    with inventory.lock:
        _fields(_element("storage_domains", summary), active=len(inventory.storage_domains),
                total=len(inventory.storage_domains))
        _fields(_element("vms", summary), active=0, total=len(inventory.vms))
    _element("time", api, datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"))
    _ref(api, "authenticated_user", "users", user_id)
    _ref(api, "effective_user", "users", user_id)
    return api


def data_center(found: DataCenter) -> ET.Element:
    element = _fields(_entity("data_center", "datacenters", found.id), name=found.name,
                      description="", local=False, quota_mode="disabled", status="up",
                      storage_format="v5")
    _version(element, "version")
    for rel in ("clusters", "storagedomains"):
        _link(element, "datacenters", found.id, rel)
    return element


def cluster(found: Cluster) -> ET.Element:
    element = _fields(_entity("cluster", "clusters", found.id), name=found.name,
                      description="")
    _version(element, "version")
    _ref(element, "data_center", "datacenters", found.data_center)
    return element


def storage_domain(found: StorageDomain, attached: bool = False) -> ET.Element:
    """A storage domain as the top-level collection shows it, or (`attached`) as its data
    center's collection does, with its status there."""
    element = _fields(_entity("storage_domain", "storagedomains", found.id), name=found.name,
                      description="", available=found.available, used=10 * 2**30,
                      committed=0, external_status="ok", master=found.master,
                      status=found.status if attached or found.data_center is None else None,
                      storage_format="v5", type=found.type)
    _fields(_element("storage", element), type="nfs", address="storage.example",
            path=f"/exports/{found.name}")
    if found.data_center:
        if attached:
            _ref(element, "data_center", "datacenters", found.data_center)
        centers = _element("data_centers", element)
        _ref(centers, "data_center", "datacenters", found.data_center)
    return element


def disk(found: Disk) -> ET.Element:
    element = _fields(_entity("disk", "disks", found.id), name=found.name, alias=found.name,
                      description=found.description, actual_size=_allocated(found),
                      content_type="data", format=found.format,
                      initial_size=found.initial_size, provisioned_size=found.provisioned_size,
                      qcow_version="qcow2_v3" if found.format == "cow" else None,
                      shareable=False, sparse=True, status=found.status, storage_type="image",
                      total_size=_allocated(found), wipe_after_delete=False)
    domains = _element("storage_domains", element)
    _ref(domains, "storage_domain", "storagedomains", found.storage_domain)
    if found.template:
        _ref(element, "template", "templates", found.template)
    return element


def _allocated(found: Disk) -> int:
    try:
        return found.path.stat().st_blocks * 512
    except FileNotFoundError:
        return 0


def transfer(found: Transfer, urls: tuple[str, str]) -> ET.Element:
    transferring = found.ticket is not None and found.phase != "initializing"
    element = _fields(_entity("image_transfer", "imagetransfers", found.id),
                      active=found.ticket is not None, direction="upload", format=found.format,
                      inactivity_timeout=found.inactivity_timeout, phase=found.phase,
                      proxy_url=urls[1] if transferring else None, shallow=False,
                      timeout_policy="legacy",
                      transfer_url=urls[0] if transferring else None,
                      transferred=found.transferred)
    _ref(element, "disk", "disks", found.disk)
    return element


def vm(found: Vm) -> ET.Element:
    element = _fields(_entity("vm", "vms", found.id), name=found.name,
                      description=found.description, memory=2**30, stateless=False,
                      status=found.status, type="server")
    _fields(_element("os", element), type=found.os_type)
    _ref(element, "cluster", "clusters", found.cluster)
    _ref(element, "template", "templates", BLANK_TEMPLATE_ID)
    for rel in ("diskattachments", "nics"):
        _link(element, "vms", found.id, rel)
    return element


def template(found: Template) -> ET.Element:
    element = _fields(_entity("template", "templates", found.id), name=found.name,
                      description=found.description, memory=2**30, stateless=False,
                      status=found.status, type="server")
    _fields(_element("os", element), type=found.os_type)
    _fields(_element("version", element), version_number=1)
    if found.cluster:
        _ref(element, "cluster", "clusters", found.cluster)
    _link(element, "templates", found.id, "diskattachments")
    return element


def disk_attachment(found: Disk, owner: str, owner_id: str) -> ET.Element:
    """`found` attached to a VM (`owner` ``vm``) or a template; the attachment's id is the
    disk's, as in oVirt."""
    element = _fields(_element("disk_attachment", href=href(f"{owner}s", owner_id,
                                                            "diskattachments", found.id),
                               id=found.id),
                      active=True, bootable=found.bootable, interface=found.interface,
                      pass_discard=False, read_only=False, uses_scsi_reservation=False)
    _ref(element, "disk", "disks", found.id)
    _ref(element, owner, f"{owner}s", owner_id)
    return element


# -- reading what clients send ----------------------------------------------------------------
def parse(body: bytes, tag: str) -> ET.Element:
    """The request body, which must be one `tag` element."""
    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        raise ValueError(f"the request body is not XML: {exc}") from None
    if root.tag != tag:
        raise ValueError(f"expected a <{tag}>, got a <{root.tag}>")
    return root


def text(element: ET.Element, path: str) -> str | None:
    found = element.find(path)
    if found is None or found.text is None:
        return None
    return found.text.strip()


def number(element: ET.Element, path: str) -> int | None:
    value = text(element, path)
    return int(value) if value is not None else None


def flag(element: ET.Element, path: str) -> bool:
    return text(element, path) == "true"


def reference(element: ET.Element, path: str) -> dict[str, str | None] | None:
    """An ``<x id="…"/>`` or ``<x><name>…</name></x>`` reference, as id and name."""
    found = element.find(path)
    if found is None:
        return None
    return {"id": found.get("id"), "name": text(found, "name")}
