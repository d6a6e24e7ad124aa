"""A session fixture running govmomi's vCenter simulator on 127.0.0.1 (written with the vsphere
plugin; see ``vsphere_support/simulator.py``).

``vsphere_simulator`` yields a `Simulator`: ``url`` (the SDK endpoint, https), ``username``,
``password``, ``ca_file`` (the simulator's self-signed certificate), ``datacenter``,
``datastore`` and ``network`` of its inventory.
"""

from collections.abc import Iterator

import pytest

from tests.services.vsphere_support.simulator import Simulator, running


@pytest.fixture(scope="session")
def vsphere_simulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Simulator]:
    with running(tmp_path_factory.mktemp("vcsim")) as simulator:
        yield simulator
