"""The plugin's parameters: declared here, checked and resolved by the core (request, then the
``plugins.openstack`` section of imagefactory.conf, then the default); the hooks read the typed
values they are given."""

from __future__ import annotations

from imagefactory_core.plugin import Parameter

from .convert import DEFAULT_FORMAT, FORMATS
from .metadata import FIRMWARES

DEFAULT_ACTIVE_TIMEOUT = 1800.0

PARAMETERS = [
    Parameter("openstack_image_format", "string", DEFAULT_FORMAT,
              "format of the target image", choices=tuple(FORMATS)),
    Parameter("openstack_image_name", "string", None,
              "the Glance image's name; unset: the template's name and the provider image id"),
    Parameter("openstack_firmware", "string", "bios", "hw_firmware_type of the Glance image",
              choices=FIRMWARES),
    Parameter("openstack_image_properties", "object", None,
              "extra Glance image properties (they win over the ones the plugin sets)"),
    Parameter("clouds_file", "string", None,
              "the operator's clouds.yaml, for providers that name a cloud",
              operator_only=True),
    Parameter("clouds", "list", None, "the clouds of clouds.yaml a request's provider may "
              "name; unset: none", operator_only=True),
    Parameter("endpoints", "list", None, "the Keystone and Glance endpoints (URLs) a "
              "request's provider or credentials may name; unset: none",
              pattern=r"https?://\S+", operator_only=True),
    Parameter("tls_verify", "boolean", True, "verify the TLS certificates of the endpoints "
              "a request names (a named cloud's clouds.yaml decides for itself)",
              operator_only=True),
    Parameter("ca_bundle", "string", None, "CA bundle to verify those endpoints with; unset: "
              "the system's", operator_only=True),
    Parameter("active_timeout", "number", DEFAULT_ACTIVE_TIMEOUT,
              "seconds to wait for an uploaded image to become active", minimum=1,
              maximum=86400, operator_only=True),
]
