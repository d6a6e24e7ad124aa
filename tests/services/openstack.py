"""Session fixtures running real Keystone + Glance on 127.0.0.1 (written with the openstack plugin).

The services are installed once into a cached venv outside the project (see
``openstack_support/install.sh``, which CI may call beforehand) and started per test session.

* ``openstack_cloud`` yields a dict: ``auth_url``, ``username``, ``password``, ``project_name``,
  ``user_domain_name``, ``project_domain_name``, ``region_name`` (the admin's; these are exactly
  the keyword arguments of ``openstack.connect``), ``glance_url``, ``glance_host``,
  ``glance_port`` of a Keystone-protected Glance, and ``timings`` (``install`` and ``start``
  seconds).
* ``glance_noauth`` yields ``glance_url``, ``glance_host``, ``glance_port`` of a second Glance that
  accepts requests without a token (the direct-endpoint provider form).
"""

from collections.abc import Iterator
from typing import Any

import pytest

from tests.services.openstack_support import cloud


@pytest.fixture(scope="session")
def openstack_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    with cloud.keystone_and_glance(tmp_path_factory.mktemp("openstack")) as services:
        yield services


@pytest.fixture(scope="session")
def glance_noauth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    with cloud.glance_without_auth(tmp_path_factory.mktemp("glance-noauth")) as service:
        yield service
