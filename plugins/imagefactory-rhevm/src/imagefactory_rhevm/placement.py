"""Where on the engine a template goes: a cluster, and a data storage domain of its data center.

A template belongs to a cluster, and its disk lives on a data storage domain attached (and
active) in that cluster's data center. The provider names either, both or neither:

* a cluster by name, or ``_any_`` (the original's word): with a storage domain named, the first
  cluster of that domain's data center; without, the first cluster whose data center has an
  active data domain;
* a storage domain by name, which must be a data domain active in the cluster's data center;
  without one, the data center's master data domain, else its active data domain with the
  most free space.

Names are matched exactly against the engine's lists, so a misspelt name fails with the names
that exist.
"""

from __future__ import annotations

from dataclasses import dataclass

import ovirtsdk4.services
from imagefactory_core.plugin import BuildError
from ovirtsdk4 import types

from .engine import engine_errors
from .settings import ANY_CLUSTER


@dataclass(frozen=True)
class Placement:
    cluster: types.Cluster
    data_center_id: str
    storage_domain: types.StorageDomain


def _names(items: list[types.Cluster] | list[types.StorageDomain]) -> str:
    return ", ".join(sorted(str(item.name) for item in items)) or "none"


def _active_data(system: ovirtsdk4.services.SystemService,
                 data_center_id: str) -> list[types.StorageDomain]:
    """The data domains active in a data center, as attached there (with status and master)."""
    attached = (system.data_centers_service().data_center_service(data_center_id)
                .storage_domains_service().list())
    return [sd for sd in attached if sd.type == types.StorageDomainType.DATA
            and sd.status == types.StorageDomainStatus.ACTIVE]


def _preferred(domains: list[types.StorageDomain]) -> types.StorageDomain | None:
    masters = [sd for sd in domains if sd.master]
    if masters:
        return masters[0]
    return max(domains, key=lambda sd: sd.available or 0, default=None)


def _data_center(cluster: types.Cluster) -> str:
    if cluster.data_center is None or not cluster.data_center.id:
        raise BuildError(f"cluster {cluster.name!r} belongs to no data center")
    return str(cluster.data_center.id)


def _named_domain(system: ovirtsdk4.services.SystemService, name: str,
                  clusters: list[types.Cluster], cluster: types.Cluster | None) -> Placement:
    domains = system.storage_domains_service().list()
    domain = next((sd for sd in domains if sd.name == name), None)
    data_domains = [sd for sd in domains if sd.type == types.StorageDomainType.DATA]
    if domain is None:
        raise BuildError(f"storage domain {name!r} does not exist on the engine; its data "
                         f"domains are: {_names(data_domains)}")
    if domain.type != types.StorageDomainType.DATA:
        kind = domain.type.value if domain.type else "unknown"
        raise BuildError(f"storage domain {name!r} is an {kind} domain: templates go to a data "
                         f"domain ({_names(data_domains)})")
    in_data_centers = {dc.id for dc in domain.data_centers or ()}
    if cluster is None:
        cluster = next((c for c in clusters if c.data_center is not None
                        and c.data_center.id in in_data_centers), None)
        if cluster is None:
            raise BuildError(f"no cluster is in the data center of storage domain {name!r}")
    data_center = _data_center(cluster)
    if data_center not in in_data_centers:
        raise BuildError(f"storage domain {name!r} is not attached to the data center of "
                         f"cluster {cluster.name!r}")
    active = next((sd for sd in _active_data(system, data_center) if sd.id == domain.id), None)
    if active is None:
        raise BuildError(f"storage domain {name!r} is not active in the data center of "
                         f"cluster {cluster.name!r}")
    return Placement(cluster, data_center, active)


def place(system: ovirtsdk4.services.SystemService, cluster_name: str,
          storage_domain: str | None) -> Placement:
    """The cluster and storage domain for a template (rules: module doc)."""
    with engine_errors("listing the engine's clusters and storage domains"):
        clusters = system.clusters_service().list()
        cluster = None
        if cluster_name != ANY_CLUSTER:
            cluster = next((c for c in clusters if c.name == cluster_name), None)
            if cluster is None:
                raise BuildError(f"cluster {cluster_name!r} does not exist on the engine; its "
                                 f"clusters are: {_names(clusters)}")
        if storage_domain is not None:
            return _named_domain(system, storage_domain, clusters, cluster)
        for candidate in [cluster] if cluster else clusters:
            if candidate.data_center is None:
                continue
            data_center = _data_center(candidate)
            chosen = _preferred(_active_data(system, data_center))
            if chosen is not None:
                return Placement(candidate, data_center, chosen)
        where = f"cluster {cluster_name!r}'s data center" if cluster else "any cluster's"
        raise BuildError(f"no active data storage domain in {where}")
