"""The ova target's parameters: declared here, checked and resolved by the core (request, then
the ``plugins.ova`` section of imagefactory.conf, then the default)."""

from __future__ import annotations

from imagefactory_core.plugin import Parameter

LAYOUTS = ("vsphere", "rhevm")

PARAMETERS = [
    Parameter("ova_format", "string", None, "the OVA's layout: vsphere (OVF 1.0 + "
              "streamOptimized VMDK) or rhevm (oVirt's, qcow2); unset: the source target "
              "image's target", choices=LAYOUTS),
    Parameter("ovf_name", "string", None, "the appliance's name (and its files' in the "
              "archive); unset: the template's name", pattern=r"[A-Za-z0-9][A-Za-z0-9._-]{0,79}"),
    Parameter("ovf_cpu_count", "integer", None, "virtual CPUs the appliance asks for; unset: "
              "what the source target image records, else 1", minimum=1, maximum=768),
    Parameter("ovf_memory_mb", "integer", None, "memory (MiB) the appliance asks for; unset: "
              "what the source target image records, else 2048", minimum=4,
              maximum=24 * 1024 * 1024),
]
