"""The host side: set-up errors that say what to do, id shifting, the spec, the policy."""

from __future__ import annotations

import ipaddress
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from imagefactory_core.sandbox import (
    Bind,
    EgressPolicy,
    IdRange,
    SandboxLimits,
    SandboxSpec,
    SandboxUnavailable,
    check_host,
    shift_into_range,
    shift_out_of_range,
    subordinate_ids,
)
from imagefactory_core.sandbox.policy import EgressRefused, refusal_reason
from imagefactory_core.sandbox.proxy import BadRequest, parse_request


def test_missing_subordinate_range_is_named(tmp_path: Path) -> None:
    subuid = tmp_path / "subuid"
    subuid.write_text("alice:100000:65536\n")
    with pytest.raises(SandboxUnavailable, match=r"subuid gives root no subordinate range.*"
                                                 r"root:100000:65536"):
        subordinate_ids(subuid=subuid, subgid=subuid)


def test_missing_newuidmap_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(SandboxUnavailable, match="newuidmap is missing: install Debian's uidmap"):
        check_host()


def test_disabled_user_namespaces_are_named(tmp_path: Path) -> None:
    knob = tmp_path / "max_user_namespaces"
    knob.write_text("0\n")
    with pytest.raises(SandboxUnavailable, match="user namespaces are disabled"):
        check_host(max_user_namespaces=knob)


def test_tree_not_owned_by_the_range_is_refused(tmp_path: Path,
                                                run_sandbox: Callable[..., Any]) -> None:
    (tmp_path / "tree").mkdir()
    result = run_sandbox(SandboxSpec(root=tmp_path / "tree"), ["true"])
    assert result.returncode == 125
    assert "shift_into_range" in result.stderr


def test_shift_keeps_modes_and_never_follows_links(tmp_path: Path) -> None:
    ids = IdRange(200000, 300000, 65536)
    tree = tmp_path / "tree"
    (tree / "bin").mkdir(parents=True)
    program = tree / "bin" / "su"
    program.write_bytes(b"")
    os.chown(program, 0, 42)
    program.chmod(0o4755)
    outside = tmp_path / "outside"
    outside.write_text("host file\n")
    (tree / "bin" / "link").symlink_to(outside)
    shift_into_range(tree, ids)
    info = program.stat()
    assert (info.st_uid, info.st_gid) == (200000, 300042)
    assert stat.S_IMODE(info.st_mode) == 0o4755
    assert (tree / "bin" / "link").lstat().st_uid == 200000
    assert outside.stat().st_uid == 0
    shift_out_of_range(tree, ids)
    assert (program.stat().st_uid, program.stat().st_gid) == (0, 42)
    assert stat.S_IMODE(program.stat().st_mode) == 0o4755


def test_shift_moves_a_file_with_several_names_once(tmp_path: Path) -> None:
    """Debian trees hold hard links (perl, for one): each inode is shifted once, not once per
    name (the second name would otherwise look owned from outside the range)."""
    ids = IdRange(200000, 300000, 65536)
    tree = tmp_path / "tree"
    (tree / "a").mkdir(parents=True)
    (tree / "a" / "perl5.36.0").write_bytes(b"")
    os.link(tree / "a" / "perl5.36.0", tree / "perl")
    shift_into_range(tree, ids)
    assert (tree / "perl").stat().st_uid == 200000
    shift_out_of_range(tree, ids)
    assert (tree / "a" / "perl5.36.0").stat().st_uid == 0


def test_shift_refuses_ids_outside_the_range(tmp_path: Path) -> None:
    (tmp_path / "tree").mkdir()
    os.chown(tmp_path / "tree", 70000, 0)
    with pytest.raises(ValueError, match="outside"):
        shift_into_range(tmp_path / "tree", IdRange(100000, 100000, 65536))


def test_spec_travels_as_json() -> None:
    spec = SandboxSpec(root=Path("/srv/tree"), inputs=(Bind(Path("/srv/cache"), "/var/cache"),),
                       outputs=(Bind(Path("/srv/disk"), "/disk"),), network="egress",
                       egress=EgressPolicy(allow=("10.1.0.0/16", "mirror.internal")),
                       limits=SandboxLimits(memory_mib=512, wall_seconds=30.0), cwd="/root",
                       ids=IdRange(1, 2, 3))
    assert SandboxSpec.from_json(spec.to_json()) == spec


@pytest.mark.parametrize("bad", [
    {"root": Path("relative")}, {"cwd": "/a/../b"}, {"network": "host"},
    {"inputs": (Bind(Path("/a"), "/x"), Bind(Path("/b"), "/x"))},
])
def test_spec_refuses_nonsense(bad: dict) -> None:
    with pytest.raises(ValueError):
        SandboxSpec(**{"root": Path("/tree"), **bad})


@pytest.mark.parametrize("address", [
    "127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "100.64.0.1", "169.254.169.254",
    "0.0.0.0", "224.0.0.1", "255.255.255.255", "::1", "fe80::1", "fc00::1", "fd00:ec2::254",
    "::ffff:10.0.0.1", "64:ff9b::a9fe:a9fe", "2002:a00:1::1", "ff02::1", "::",
])
def test_default_policy_refuses_non_public_addresses(address: str) -> None:
    assert refusal_reason(ipaddress.ip_address(address)) is not None


@pytest.mark.parametrize("address", ["151.101.2.132", "2a04:4e42::644"])
def test_default_policy_allows_public_addresses(address: str) -> None:
    assert refusal_reason(ipaddress.ip_address(address)) is None


def test_allow_list_widens_and_ports_narrow() -> None:
    policy = EgressPolicy(allow=("10.20.0.0/16", "localhost"), ports=(8080,))
    assert policy.check_address(ipaddress.ip_address("10.20.1.1")) is None
    assert policy.check_address(ipaddress.ip_address("10.21.1.1")) == "a private address"
    assert policy.destinations("localhost", 8080)
    with pytest.raises(EgressRefused, match="port 80 is not allowed"):
        policy.destinations("localhost", 80)
    with pytest.raises(EgressRefused, match=r"127\.0\.0\.1 \(a loopback address\)"):
        EgressPolicy(ports=(8080,)).destinations("127.0.0.1", 8080)


@pytest.mark.parametrize("head", [
    b"GET /relative HTTP/1.1", b"GET ftp://host/x HTTP/1.1", b"CONNECT :443 HTTP/1.1",
    b"GET http://host/\x00 HTTP/1.1", b"CONNECT host:99999 HTTP/1.1", b"nonsense",
])
def test_proxy_refuses_malformed_requests(head: bytes) -> None:
    with pytest.raises(BadRequest):
        parse_request(head)


def test_proxy_forwards_in_origin_form_without_hop_by_hop_headers() -> None:
    head = (b"GET http://deb.example/dists/x?y=1 HTTP/1.1\r\nHost: deb.example\r\n"
            b"Proxy-Connection: keep-alive\r\nProxy-Authorization: secret")
    method, host, port, upstream = parse_request(head)
    assert (method, host, port) == ("GET", "deb.example", 80)
    assert upstream == (b"GET /dists/x?y=1 HTTP/1.1\r\nHost: deb.example\r\n"
                        b"Connection: close\r\n\r\n")
