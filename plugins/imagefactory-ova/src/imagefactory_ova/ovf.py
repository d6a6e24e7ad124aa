"""Writing OVF 1.x descriptors (namespace ``http://schemas.dmtf.org/ovf/envelope/1``), and
checking them against the envelope schema shipped in ``schemas/``.

The two layouts (`vmware`, `ovirt`) build their descriptors with `Writer`, which keeps the
namespaces and the CIM rules in one place: RASD and VSSD properties are written in the
alphabetical order the CIM schemas require, whatever order the caller gives them in.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path

from lxml import etree

OVF = "http://schemas.dmtf.org/ovf/envelope/1"
RASD = "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData"
VSSD = "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData"
CIM = "http://schemas.dmtf.org/wbem/wscim/1/common"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
VMW = "http://www.vmware.com/schema/ovf"
OVIRT = "http://www.ovirt.org/ovf"
PREFIXES = {"ovf": OVF, "rasd": RASD, "vssd": VSSD, "cim": CIM, "xsi": XSI, "vmw": VMW,
            "ovirt": OVIRT}
SCHEMA = Path(__file__).parent / "schemas" / "dsp8023-subset.xsd"

# CIM resource types (CIM_ResourceAllocationSettingData.ResourceType) an appliance uses.
PROCESSOR, MEMORY, IDE_CONTROLLER, SCSI_CONTROLLER, ETHERNET, DISK = 3, 4, 5, 6, 10, 17

Element = etree._Element


def q(namespace: str, name: str) -> str:
    """A qualified name (Clark notation)."""
    return f"{{{namespace}}}{name}"


class Writer:
    """Build one descriptor: ``Writer().envelope`` is the root; the helpers add the parts."""

    def __init__(self, *prefixes: str) -> None:
        """`prefixes` are the extension namespaces (``vmw``) the descriptor uses. OVF's is
        the default namespace, as in VMware's and oVirt's descriptors, and also bound to
        ``ovf`` for the attributes (an attribute without a prefix has no namespace)."""
        names = {"ovf", "rasd", "vssd", *prefixes}
        nsmap = {None: OVF, **{p: PREFIXES[p] for p in sorted(names)}}
        self.envelope = etree.Element(q(OVF, "Envelope"), nsmap=nsmap)  # type: ignore[dict-item]

    @staticmethod
    def element(parent: Element, namespace: str, tag: str, text: str | None = None,
                **attributes: str) -> Element:
        """A child of `parent`; ``attributes`` are OVF-qualified (``ovf:name``) unless their
        key already is a qualified name."""
        child = etree.SubElement(parent, q(namespace, tag),
                              {k if k.startswith("{") else q(OVF, k): v
                               for k, v in attributes.items()})
        if text is not None:
            child.text = text
        return child

    def section(self, parent: Element, tag: str, info: str,
                **attributes: str) -> Element:
        section = self.element(parent, OVF, tag, **attributes)
        self.element(section, OVF, "Info", info)
        return section

    def item(self, hardware: Element, properties: Mapping[str, str | list[str]],
             **attributes: str) -> Element:
        """A RASD ``Item``: `properties` by CIM property name (a list repeats it)."""
        return self._cim(hardware, "Item", RASD, properties, attributes)

    def system(self, hardware: Element, properties: Mapping[str, str]) -> Element:
        """The VSSD ``System`` of a VirtualHardwareSection."""
        return self._cim(hardware, "System", VSSD, properties, {})

    def _cim(self, parent: Element, tag: str, namespace: str,
             properties: Mapping[str, str | list[str]], attributes: dict[str, str]) -> Element:
        element = self.element(parent, OVF, tag, **attributes)
        for key in sorted(properties):  # the CIM schemas want their properties in this order
            values = properties[key]
            for value in values if isinstance(values, list) else [values]:
                self.element(element, namespace, key, value)
        return element

    def to_bytes(self) -> bytes:
        etree.indent(self.envelope)
        return etree.tostring(self.envelope, encoding="UTF-8", xml_declaration=True) + b"\n"


@functools.cache
def _schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(SCHEMA)))


def schema_errors(descriptor: bytes) -> list[str]:
    """Where `descriptor` breaks the OVF envelope schema (``schemas/``); empty when valid."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    document = etree.fromstring(descriptor, parser)
    schema = _schema()
    if schema.validate(document):
        return []
    return [f"line {e.line}: {e.message}" for e in schema.error_log]  # type: ignore[attr-defined]
