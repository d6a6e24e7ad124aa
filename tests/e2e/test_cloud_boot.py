"""Target images boot the way their cloud boots them: the session's ec2 and openstack-kvm
target images, each booted once per firmware under QEMU with its cloud simulated (the EC2
instance metadata service with IMDSv2 and EC2's DMI identity; OpenStack's config drive or
metadata service and Nova's identity), on a disk enlarged before boot; one case per cloud is
rebooted once.

The boots run in the background, two at a time with one vCPU each (the CI machine has two
cores; measured under TCG: one guest with 2 vCPUs reaches its user-data only 8 % sooner than
with one, so two one-vCPU guests side by side finish the set sooner); each test waits for the
boot it looks at. ``IMAGEFACTORY_TEST_PARALLEL_BOOTS`` (2) and ``IMAGEFACTORY_TEST_BOOT_TIMEOUT``
(900 s per boot, reboot included) change that. Console logs are kept under pytest's temporary
directory (``boots/<case>/console.log`` and ``console-after-reboot.log``, each line with its
arrival time).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from imagefactory_core.testing import (
    BareMachine,
    BootError,
    CloudEnvironment,
    Ec2,
    FirstBoot,
    GiB,
    Instance,
    OpenStackConfigDrive,
    OpenStackMetadataService,
    boot_first_time,
    disk_size,
)
from imagefactory_core.testing.boot.firstboot import CLOUD_INIT_FINISHED

pytestmark = pytest.mark.slow

BOOT_TIMEOUT = float(os.environ.get("IMAGEFACTORY_TEST_BOOT_TIMEOUT", "900"))
PARALLEL_BOOTS = int(os.environ.get("IMAGEFACTORY_TEST_PARALLEL_BOOTS", "2"))
DEFAULT_USER = "debian"  # Debian's cloud-init default user


@dataclass(frozen=True)
class Case:
    target: str
    firmware: str
    environment: Callable[[], CloudEnvironment]
    reboot: bool  # one case per cloud reboots: a reboot under TCG costs half a first boot


CASES = {
    "ec2-bios": Case("ec2", "bios", Ec2, reboot=True),
    "ec2-uefi": Case("ec2", "uefi", Ec2, reboot=False),
    "openstack-bios-configdrive": Case("openstack-kvm", "bios", OpenStackConfigDrive,
                                       reboot=False),
    "openstack-uefi-metadata": Case("openstack-kvm", "uefi", OpenStackMetadataService,
                                    reboot=True),
}
EXPECTED_SOURCE = {  # cloud-init's cloud id and data source ("subplatform") per environment
    Ec2: ("aws", "metadata (http://169.254.169.254)"),
    OpenStackConfigDrive: ("configdrive", "config-disk (/dev/sr0)"),
    OpenStackMetadataService: ("openstack", "metadata (http://169.254.169.254)"),
}


@dataclass
class Boot:
    case: Case
    environment: CloudEnvironment
    original_size: int
    grown_size: int
    seconds: float = 0.0  # wall time of the whole call
    result: FirstBoot | None = None


def boot(case: Case, disk: Path, disk_format: str, workdir: Path, name: str) -> Boot:
    original = disk_size(disk, disk_format)
    record = Boot(case, case.environment(), original, original + GiB)
    began = time.monotonic()
    try:
        record.result = boot_first_time(
            disk, record.environment, workdir, instance=Instance(hostname=f"if-{name}"),
            disk_format=disk_format, firmware=case.firmware, grow_to=record.grown_size,
            reboot=case.reboot, timeout=BOOT_TIMEOUT)
    finally:
        record.seconds = time.monotonic() - began
    return record


def broken_boot(disk: Path, workdir: Path) -> tuple[BootError | None, float]:
    """The ec2 image where its cloud is not: no metadata anywhere, no EC2 DMI identity."""
    began = time.monotonic()
    try:
        boot_first_time(disk, BareMachine(), workdir, reboot=False, timeout=BOOT_TIMEOUT)
    except BootError as error:
        return error, time.monotonic() - began
    return None, time.monotonic() - began


@pytest.fixture(scope="module")
def boots(e2e_app: Any, ec2_target: dict[str, Any], openstack_target: dict[str, Any],
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Future[Any]]]:
    store = e2e_app.services.store
    disks = {"ec2": (store.body_path(ec2_target["id"]), "raw"),
             "openstack-kvm": (store.body_path(openstack_target["id"]), "qcow2")}
    root = tmp_path_factory.mktemp("boots")
    with ThreadPoolExecutor(PARALLEL_BOOTS, thread_name_prefix="boot") as pool:
        futures: dict[str, Future[Any]] = {
            name: pool.submit(boot, case, *disks[case.target], root / name, name)
            for name, case in CASES.items()}
        futures["broken"] = pool.submit(broken_boot, disks["ec2"][0], root / "broken")
        yield futures


@pytest.fixture(params=list(CASES))
def booted(request: pytest.FixtureRequest, boots: dict[str, Future[Any]]) -> Boot:
    record: Boot = boots[request.param].result()
    assert record.result is not None
    return record


def test_the_instance_takes_its_name_and_id_from_the_metadata(booted: Boot):
    result = booted.result
    assert result is not None
    assert result.facts.hostname == result.instance.hostname
    assert result.login_prompt() == f"{result.instance.hostname} login:"
    assert result.facts.instance_id == result.instance_id
    cloud_id, source = EXPECTED_SOURCE[type(booted.environment)]
    assert result.facts.cloud_id == cloud_id
    assert result.facts.datasource == source


def test_the_metadata_key_is_the_default_users_key(booted: Boot):
    result = booted.result
    assert result is not None
    assert result.facts.authorized_keys(DEFAULT_USER) == (result.instance.ssh_public_key,)


def test_sshd_runs_with_host_keys_made_by_this_instance(booted: Boot):
    """The image carries no host keys: every instance's are made on its first boot."""
    result = booted.result
    assert result is not None
    assert result.facts.get("sshd") == "active"
    keys = [line.split() for line in result.facts.values.get("ssh-host-key", ())]
    assert {kind for _, kind in keys} >= {"ssh-ed25519", "ssh-rsa"}
    booted_at = int(result.facts.get("boot-time"))
    assert all(int(made) >= booted_at - 5 for made, _ in keys), (keys, booted_at)


def test_the_root_file_system_grew_to_the_enlarged_disk(booted: Boot):
    facts = booted.result.facts if booted.result else None
    assert facts is not None
    assert facts.disk_size == booted.grown_size
    assert facts.root_fstype == "ext4"
    assert facts.root_size > booted.original_size  # more than the whole disk it was built on
    assert facts.root_size > 0.9 * (booted.grown_size - 256 * 2**20)  # all but the ESP


def test_eth0_has_the_clouds_dhcp_address_on_the_instances_nic(booted: Boot):
    result = booted.result
    assert result is not None
    network = result.network
    (eth0,) = [a for a in result.facts.addresses if a.interface == "eth0"]
    assert eth0.ip == network.guest_address
    assert eth0.dynamic  # leased
    assert any(link.startswith("2: eth0:") and f"link/ether {network.mac} " in link
               for link in result.facts.values["link"])


def test_the_serial_console_shows_the_kernel_and_a_login_prompt(booted: Boot):
    result = booted.result
    assert result is not None
    assert "Linux version" in result.console
    assert "console=ttyS0" in result.facts.get("cmdline")
    assert result.facts.get("getty") == "active"  # serial-getty@ttyS0
    assert f"\n{result.instance.hostname} login: " in result.console  # QEMU's -serial is ttyS0


def test_the_firmware_is_the_one_the_cloud_uses(booted: Boot):
    result = booted.result
    assert result is not None
    assert ("BdsDxe:" in result.console) is (booted.case.firmware == "uefi")  # OVMF's boot


@pytest.mark.parametrize("name", [name for name, case in CASES.items() if case.reboot])
def test_a_reboot_comes_back_as_the_same_instance(boots, name: str):
    result = boots[name].result().result
    assert result is not None and result.second_boot is not None
    assert result.second_boot.instance_id == result.instance_id
    assert result.second_boot.instances == 1
    assert result.console.count("IMAGEFACTORY-FACTS-BEGIN") == 1  # user-data ran once


@pytest.mark.parametrize("name", [name for name, case in CASES.items() if case.target == "ec2"])
def test_ec2_instances_read_the_metadata_with_imdsv2_tokens(boots, name: str):
    booted: Boot = boots[name].result()
    assert isinstance(booted.environment, Ec2)
    service = booted.environment.service
    assert service is not None
    first, *reads = service.requests
    assert (first.method, first.path, first.status) == ("PUT", "/latest/api/token", 200)
    assert reads and all(r.status in (200, 404) for r in reads)
    assert all("x-aws-ec2-metadata-token" in r.headers for r in reads if r.method == "GET")
    assert any(r.path.endswith("/meta-data/public-keys/0/openssh-key") for r in reads)


def test_an_image_away_from_its_cloud_fails_fast_with_the_console(boots):
    error, seconds = boots["broken"].result()
    assert error is not None, "the ec2 image booted without EC2"
    message = str(error)
    assert "last console output" in message
    assert "still waiting for" not in message  # not a timeout
    assert not CLOUD_INIT_FINISHED.search(error.console)  # cloud-init's probe not waited out
    assert seconds < BOOT_TIMEOUT / 2
