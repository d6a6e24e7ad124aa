"""Relay one guest connection to a server on the host: ``relay.py HOST PORT``.

QEMU's user-mode network runs this for each TCP connection the guest opens to a forwarded
address (``guestfwd=…-cmd:``), with the connection on standard input and output. It is run as
``python -I -S`` and imports nothing but the standard library: it starts for every request.
"""

import os
import selectors
import socket
import sys


def relay(host: str, port: int) -> None:
    upstream = socket.create_connection((host, port), timeout=30)
    upstream.settimeout(None)
    guest_in, guest_out = sys.stdin.fileno(), sys.stdout.fileno()
    selector = selectors.DefaultSelector()
    selector.register(guest_in, selectors.EVENT_READ)
    selector.register(upstream, selectors.EVENT_READ)
    while True:
        for key, _ in selector.select():
            if key.fileobj is upstream:
                data = upstream.recv(65536)
                if not data:
                    return  # the server answered and closed: so does the guest's connection
                while data:
                    data = data[os.write(guest_out, data):]
            else:
                data = os.read(guest_in, 65536)
                if data:
                    upstream.sendall(data)
                else:
                    selector.unregister(guest_in)
                    upstream.shutdown(socket.SHUT_WR)


if __name__ == "__main__":
    relay(sys.argv[1], int(sys.argv[2]))
