"""Where in the vCenter's inventory an import goes: the provider's datacenter, datastore,
network, compute resource, resource pool and VM folder, found by name.

Names are read in one property-collector call per kind, not one call per object. An unknown
name fails with the names that do exist, so the user can correct the provider.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from imagefactory_core.plugin import BuildError
from pyVmomi import vim, vmodl

from .session import Session, api_errors


@dataclass(frozen=True)
class Placement:
    datacenter: Any
    datastore: Any
    network: Any
    resource_pool: Any
    folder: Any


def named(session: Session, root: Any, kind: type) -> dict[str, Any]:
    """Every object of `kind` under `root` (recursively), by name."""
    collector = vmodl.query.PropertyCollector
    content = session.content
    view = content.viewManager.CreateContainerView(root, [kind], True)
    try:
        spec = collector.FilterSpec(
            objectSet=[collector.ObjectSpec(obj=view, skip=True, selectSet=[
                collector.TraversalSpec(name="view", path="view", skip=False,
                                        type=vim.view.ContainerView)])],
            propSet=[collector.PropertySpec(type=kind, pathSet=["name"])])
        found = content.propertyCollector.RetrieveContents([spec])
    finally:
        view.Destroy()
    return {item.propSet[0].val: item.obj for item in found}


def _one(objects: dict[str, Any], name: str, what: str, where: str) -> Any:
    if name in objects:
        return objects[name]
    known = ", ".join(sorted(objects)) or "none"
    raise BuildError(f"{where} has no {what} named {name!r}; it has: {known}")


def locate(session: Session) -> Placement:
    """The placement the session's account (its provider) names."""
    account = session.account
    with api_errors(f"finding the provider's datacenter, datastore and network in "
                    f"{account.api_url}", account):
        datacenters = named(session, session.content.rootFolder, vim.Datacenter)
        if account.datacenter:
            datacenters = {account.datacenter: _one(datacenters, account.datacenter,
                                                    "datacenter", account.api_url)}
        holding = {name: dc for name, dc in datacenters.items()
                   if account.datastore in named(session, dc.datastoreFolder, vim.Datastore)}
        if not holding:
            stores = sorted({store for dc in datacenters.values()
                             for store in named(session, dc.datastoreFolder, vim.Datastore)})
            raise BuildError(f"vSphere {account.api_url} has no datastore named "
                             f"{account.datastore!r}; it has: {', '.join(stores) or 'none'}")
        if len(holding) > 1:
            raise BuildError(f"datacenters {', '.join(sorted(holding))} each have a datastore "
                             f"named {account.datastore!r}: name the datacenter in the provider")
        dc_name, datacenter = next(iter(holding.items()))
        where = f"datacenter {dc_name}"
        datastore = named(session, datacenter.datastoreFolder, vim.Datastore)[account.datastore]
        network = _one(named(session, datacenter.networkFolder, vim.Network), account.network,
                       "network", where)
        computes = named(session, datacenter.hostFolder, vim.ComputeResource)
        if not computes:
            raise BuildError(f"{where} has no cluster or host to import into")
        compute = (_one(computes, account.compute_resource, "cluster or host", where)
                   if account.compute_resource else computes[sorted(computes)[0]])
        pool = compute.resourcePool
        if account.resource_pool:
            pool = _one(named(session, pool, vim.ResourcePool), account.resource_pool,
                        "resource pool", f"{where}'s {compute.name}")
        folder = datacenter.vmFolder
        if account.folder:
            folder = _one(named(session, folder, vim.Folder), account.folder, "VM folder",
                          where)
        return Placement(datacenter, datastore, network, pool, folder)
