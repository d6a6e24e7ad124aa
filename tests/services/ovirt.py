"""Session fixtures for oVirt: a fake engine (the engine REST API at the protocol level, over
TLS with a CA of its own) in front of a real ovirt-imageio daemon, on 127.0.0.1 (written with
the rhevm plugin; see ``ovirt_support/engine.py``).

* ``ovirt_engine`` yields an `Engine`: ``api_url``, ``username`` and ``password`` (the admin's),
  ``ca_file`` (the CA the engine's certificate chains to), ``inventory`` (the engine's state:
  data centers Default and Remote, their clusters of the same names, data domains ``data``
  (master) and ``bigdata`` in Default, ``remote-data`` and ``parked`` (in maintenance) in
  Remote, an ``iso`` and an ``export`` domain, an unattached ``loose`` one; disks are files
  under the storage domains' ``path``), ``imageio`` (the daemon: ``remote_url``,
  ``control_url``, tickets) and ``server.requests`` (what the engine was asked).
"""

from collections.abc import Iterator

import pytest

from tests.services.ovirt_support.engine import Engine, running_engine


@pytest.fixture(scope="session")
def ovirt_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    with running_engine(tmp_path_factory.mktemp("ovirt")) as engine:
        yield engine
