"""The plugin's parameters: declared here, checked and resolved by the core (request, then the
``plugins.rhevm`` section of imagefactory.conf, then the default); the hooks read the typed
values they are given.

`rhevm_cluster` and `rhevm_storage_domain` are the provider's ``cluster`` and
``storage-domain`` fields as parameters, so an operator can set them once for every request; a
provider that names them wins (`provider.py`).
"""

from __future__ import annotations

from imagefactory_core.plugin import Parameter

from .convert import DEFAULT_FORMAT, FORMATS

ANY_CLUSTER = "_any_"
DISK_INTERFACES = ("virtio_scsi", "virtio", "sata", "ide")
DEFAULT_TIMEOUT = 1800.0
# oVirt's own rule for VM and template names.
NAME_PATTERN = r"[A-Za-z0-9_.-]{1,255}"

PARAMETERS = [
    Parameter("rhevm_image_format", "string", DEFAULT_FORMAT,
              "format of the target image (and of the disk on the storage domain)",
              choices=tuple(FORMATS)),
    Parameter("rhevm_template_name", "string", None,
              "the template's name; unset: the template's name and the provider image id",
              pattern=NAME_PATTERN),
    Parameter("rhevm_cluster", "string", ANY_CLUSTER,
              "cluster of the template (a provider's cluster wins); `_any_`: the first whose "
              "data center has the storage domain, or an active data domain",
              pattern=NAME_PATTERN),
    Parameter("rhevm_storage_domain", "string", None,
              "data storage domain of the disk (a provider's storage-domain wins); unset: the "
              "master data domain of the cluster's data center", pattern=NAME_PATTERN),
    Parameter("rhevm_os_type", "string", "other_linux",
              "the template's operating system type, as oVirt names it (rhel_9x64 …)",
              pattern=r"[a-z0-9_]{1,64}"),
    Parameter("rhevm_disk_interface", "string", DISK_INTERFACES[0],
              "how the template's VMs see the disk", choices=DISK_INTERFACES),
    Parameter("endpoints", "list", None, "the engine API URLs (api-url) a request's provider "
              "may name; unset: none", pattern=r"https?://\S+", operator_only=True),
    Parameter("ca_file", "string", None, "CA bundle to verify the engine and imageio with when "
              "the provider pins none; unset: the system's", operator_only=True),
    Parameter("allow_insecure", "boolean", False, "let a provider turn TLS verification off "
              "(insecure: true)", operator_only=True),
    Parameter("timeout", "number", DEFAULT_TIMEOUT, "the longest wait, in seconds, for one "
              "step on the engine (a provider's timeout may only shorten it)", minimum=10,
              maximum=86400, operator_only=True),
]
