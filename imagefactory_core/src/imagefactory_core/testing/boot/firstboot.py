"""Boot an image for the first time the way its cloud does, and read what it did.

`boot_first_time` boots a copy-on-write overlay of the disk (enlarged first when asked, as a
volume bigger than the image is), attached to a `CloudEnvironment`, with the probe
(`probe.user_data`) as the instance's user-data, and waits for the probe's facts and boot
report; with ``reboot=True`` the guest then reboots cleanly (``systemctl reboot``), QEMU ends
with its reset, and the harness boots the same machine again (same disk, UEFI variables,
identity and metadata: see `Machine` for why not inside the same QEMU run) and waits for the
second boot.

It gives up as soon as the console shows the boot cannot succeed, not at a timeout:

* the kernel panicked;
* cloud-init finished its final stage ("Cloud-init v. … finished at …") and the probe's facts
  are not there (no data source, or the user-data did not run);
* a login prompt came and cloud-init never printed anything (it is missing, or ds-identify
  found no data source and disabled it);
* cloud-init retries a metadata URL that does not answer: a data source probe running into its
  timeout (up to two minutes), which no instance on its own cloud should wait for;
* after the reboot: the same panic or metadata wait, the probe ran again (cloud-init took the
  machine for a new instance), or cloud-init finished without its per-boot scripts.
"""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from . import probe
from .console import Console
from .environments import CloudEnvironment
from .instance import Instance
from .qemu import DISK_FORMATS, Machine, Network, Qemu

GiB = 1 << 30
CLOUD_INIT_RAN = "Cloud-init v. "
CLOUD_INIT_FINISHED = re.compile(r"Cloud-init v\. \S+ finished at [^\n]*")
KERNEL_PANIC = "Kernel panic - not syncing"
RESTARTING = "reboot: Restarting system"
LOGIN = re.compile(r"^\S+ login: ", re.MULTILINE)
# cloud-init's url_helper retrying a metadata URL that does not answer (up to its max_wait).
METADATA_RETRY = re.compile(r"url_helper\.py\[WARNING\]: Calling '[^']*' failed \[\d+/\d+s\][^\n]*")


@dataclass(frozen=True)
class SecondBoot:
    """The boot after the reboot: what cloud-init's per-boot script saw."""

    instance_id: str
    instances: int
    seconds: float  # from power-on to the login prompt
    console: str
    console_log: Path | None


@dataclass(frozen=True)
class FirstBoot:
    """What one boot showed. `seconds` are since power-on: ``user-data`` (the probe began),
    ``login`` (first login prompt), ``cloud-init`` (its final stage finished), ``complete``
    (systemd reached its default target)."""

    environment: str
    firmware: str
    network: Network
    instance: Instance
    instance_id: str  # the id the environment gave the instance
    facts: probe.GuestFacts
    report: str
    seconds: dict[str, float]
    second_boot: SecondBoot | None
    console: str
    console_log: Path

    def login_prompt(self) -> str:
        """The first login prompt line (``<hostname> login:``)."""
        match = LOGIN.search(self.console)
        return match[0].strip() if match else ""


def disk_size(disk: Path, disk_format: str) -> int:
    """The disk's virtual size in bytes (what the guest sees)."""
    info = subprocess.run(["qemu-img", "info", "--output=json", "-f", DISK_FORMATS[disk_format],
                           str(disk)], check=True, capture_output=True, text=True).stdout
    return int(json.loads(info)["virtual-size"])


def make_overlay(disk: Path, disk_format: str, overlay: Path, size: int | None = None) -> Path:
    """A qcow2 overlay of `disk` (never written to) of `size` bytes (the disk's by default)."""
    if disk_format not in DISK_FORMATS:
        raise ValueError(f"disk format must be one of {', '.join(DISK_FORMATS)}, "
                         f"not {disk_format!r}")
    if size is not None and size < disk_size(disk, disk_format):
        raise ValueError(f"cannot shrink {disk} to {size} bytes")
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", DISK_FORMATS[disk_format],
                    "-b", str(disk.resolve()), str(overlay),
                    *([str(size)] if size is not None else [])],
                   check=True, capture_output=True, text=True)
    return overlay


def boot_first_time(disk: Path, environment: CloudEnvironment, workdir: Path, *,
                    instance: Instance | None = None, disk_format: str = "raw",
                    firmware: str = "bios", grow_to: int | None = None, reboot: bool = True,
                    timeout: float = 900, memory_mib: int = 1024, cpus: int = 1,
                    accel: str | None = None) -> FirstBoot:
    """Boot `disk` (never modified) in `environment` as a new instance; raise `BootError` with
    the console's tail when it does not show everything the probe reports.

    `instance` names the instance (a random host name and key by default); its user-data is
    the probe. `grow_to` enlarges the disk before boot (bytes). `timeout` bounds the whole
    call. Work files (the overlay, the config drive, the UEFI variables, ``console.log`` and
    ``console-after-reboot.log``) go to `workdir`."""
    deadline = time.monotonic() + timeout
    workdir.mkdir(parents=True, exist_ok=True)
    instance = dataclasses.replace(instance or Instance(), user_data=probe.user_data(reboot))
    overlay = make_overlay(disk, disk_format, workdir / "disk.qcow2", grow_to)
    log_file = workdir / "console.log"
    uefi_vars = workdir / "OVMF_VARS.fd"
    with environment.attach(instance, workdir) as hardware:
        machine = Machine(disk=overlay, disk_format="qcow2", firmware=firmware,
                          disk_interface=hardware.disk_interface, memory_mib=memory_mib,
                          cpus=cpus, accel=accel, network=hardware.network,
                          smbios=hardware.smbios, cdroms=hardware.cdroms, snapshot=False)
        with Qemu(machine, log_file, uefi_vars) as vm:
            text = vm.console.wait(_first_boot_pending, timeout, _first_boot_failures())
            facts = probe.GuestFacts.parse(text)
            assert facts is not None
            seconds = _first_boot_seconds(vm.console, text)
            if reboot:
                vm.console.wait(_rebooted(vm.console), deadline - time.monotonic(),
                                _broken())
            console = vm.console.text
        second = None
        if reboot:
            with Qemu(machine, workdir / "console-after-reboot.log", uefi_vars) as vm:
                second = _second_boot(vm.console, deadline - time.monotonic())
    return FirstBoot(environment=environment.name, firmware=firmware, network=hardware.network,
                     instance=instance, instance_id=environment.instance_id(instance),
                     facts=facts, report=probe.report(console), seconds=seconds,
                     second_boot=second, console=console, console_log=log_file)


def _first_boot_pending(text: str) -> str | None:
    if probe.FACTS_END not in text:
        return "the probe's facts (user-data)"
    if probe.REPORT_END not in text:
        return "the probe's boot report (systemd reaching its default target)"
    return None


Check = Callable[[str], str | None]


def _broken() -> list[Check]:
    """What fails any boot."""
    def panic(text: str) -> str | None:
        return "the kernel panicked" if KERNEL_PANIC in text else None

    def metadata_retry(text: str) -> str | None:
        retry = METADATA_RETRY.search(text)
        if retry:
            return (f"cloud-init is waiting for a metadata service that does not answer "
                    f"({retry[0].strip()})")
        return None

    return [panic, metadata_retry]


def _first_boot_failures() -> list[Check]:
    def finished_without_facts(text: str) -> str | None:
        finished = CLOUD_INIT_FINISHED.search(text)
        if finished and probe.FACTS_END not in text:
            return (f"cloud-init finished without running the user-data: no data source, or "
                    f"the user-data failed ({finished[0].strip()})")
        return None

    def login_without_cloud_init(text: str) -> str | None:
        if LOGIN.search(text) and CLOUD_INIT_RAN not in text:
            return ("a login prompt came but cloud-init never ran: it is missing, or "
                    "ds-identify found no data source and disabled it")
        return None

    return [*_broken(), finished_without_facts, login_without_cloud_init]


def _first_boot_seconds(console: Console, text: str) -> dict[str, float]:
    seconds = {"user-data": console.seen_at(probe.FACTS_BEGIN),
               "complete": console.seen_at(probe.REPORT_END)}
    login = LOGIN.search(text)
    if login:
        seconds["login"] = console.time_at(login.end())
    finished = CLOUD_INIT_FINISHED.search(text)
    if finished:
        seconds["cloud-init"] = console.time_at(finished.end())
    return {key: value for key, value in seconds.items() if value is not None}


def _rebooted(console: Console) -> Callable[[str], str | None]:
    """Pending until the guest rebooted (the kernel said so) and QEMU ended."""
    def pending(text: str) -> str | None:
        if RESTARTING in text.split(probe.REPORT_END, 1)[-1] and console.closed:
            return None
        return "the guest's reboot (the kernel's 'Restarting system', then QEMU's exit)"
    return pending


def _second_boot(console: Console, timeout: float) -> SecondBoot:
    def pending(text: str) -> str | None:
        if probe.per_boot(text) is None:
            return "cloud-init's per-boot script after the reboot"
        if not LOGIN.search(text):
            return "a login prompt after the reboot"
        return None

    def probe_ran_again(text: str) -> str | None:
        if probe.FACTS_BEGIN in text:
            return ("cloud-init ran the user-data again after the reboot: it took the machine "
                    "for a new instance")
        return None

    def finished_without_per_boot(text: str) -> str | None:
        if CLOUD_INIT_FINISHED.search(text) and probe.PER_BOOT not in text:
            return "cloud-init finished the second boot without running its per-boot scripts"
        return None

    text = console.wait(pending, timeout,
                        [*_broken(), probe_ran_again,
                         finished_without_per_boot])
    seen = probe.per_boot(text)
    login = LOGIN.search(text)
    assert seen is not None and login is not None
    return SecondBoot(instance_id=seen[0], instances=seen[1],
                      seconds=console.time_at(login.end()), console=text,
                      console_log=console.log_file)
