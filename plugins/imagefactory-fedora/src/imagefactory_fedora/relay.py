"""Serve a libvirtd guest's disks and network from inside the build sandbox
(``python -I relay.py …``, started by `imagefactory_fedora.vmrun` for ``qemu:///system``).

libvirtd's QEMU runs outside any sandbox, in the host's network namespace. So that the guest
is confined as a guest of the embedded driver is, what it reaches is served from a build
sandbox (network ``egress``: a loopback where the egress proxy listens, nothing else):

* its NIC's Ethernet frames arrive on ``--state``/net.sock (QEMU's ``-netdev stream``) and go
  to QEMU's user network in this sandbox (a QEMU with no machine, its two network back ends
  joined by a hub), which maps the guest's 10.0.2.2 to the sandbox's loopback: the egress
  proxy on port 3128 is the guest's one way out, as with the embedded driver;
* its disk and ISO are NBD exports (``disk``, ``iso``) of qemu-storage-daemon on
  ``--state``/storage.sock, so libvirtd's QEMU opens no host file but the sockets and the
  kernel and initrd beside them.

Like vmrun, it imports only the standard library (and vmrun, beside it). As root of the
sandbox it hands the state directory and the disk to ``--uid`` and drops to it; every second
it copies the sandbox's ``/proc/net/dev`` to ``--state``/net-dev for vmrun's inactivity
watch. It ends when either server ends (exit 1), or with the sandbox.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

NET_SOCKET = "net.sock"
STORAGE_SOCKET = "storage.sock"
NET_COUNTERS = "net-dev"


def storage_argv(socket: str, disk: str, iso: str | None) -> list[str]:
    argv = ["qemu-storage-daemon",
            "--blockdev", f"driver=file,node-name=disk,filename={disk}",
            "--nbd-server", f"addr.type=unix,addr.path={socket}",
            "--export", "type=nbd,id=disk,node-name=disk,name=disk,writable=on"]
    if iso:
        argv += ["--blockdev", f"driver=file,node-name=iso,filename={iso},read-only=on",
                 "--export", "type=nbd,id=iso,node-name=iso,name=iso"]
    return argv


def network_argv(emulator: str, socket: str) -> list[str]:
    return [emulator, "-machine", "none", "-nodefaults", "-display", "none",
            "-netdev", "user,id=user",
            "-netdev", f"stream,id=guest,server=on,addr.type=unix,addr.path={socket}",
            "-netdev", "hubport,id=to-user,hubid=0,netdev=user",
            "-netdev", "hubport,id=to-guest,hubid=0,netdev=guest"]


def _copy_counters(target: str) -> None:
    with open("/proc/net/dev", "rb") as source:
        data = source.read()
    with open(target + ".new", "wb") as copy:
        copy.write(data)
    os.replace(target + ".new", target)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--state", required=True)
    parser.add_argument("--disk", required=True)
    parser.add_argument("--iso")
    parser.add_argument("--emulator", required=True)
    parser.add_argument("--own", action="append", default=[])
    parser.add_argument("--uid", type=int, required=True)
    args = parser.parse_args(argv)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from vmrun import drop_privileges  # run as a script: vmrun is beside it, not a package

    drop_privileges(args.uid, args.own)
    servers = [
        subprocess.Popen(storage_argv(os.path.join(args.state, STORAGE_SOCKET), args.disk,
                                      args.iso)),
        subprocess.Popen(network_argv(args.emulator, os.path.join(args.state, NET_SOCKET))),
    ]
    while all(server.poll() is None for server in servers):
        _copy_counters(os.path.join(args.state, NET_COUNTERS))
        time.sleep(1)
    for server in servers:
        if server.poll() is not None:
            print(f"relay: {server.args[0]} ended (exit code {server.returncode})", flush=True)
        else:
            server.terminate()
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
