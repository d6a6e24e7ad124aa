"""Repository-wide pytest set-up: fixtures that start real services on 127.0.0.1."""

pytest_plugins = [
    "tests.services.cache",
    "tests.services.fedora_tree",
    "tests.services.moto",
    "tests.services.openstack",
    "tests.services.ovirt",
    "tests.services.postgresql",
    "tests.services.redis",
    "tests.services.vsphere",
]
