"""The fedora plugin's parts, each on its own: kickstarts per release (validated by pykickstart,
their %post by the shell), the initrd's cpio archive, the domain XML, the console report and the
plugin as the service loads it."""

from __future__ import annotations

import gzip
import subprocess

import imagefactory_fedora
import pytest
from imagefactory_core.plugin import BuildError, ParameterError, Repository
from imagefactory_core.testing import loaded_plugin, plugin_parameters
from imagefactory_fedora import console, kickstart, versions
from imagefactory_fedora.domain import Guest, domain_xml, random_mac, random_name
from imagefactory_fedora.initrd import append_files, cpio
from imagefactory_fedora.treefetch import _expected_digest
from lxml import etree

RELEASES = [("Fedora", "17", "F17"), ("Fedora", "40", "F40"), ("RHEL-6", "10", "RHEL6"),
            ("RHEL-8", "9", "RHEL8"), ("RHEL-9", "4", "RHEL9"), ("RHEL-7", "9", "RHEL7"),
            ("CentOS-Stream-9", "9", "RHEL9"), ("Rocky-8", "10", "RHEL8"),
            ("Fedora", "16", "F16")]
MARKERS = kickstart.Markers("0123456789ab")


def spec(name: str, version: str, source: str | None = "http://mirror.example/os/",
         **extra: object) -> kickstart.KickstartInput:
    fields = dict(
        release=versions.release(name, version), arch="x86_64", source_url=source,
        root_hash="$6$salt$hash", disk_bytes=10 * 1024**3, markers=MARKERS,
        repositories=[Repository("epel", "http://mirror.example/epel/$basearch",
                                 persisted=False)],
        precommands=[("keys", "rpm --import /etc/pki/key")], packages=["httpd", "@web-server"],
        files=[("/etc/motd", b"hello\nIMAGEFACTORY_DATA\n'\"$(reboot)`x`\n")],
        commands=[("quoted", "echo 'it''s' \"$HOME\"\nexit 0")],
        icicle_extra_command="rpm -qa --qf '%{SIGMD5}\\n'")
    fields.update(extra)
    return kickstart.KickstartInput(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(("name", "version", "handler"), RELEASES)
def test_generated_kickstarts_validate_for_their_release(name, version, handler):
    release = versions.release(name, version)
    assert release.handler == handler
    for root_hash in ("$6$salt$hash", None):
        text = kickstart.generate(spec(name, version, root_hash=root_hash))
        kickstart.validate(text, release)
        assert "poweroff" in text.splitlines()


@pytest.mark.parametrize(("name", "version", "handler"), RELEASES[:5])
def test_iso_kickstarts_validate_too(name, version, handler):
    text = kickstart.generate(spec(name, version, source=None))
    kickstart.validate(text, versions.release(name, version))
    assert "\ncdrom\n" in text and "url " not in text


def test_kickstart_layout_per_release():
    f17 = kickstart.generate(spec("Fedora", "17"))
    assert "part biosboot --fstype=biosboot --size=1" in f17
    assert "install\n" in f17 and "@core" in f17
    assert 'url --url="http://mirror.example/os/" --proxy="http://10.0.2.2:3128"' in f17
    rhel6 = kickstart.generate(spec("RHEL-6", "5"))
    assert "biosboot" not in rhel6 and "key --skip" in rhel6 and "@base" in rhel6
    assert "part / --fstype=ext4" in rhel6 and "yum -y" in rhel6
    rhel9 = kickstart.generate(spec("RHEL-9", "4"))
    assert "install\n" not in rhel9 and "part / --fstype=xfs" in rhel9 and "dnf -y" in rhel9
    assert "rootpw --iscrypted $6$salt$hash" in rhel9
    locked = kickstart.generate(spec("Fedora", "40", root_hash=None))
    assert "rootpw --lock" in locked


def test_post_steps_follow_tdl_order():
    names = [step.name for step in kickstart.post_steps(spec("Fedora", "40"))]
    assert names == ["repository epel", "precommand keys", "packages", "file /etc/motd",
                     "command quoted", "removing repositories that are not persisted"]


def test_post_script_is_valid_shell_and_writes_exactly_the_data(tmp_path):
    """The %post runs in a shell: parse it, and run its file step in a scratch root."""
    body = kickstart.post_script(spec("Fedora", "40"), "ttyS0")
    subprocess.run(["bash", "-n"], input=body.encode(), check=True)
    subprocess.run(["sh", "-n"], input=body.encode(), check=True)
    steps = kickstart.post_steps(spec("Fedora", "40"))
    step = next(s for s in steps if s.name.startswith("file"))
    script = step.script.replace("/etc", str(tmp_path / "etc"))
    subprocess.run(["sh", "-c", f"( {script}\n)"], check=True)
    written = (tmp_path / "etc" / "motd").read_bytes()
    assert written == b"hello\nIMAGEFACTORY_DATA\n'\"$(reboot)`x`\n"


def test_hostile_names_are_refused_or_quoted():
    with pytest.raises(BuildError, match="not an RPM package"):
        kickstart.generate(spec("Fedora", "40", packages=["httpd; reboot"]))
    with pytest.raises(BuildError, match="absolute path"):
        kickstart.generate(spec("Fedora", "40", files=[("/etc/../../x", b"")]))
    text = kickstart.generate(spec("Fedora", "40", commands=[("a'; reboot; '", "true")]))
    assert "imagefactory_fail 'command a'\"'\"'; reboot; '\"'\"''" in text


def test_old_releases_cannot_install_from_a_url():
    with pytest.raises(BuildError, match="install it from an ISO"):
        kickstart.generate(spec("RHEL-5", "U4"))
    kickstart.validate(kickstart.generate(spec("RHEL-5", "U4", source=None)),
                       versions.release("RHEL-5", "U4"))


def test_invalid_kickstart_fails_with_pykickstarts_message():
    with pytest.raises(BuildError, match=r"(?s)not valid for Fedora 17 \(pykickstart F17\).*"
                                         r"Unknown command: bogus"):
        kickstart.validate("text\nbogus --x\n", versions.release("Fedora", "17"))


def test_small_disks_are_refused():
    with pytest.raises(BuildError, match="too small"):
        kickstart.generate(spec("Fedora", "40", disk_bytes=1024**3))


def test_targets_and_releases():
    targets = {t.name: t for t in versions.os_targets()}
    assert {"Fedora", "RHEL-5", "RHEL-9", "CentOS-5", "CentOS-Stream-9", "Rocky-9",
            "Alma-8"} <= set(targets)
    assert versions.release("centos-7", "9").handler == "RHEL7"
    assert versions.release("Fedora", "99").handler.startswith("F")
    with pytest.raises(BuildError, match="Fedora 6 is not supported"):
        versions.release("Fedora", "6")


def _unpack(archive: bytes) -> dict[str, tuple[int, bytes]]:
    """Entries of a newc archive: name -> (mode, data), read as the kernel reads them."""
    entries, offset = {}, 0
    while True:
        header = archive[offset:offset + 110]
        assert header[:6] == b"070701"
        fields = [int(header[6 + 8 * i:14 + 8 * i], 16) for i in range(13)]
        name_size, data_size, mode = fields[11], fields[6], fields[1]
        name_start = offset + 110
        name = archive[name_start:name_start + name_size - 1].decode()
        data_start = name_start + name_size + (-(110 + name_size) % 4)
        if name == "TRAILER!!!":
            return entries
        entries[name] = (mode, archive[data_start:data_start + data_size])
        offset = data_start + data_size + (-data_size % 4)


def test_cpio_archive_is_newc_with_directories():
    archive = cpio([("/etc/ks/ks.cfg", b"text\n", 0o644), ("init", b"#!/bin/sh\n", 0o755)])
    entries = _unpack(archive)
    assert entries["etc"][0] == 0o040755 and entries["etc/ks"][0] == 0o040755
    assert entries["etc/ks/ks.cfg"] == (0o100644, b"text\n")
    assert entries["init"] == (0o100755, b"#!/bin/sh\n")
    assert len(archive) % 4 == 0


def test_appended_initrd_unpacks_with_gnu_cpio(tmp_path):
    original = tmp_path / "initrd.img"
    original.write_bytes(gzip.compress(cpio([("init", b"x", 0o755)])) + b"\0")
    output = tmp_path / "with-ks.img"
    append_files(original, output, [("/ks.cfg", b"kickstart\n", 0o644)])
    data = output.read_bytes()
    assert data.startswith(original.read_bytes())
    tail = data[len(original.read_bytes()):].lstrip(b"\0")
    listing = subprocess.run(["cpio", "-t"], input=gzip.decompress(tail), capture_output=True,
                             check=True).stdout.decode()
    assert listing.split() == ["ks.cfg"]


def test_domain_xml():
    guest = Guest(name=random_name("0123456789"), arch="x86_64", accel="tcg", memory_mib=1024,
                  cpus=2, kernel="/k", initrd="/i", cmdline="inst.ks=file:/ks.cfg",
                  disk="/d.raw", console="/c", iso="/x.iso", mac=random_mac(), cpuset="0,1")
    root = etree.fromstring(domain_xml(guest).encode())
    assert root.get("type") == "qemu"
    assert root.findtext("name").startswith("imagefactory-01234567-")
    assert root.find("os/type").get("machine") == "q35"
    assert root.findtext("os/cmdline") == "inst.ks=file:/ks.cfg"
    assert root.find("cpu").get("mode") == "maximum"
    assert [root.findtext(e) for e in ("on_poweroff", "on_reboot", "on_crash")] == \
        ["destroy"] * 3
    assert root.find("devices/graphics") is None
    assert root.find("devices/disk[@device='cdrom']/readonly") is not None
    assert root.find("devices/interface").get("type") == "user"
    assert root.find("devices/serial/source").get("path") == "/c"
    assert root.find("vcpu").get("cpuset") == "0,1"
    assert random_mac() != random_mac() and random_mac().startswith("52:54:00:")
    kvm = etree.fromstring(domain_xml(Guest(**{**guest.__dict__, "accel": "kvm", "iso": None,
                                                "seclabel_user": "107:107"})).encode())
    assert kvm.get("type") == "kvm" and kvm.find("cpu").get("mode") == "host-passthrough"
    assert kvm.find("seclabel").get("model") == "dac"


def test_domain_xml_for_libvirtd_serves_disks_and_network_over_sockets():
    guest = Guest(name="imagefactory-x", arch="x86_64", accel="tcg", memory_mib=512, cpus=1,
                  kernel="/r/vmlinuz", initrd="/r/initrd.img", cmdline="ks", disk="",
                  console="/r/console", iso="iso", mac="52:54:00:01:02:03",
                  seclabel_user="+101000:+101000", storage_socket="/r/storage.sock",
                  net_socket="/r/net.sock")
    root = etree.fromstring(domain_xml(guest).encode())
    for device, export in (("disk", "disk"), ("cdrom", "iso")):
        disk = root.find(f"devices/disk[@device='{device}']")
        assert disk.get("type") == "network"
        assert disk.find("source").attrib == {"protocol": "nbd", "name": export}
        assert disk.find("source/host").attrib == {"transport": "unix",
                                                   "socket": "/r/storage.sock"}
    assert root.find("devices/interface") is None
    assert root.find("seclabel/label").text == "+101000:+101000"
    args = [a.get("value") for a in root.iter("{http://libvirt.org/schemas/domain/qemu/1.0}arg")]
    assert args == ["-netdev", "stream,id=imagefactory-net,server=off,addr.type=unix,"
                    "addr.path=/r/net.sock", "-device", "virtio-net-pci,netdev=imagefactory-net,"
                    "mac=52:54:00:01:02:03,bus=pcie.0,addr=0x18"]


def test_connection_choice(monkeypatch):
    from imagefactory_fedora import connection

    answers = {"libvirtd": False, "kvm": False}
    monkeypatch.setattr(connection, "libvirtd_answers", lambda: answers["libvirtd"])
    monkeypatch.setattr(connection.accel, "kvm_usable", lambda: answers["kvm"])
    assert connection.choose("embed", "auto") == "embed"
    assert connection.choose("auto", "auto") == "embed"
    with pytest.raises(BuildError, match="libvirtd does not answer"):
        connection.choose("system", "auto")
    answers["libvirtd"] = True
    assert connection.choose("system", "tcg") == "system"
    assert connection.choose("auto", "auto") == "embed"  # libvirtd alone buys nothing
    answers["kvm"] = True
    assert connection.choose("auto", "auto") == "system"
    assert connection.choose("auto", "tcg") == "embed"


def test_console_report():
    text = "\n".join(["boot", MARKERS.extra_begin, "a1", "[   1.234567] noise", "b1",
                      MARKERS.extra_end, MARKERS.icicle_begin, "a-1.0-1.x86_64",
                      "[  12.000001] usb 1-1: new device", "b-2.0-1.noarch", MARKERS.icicle_end,
                      MARKERS.done])
    console.check_post(text, MARKERS)
    assert console.packages(text, MARKERS, True) == [("a-1.0-1.x86_64", "a1"),
                                                      ("b-2.0-1.noarch", "b1")]
    with pytest.raises(BuildError, match=r"packages: exit code 1"):
        console.check_post(f"dnf said no\n{MARKERS.failed} packages: exit code 1\n", MARKERS)
    with pytest.raises(BuildError, match="before the kickstart's %post finished"):
        console.check_post("anaconda crashed\n", MARKERS)


def test_console_is_read_without_following_links(tmp_path):
    target = tmp_path / "secret"
    target.write_text("host secret")
    (tmp_path / "console").symlink_to(target)
    assert console.read_console(tmp_path / "console") == ""


def test_checksum_files():
    digest = "a" * 64
    assert _expected_digest(f"{digest}  boot.iso\n".encode(), "boot.iso", "sha256sum") == digest
    assert _expected_digest(f"SHA256 (boot.iso) = {digest}\n".encode(), "boot.iso",
                            "sha256sum") == digest
    with pytest.raises(BuildError, match=r"no digest for boot\.iso"):
        _expected_digest(f"{digest}  other.iso\n{digest}  third.iso\n".encode(), "boot.iso",
                         "sha256sum")


def test_the_plugin_loads_with_its_targets_and_parameters():
    view = loaded_plugin(imagefactory_fedora)
    assert view["type"] == "os"
    assert ["Fedora", versions.FEDORA_VERSIONS, "x86_64,aarch64"] in view["targets"]
    values = plugin_parameters(imagefactory_fedora)
    assert values["libvirt_connection"] == "auto" and values["install_script"] is None
    parameters = {p["name"]: p for p in view["parameters"]}
    assert parameters["inactivity_timeout"]["operator_only"]
    assert not parameters["install_script"]["operator_only"]



def test_the_install_proxy_is_an_http_address_without_credentials():
    assert plugin_parameters(imagefactory_fedora, {"install_proxy": "http://cache.internal:3128"})[
        "install_proxy"] == "http://cache.internal:3128"
    for bad in ("https://cache.internal:3128", "http://builder:secret@cache.internal:3128"):
        with pytest.raises(ParameterError, match="install_proxy"):
            plugin_parameters(imagefactory_fedora, {"install_proxy": bad})
