"""The plugin's parameters: declared here, checked and resolved by the core (request, then the
``plugins.vsphere`` section of imagefactory.conf, then the default); the hooks read the typed
values they are given."""

from __future__ import annotations

from imagefactory_core.plugin import Parameter
from imagefactory_ova.vmware import CONTROLLERS, FIRMWARES, NICS

PACKAGES = ("vmdk", "ova")

PARAMETERS = [
    Parameter("vsphere_disk_adapter", "string", "lsilogic", "the SCSI controller the disk is "
              "on: lsilogic (LSI Logic Parallel) or pvscsi (VMware Paravirtual)",
              choices=tuple(CONTROLLERS)),
    Parameter("vsphere_package", "string", "vmdk", "the target image: vmdk (the "
              "streamOptimized disk) or ova (OVF descriptor, manifest and the disk in one "
              "archive)", choices=PACKAGES),
    Parameter("vsphere_guest_id", "string", None, "the VM's guest id (debian12_64Guest …); "
              "unset: the one of the template's OS", pattern=r"[A-Za-z][A-Za-z0-9_]{2,63}"),
    Parameter("vsphere_hardware_version", "string", "vmx-13", "the virtual hardware version "
              "(vmx-13: vSphere 6.5 and later)", pattern=r"vmx-\d{1,3}"),
    Parameter("vsphere_firmware", "string", "bios", "the VM's firmware", choices=FIRMWARES),
    Parameter("vsphere_nic", "string", "vmxnet3", "the network adapter's type",
              choices=tuple(NICS)),
    Parameter("vsphere_cpu_count", "integer", 1, "virtual CPUs of the template", minimum=1,
              maximum=768),
    Parameter("vsphere_memory_mb", "integer", 2048, "memory of the template (MiB)", minimum=4,
              maximum=24 * 1024 * 1024),
    Parameter("vsphere_template_name", "string", None, "the template's name in vCenter; unset: "
              "the template's name and the provider image id",
              pattern=r"[^/\\%\x00-\x1f]{1,80}"),
    Parameter("endpoints", "list", None, "the vCenter SDK URLs (https://host/sdk) a "
              "request's provider may name as api-url; unset: none", pattern=r"https://\S+",
              operator_only=True),
    Parameter("tls_verify", "boolean", True, "verify the vCenter's TLS certificate (false "
              "only for a test vCenter: the password goes to whoever answers)",
              operator_only=True),
    Parameter("ca_file", "string", None, "CA bundle (PEM file) to verify vCenters with; "
              "unset: the system's", operator_only=True),
]
