"""Repository-wide pytest set-up: fixtures that start real services on 127.0.0.1, and the
grouping of tests for parallel runs."""

from typing import Any

import pytest

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

# On pytest-xdist workers (README: one per core), each group below runs on one
# worker, so a session fixture its tests share is made once: tests sharing an expensive one are
# grouped across directories; every other test goes with its directory. Groups are handed out
# in this order, the longest first, then the others as collected. (A scheduler of our own:
# xdist's `--dist loadgroup` marks no longer reach pytest 9.2's node ids.)
SHARED_GROUPS = (
    # the session's real Debian image, its target images and their boots; Keystone + Glance
    ("tests/e2e/", "e2e"),
    ("plugins/imagefactory-openstack/", "e2e"),
    # PostgreSQL, Redis and the cluster's real build
    ("tests/cluster/", "postgresql"),
    ("tests/postgresql/", "postgresql"),
    # the Debian plugin's own session image
    ("plugins/imagefactory-debian/", "debian-plugin"),
)


def _group(nodeid: str) -> tuple[int, str]:
    for rank, (prefix, group) in enumerate(SHARED_GROUPS):
        if nodeid.startswith(prefix):
            return rank, group
    return len(SHARED_GROUPS), nodeid.split("::")[0].rsplit("/", 1)[0]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if hasattr(config, "workerinput"):  # an xdist worker: its collection orders the groups
        items.sort(key=lambda item: _group(item.nodeid)[0])  # stable: collection order within


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    from xdist.scheduler import LoadScopeScheduling

    class SharedFixtureGroups(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return _group(nodeid)[1]

    return SharedFixtureGroups(config, log)
