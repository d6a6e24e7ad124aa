"""The first-boot probe: its user-data script, and reading its output back from a console."""

from __future__ import annotations

import subprocess

from imagefactory_core.testing import Address, GuestFacts
from imagefactory_core.testing.boot import probe

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGX7J4MwdZmRbGx1BoEF4dH1t5p9QA9uLiZasH4bo3RI test"
# What a real EC2 boot printed (key shortened), with a kernel line in the middle as happens.
CONSOLE = "\n".join([
    "[   90.1] cloud-init[351]: Cloud-init v. 22.4.2 running 'modules:final'",
    "IMAGEFACTORY-FACTS-BEGIN",
    "IMAGEFACTORY-FACT instance-id i-07b8c2abfa7d34090",
    "IMAGEFACTORY-FACT hostname imagefactory-267528",
    "IMAGEFACTORY-FACT cloud-id aws",
    "IMAGEFACTORY-FACT datasource metadata (http://169.254.169.254)",
    "IMAGEFACTORY-FACT ds-identify datasource_list: [ Ec2, None ]",
    "IMAGEFACTORY-FACT authorized-key root no-port-forwarding,command=\"echo 'Please login as "
    "the user \\\"debian\\\"';exit 142\" " + KEY,
    "IMAGEFACTORY-FACT authorized-key debian " + KEY,
    "IMAGEFACTORY-FACT root-device /dev/nvme0n1p2",
    "[  101.5] random: crng reseeded",
    "IMAGEFACTORY-FACT root-fstype ext4",
    "IMAGEFACTORY-FACT root-size 3884675072",
    "IMAGEFACTORY-FACT disk-size 4294967296",
    "IMAGEFACTORY-FACT address 1: lo    inet 127.0.0.1/8 scope host lo\\       "
    "valid_lft forever preferred_lft forever",
    "IMAGEFACTORY-FACT address 2: eth0    inet 169.254.2.15/16 metric 1024 brd 169.254.255.255 "
    "scope global dynamic eth0\\       valid_lft 86362sec preferred_lft 86362sec",
    "IMAGEFACTORY-FACT default-route ",
    "IMAGEFACTORY-FACT getty active",
    "IMAGEFACTORY-FACTS-END",
    "IMAGEFACTORY-REPORT-BEGIN",
    "Startup finished in 6.871s (kernel) + 58.619s (userspace) = 1min 5.490s",
    "22.557s cloud-init-local.service",
    "IMAGEFACTORY-REPORT-END",
    "IMAGEFACTORY-PER-BOOT instance-id=i-07b8c2abfa7d34090 instances=1",
    ""])


def test_the_facts_are_read_back_typed():
    facts = GuestFacts.parse(CONSOLE)
    assert facts is not None
    assert facts.instance_id == "i-07b8c2abfa7d34090"
    assert facts.hostname == "imagefactory-267528"
    assert facts.cloud_id == "aws"
    assert facts.datasource == "metadata (http://169.254.169.254)"
    assert facts.ds_identify == "datasource_list: [ Ec2, None ]"
    assert facts.authorized_keys("debian") == (KEY,)
    assert facts.authorized_keys("root")[0].endswith(KEY)
    assert facts.authorized_keys("nobody") == ()
    assert facts.root_device == "/dev/nvme0n1p2"
    assert facts.root_fstype == "ext4"
    assert facts.root_size == 3884675072
    assert facts.disk_size == 4 << 30
    assert facts.addresses == (Address("lo", "127.0.0.1/8", False),
                               Address("eth0", "169.254.2.15/16", True))
    assert facts.addresses[1].ip == "169.254.2.15"
    assert facts.get("default-route") == ""
    assert facts.get("getty") == "active"
    assert facts.get("absent") == ""


def test_no_facts_without_both_markers():
    assert GuestFacts.parse("IMAGEFACTORY-FACTS-BEGIN\nIMAGEFACTORY-FACT hostname x\n") is None
    assert GuestFacts.parse("") is None


def test_the_report_and_the_per_boot_line_are_read_back():
    assert probe.report(CONSOLE).splitlines() == [
        "Startup finished in 6.871s (kernel) + 58.619s (userspace) = 1min 5.490s",
        "22.557s cloud-init-local.service"]
    assert probe.report("no report here") == ""
    assert probe.per_boot(CONSOLE) == ("i-07b8c2abfa7d34090", 1)
    assert probe.per_boot(CONSOLE.split("IMAGEFACTORY-PER-BOOT")[0]) is None
    assert probe.per_boot(CONSOLE.rstrip("\n")) is None  # not before the line is complete


def test_the_user_data_is_a_shell_script_that_does_not_contain_its_own_markers():
    for reboot in (False, True):
        script = probe.user_data(reboot).decode()
        assert script.startswith("#!/bin/sh\n")
        subprocess.run(["sh", "-n"], input=script, text=True, check=True)
        for marker in (probe.FACTS_BEGIN, probe.FACTS_END, probe.REPORT_BEGIN,
                       probe.REPORT_END, probe.PER_BOOT, "IMAGEFACTORY-FACT "):
            assert marker not in script
        assert ("systemctl reboot" in script) is reboot
    assert "\nout=/dev/hvc0\n" in probe.user_data(False, serial="/dev/hvc0").decode()
