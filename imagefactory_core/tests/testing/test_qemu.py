"""The machine QEMU is asked for: its command line for each firmware, disk format, disk bus and
environment, and that QEMU itself accepts each of those command lines."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from imagefactory_core.testing import (
    ACCEL_VARIABLE,
    BootError,
    Forward,
    Machine,
    Network,
    Qemu,
    boot_and_wait,
    smbios,
    usable_accel,
)
from imagefactory_core.testing.boot import qemu

from tests.procfs import running


def values(argv: list[str], option: str) -> list[str]:
    return [argv[i + 1] for i, arg in enumerate(argv) if arg == option]


def test_acceleration_is_tcg_where_kvm_cannot_run_stock_kernels(monkeypatch):
    monkeypatch.delenv(ACCEL_VARIABLE, raising=False)
    if Path("/sys/module/kvm_pvm").exists() or not Path("/dev/kvm").exists():
        assert usable_accel() == "tcg"
    monkeypatch.setenv(ACCEL_VARIABLE, "KVM")
    assert usable_accel() == "kvm"


def test_bios_boots_a_snapshot_of_a_raw_disk_on_virtio_without_network(tmp_path):
    argv = Machine(disk=tmp_path / "d.raw", accel="tcg").argv()
    assert argv[0] == "qemu-system-x86_64"
    assert values(argv, "-accel") == ["tcg,thread=multi"]
    assert values(argv, "-drive") == [
        f"file={tmp_path}/d.raw,format=raw,if=none,id=disk0,cache=unsafe,snapshot=on"]
    assert values(argv, "-device") == ["virtio-rng-pci", "virtio-blk-pci,drive=disk0"]
    assert values(argv, "-nic") == ["none"]
    assert values(argv, "-smp") == ["1"]
    assert "-no-reboot" in argv and "-bios" not in argv
    assert values(argv, "-serial") == ["stdio"]


@pytest.mark.parametrize(("fmt", "driver"), [("raw", "raw"), ("qcow2", "qcow2"),
                                             ("vmdk", "vmdk"), ("vhd", "vpc")])
def test_each_image_format_gets_qemus_driver(tmp_path, fmt, driver):
    (drive,) = values(Machine(disk=tmp_path / "d", disk_format=fmt).argv(), "-drive")
    assert f",format={driver}," in drive


def test_uefi_runs_ovmf_code_with_this_machines_own_variable_store(tmp_path, monkeypatch):
    argv = Machine(disk=tmp_path / "d.raw", firmware="uefi").argv(tmp_path / "vars.fd")
    if qemu.split_ovmf():
        assert values(argv, "-drive")[:2] == [
            f"if=pflash,format=raw,unit=0,readonly=on,file={qemu.OVMF_CODE}",
            f"if=pflash,format=raw,unit=1,file={tmp_path}/vars.fd"]
    monkeypatch.setattr(qemu, "OVMF_CODE", tmp_path / "absent.fd")
    combined = Machine(disk=tmp_path / "d.raw", firmware="uefi").argv()
    assert values(combined, "-bios") == [str(qemu.OVMF_COMBINED)]


def test_a_cloud_machine_has_its_network_identity_and_media(tmp_path):
    network = Network(subnet="169.254.0.0/16", mac="02:00:00:00:00:01",
                      forwards=(Forward("169.254.169.254", 80, 41234),))
    machine = Machine(disk=tmp_path / "d.qcow2", disk_format="qcow2", disk_interface="nvme",
                      network=network, smbios=(smbios(1, manufacturer="Amazon EC2",
                                                      product="t3.micro, large"),),
                      cdroms=(tmp_path / "config-2.iso",), snapshot=False)
    argv = machine.argv()
    (netdev,) = values(argv, "-netdev")
    fields = netdev.split(",")
    assert fields[:4] == ["user", "id=net0", "net=169.254.0.0/16", "restrict=on"]
    assert netdev.endswith(f"guestfwd=tcp:169.254.169.254:80-cmd:{qemu.sys.executable} -I -S "
                           f"{qemu.RELAY} 127.0.0.1 41234")
    assert "virtio-net-pci,netdev=net0,mac=02:00:00:00:00:01" in values(argv, "-device")
    assert "nvme,drive=disk0,serial=vol0imagefactory" in values(argv, "-device")
    assert values(argv, "-smbios") == ["type=1,manufacturer=Amazon EC2,product=t3.micro,, large"]
    assert f"file={tmp_path}/config-2.iso,format=raw,if=none,id=cd0,media=cdrom,readonly=on" \
        in values(argv, "-drive")
    assert "ide-cd,drive=cd0,bus=ide.0" in values(argv, "-device")
    assert "snapshot=off" in values(argv, "-drive")[-2]


def test_the_guest_address_is_qemus_dhcp_address_in_the_subnet():
    assert Network().guest_address == "10.0.2.15"
    assert Network().gateway == "10.0.2.2"
    assert Network(subnet="169.254.0.0/16").guest_address == "169.254.2.15"
    assert Network(subnet="192.168.76.0/24").guest_address == "192.168.76.15"


@pytest.mark.parametrize("change", [{"firmware": "coreboot"}, {"disk_format": "vdi"},
                                    {"disk_interface": "scsi"}])
def test_unknown_choices_are_refused(tmp_path, change):
    with pytest.raises(ValueError, match="must be one of"):
        Machine(disk=tmp_path / "d", **change).argv()


@pytest.mark.parametrize(("fmt", "firmware", "interface"), [
    ("raw", "bios", "virtio"), ("qcow2", "uefi", "nvme"), ("vmdk", "bios", "nvme"),
    ("vhd", "uefi", "virtio")])
def test_qemu_runs_each_machine(tmp_path, fmt, firmware, interface):
    """QEMU starts the machine (firmware and all devices) and keeps running it: every option,
    the guest forward to a link-local address included, is one it accepts."""
    disk = tmp_path / f"disk.{fmt}"
    subprocess.run(["qemu-img", "create", "-q", "-f", qemu.DISK_FORMATS[fmt], str(disk), "64M"],
                   check=True)
    iso = tmp_path / "cd.iso"
    iso.write_bytes(bytes(2048 * 16))
    network = Network(subnet="169.254.0.0/16",
                      forwards=(Forward("169.254.169.254", 80, 40000),))
    machine = Machine(disk=disk, disk_format=fmt, firmware=firmware, disk_interface=interface,
                      accel="tcg", network=network, cdroms=(iso,),
                      smbios=(smbios(1, manufacturer="Amazon EC2", uuid="ec2" + "0" * 5 +
                                     "-0000-0000-0000-000000000000"),))
    with Qemu(machine) as vm:
        time.sleep(1.5)
        assert vm.process is not None and vm.process.poll() is None, vm.console.text


def test_each_uefi_machine_gets_a_fresh_copy_of_the_variable_store(tmp_path):
    if not qemu.split_ovmf():
        pytest.skip("this host's OVMF has no separate variable store")
    template = qemu.OVMF_VARS.read_bytes()
    disk = tmp_path / "d.raw"
    disk.write_bytes(bytes(1 << 20))
    copies = []
    for _ in range(2):
        with Qemu(Machine(disk=disk, firmware="uefi", accel="tcg")) as vm:
            (store,) = [d.split("file=", 1)[1] for d in values(vm.argv, "-drive")
                        if "unit=1" in d]
            assert Path(store).read_bytes() == template
            copies.append(store)
        assert not Path(store).exists()
    assert copies[0] != copies[1]
    assert qemu.OVMF_VARS.read_bytes() == template


def test_a_machine_booted_again_keeps_its_variable_store(tmp_path):
    if not qemu.split_ovmf():
        pytest.skip("this host's OVMF has no separate variable store")
    disk = tmp_path / "d.raw"
    disk.write_bytes(bytes(1 << 20))
    store = tmp_path / "OVMF_VARS.fd"
    with Qemu(Machine(disk=disk, firmware="uefi", accel="tcg"), uefi_vars=store):
        pass
    assert store.read_bytes() == qemu.OVMF_VARS.read_bytes()
    store.write_bytes(b"changed by the firmware")
    with Qemu(Machine(disk=disk, firmware="uefi", accel="tcg"), uefi_vars=store) as vm:
        assert f"if=pflash,format=raw,unit=1,file={store}" in values(vm.argv, "-drive")
    assert store.read_bytes() == b"changed by the firmware"


def test_qemu_dies_with_the_process_that_started_it(tmp_path):
    """Even when that process is killed with SIGKILL, so that nothing of it can stop QEMU."""
    disk = tmp_path / "d.raw"
    disk.write_bytes(bytes(1 << 20))
    starter = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; "
         "from imagefactory_core.testing import Machine, Qemu; "
         "vm = Qemu(Machine(disk=Path(sys.argv[1]), accel='tcg')).__enter__(); "
         "print(vm.process.pid, flush=True); time.sleep(60)", str(disk)],
        stdout=subprocess.PIPE, text=True)
    assert starter.stdout is not None
    machine = int(starter.stdout.readline())
    deadline = time.monotonic() + 10
    while not Path(f"/proc/{machine}/cmdline").read_bytes().startswith(b"qemu-system"):
        assert time.monotonic() < deadline, "setpriv never started QEMU"
        time.sleep(0.01)  # setpriv sets the signal, then becomes QEMU: kill after that
    starter.kill()
    starter.wait()
    deadline = time.monotonic() + 10
    while running(machine) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not running(machine)


@pytest.mark.slow
def test_boot_and_wait_gives_up_at_the_timeout_and_stops_qemu(tmp_path):
    disk = tmp_path / "empty.raw"
    disk.write_bytes(bytes(1 << 20))
    began = time.monotonic()
    with pytest.raises(BootError, match="after 3 s"):
        boot_and_wait(disk, ["never printed"], timeout=3)
    assert time.monotonic() - began < 15
