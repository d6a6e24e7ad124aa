"""The sandbox's end of the egress path: loopback, and a proxy port that leads out.

A sandbox's network namespace has only ``lo``. With ``network = "egress"`` its pid 1 listens
on 127.0.0.1:`PROXY_PORT` inside and hands every accepted connection, as a file descriptor
over a Unix socket pair made before the namespaces, to the launcher on the host side, which
speaks the proxy protocol on it (`imagefactory_core.sandbox.proxy`). No byte is relayed inside
and no address or route of the host exists in the sandbox: the only way out is the policy.
"""

from __future__ import annotations

import fcntl
import socket
import struct
import threading

PROXY_PORT = 3128
PROXY_URL = f"http://127.0.0.1:{PROXY_PORT}"
PROXY_ENV = {name: PROXY_URL for name in ("http_proxy", "https_proxy", "HTTP_PROXY",
                                          "HTTPS_PROXY")}
_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1


def bring_up_loopback() -> None:
    """Set ``lo`` up in this (new) network namespace."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sH22x", b"lo", 0)
        flags = struct.unpack("16sH22x", fcntl.ioctl(sock, _SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(sock, _SIOCSIFFLAGS, struct.pack("16sH22x", b"lo", flags | _IFF_UP))


def listen() -> socket.socket:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", PROXY_PORT))
    listener.listen(64)
    return listener


def _pass_connections(listener: socket.socket, channel: socket.socket) -> None:
    while True:
        connection, _ = listener.accept()
        with connection:
            try:
                socket.send_fds(channel, [b"c"], [connection.fileno()])
            except OSError:
                return  # the launcher is gone: so is the sandbox, soon


def start(listener: socket.socket, channel: socket.socket) -> None:
    threading.Thread(target=_pass_connections, args=(listener, channel), daemon=True).start()
