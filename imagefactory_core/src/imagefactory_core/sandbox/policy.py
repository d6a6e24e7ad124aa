"""Which destinations a sandbox with ``network = "egress"`` may reach.

The proxy (`imagefactory_core.sandbox.proxy`) asks `EgressPolicy.destinations` for the
addresses it may connect to; it resolves names itself and connects to exactly the address it
checked, so a name that resolves differently a moment later (DNS rebinding) gains nothing.

By default only public unicast addresses are reachable: loopback, link-local (and so the cloud
metadata addresses 169.254.169.254, fd00:ec2::254), private (10/8, 172.16/12, 192.168/16,
fc00::/7), shared (100.64/10), documentation, reserved, unspecified and multicast addresses
are refused, and so are IPv6 forms that embed an IPv4 address (mapped, 6to4, NAT64) — they
could carry a refused IPv4 address. The operator's allow-list (CIDRs or host names) widens it.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_EMBEDDING_V4 = tuple(ipaddress.ip_network(net) for net in (
    "64:ff9b::/96", "64:ff9b:1::/48", "2002::/16", "2001::/32", "::ffff:0:0/96", "::/96"))
_LABEL = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
_HOSTNAME = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*\.?$")


class EgressRefused(Exception):
    """The destination is not allowed; the message says why (it is shown to the sandbox)."""


def refusal_reason(address: IPAddress) -> str | None:
    """Why the default policy refuses `address`, or None for a public unicast address."""
    if any(address in net for net in _EMBEDDING_V4 if net.version == address.version):
        return "an IPv6 address embedding an IPv4 address"
    for attribute, reason in (("is_loopback", "a loopback address"),
                              ("is_link_local", "a link-local address"),
                              ("is_multicast", "a multicast address"),
                              ("is_unspecified", "the unspecified address"),
                              ("is_private", "a private address"),
                              ("is_reserved", "a reserved address")):
        if getattr(address, attribute):
            return reason
    if address.version == 6 and address.is_site_local:
        return "a site-local address"
    if not address.is_global:
        return "a non-global address"
    return None


@dataclass(frozen=True)
class EgressPolicy:
    """Where template commands may connect through the egress proxy.

    Attributes:
        allow: CIDRs (``10.20.0.0/16``) or host names (``mirror.internal``) the operator allows
            beyond the public internet; a host name is allowed whatever it resolves to.
        ports: the destination ports allowed (empty: every port).
        via: an HTTP proxy of the operator's (``http://host:port``) that allowed connections
            go through instead of going straight to the destination (apt's cache, a
            corporate proxy). The destination is checked all the same.
    """

    allow: tuple[str, ...] = ()
    ports: tuple[int, ...] = (80, 443)
    via: str | None = None

    def __post_init__(self) -> None:
        if self.via is not None:
            parts = urlsplit(self.via)
            if parts.scheme != "http" or not parts.hostname:
                raise ValueError(f"the upstream proxy {self.via!r} is not an http:// URL")
            if "@" in parts.netloc:
                raise ValueError(f"the upstream proxy http://…@{parts.hostname} names a user: "
                                 "the egress proxy sends no credentials (and a launcher's "
                                 "command line is visible to the host's users); let the build "
                                 "host in by its address")
        for entry in self.allow:
            if not _is_network(entry) and not _HOSTNAME.match(entry.lower()):
                raise ValueError(f"egress allow-list entry {entry!r} is neither a CIDR nor a "
                                 "host name")

    @classmethod
    def of(cls, entries: tuple[str, ...] | list[str], via: str | None = None) -> EgressPolicy:
        """The default policy widened by `entries`: URLs (their host and port:
        ``http://mirror.internal:8080/debian``), CIDRs or host names (ports 80 and 443);
        allowed connections go through `via` when given."""
        hosts: list[str] = []
        ports = set(cls().ports)
        for entry in entries:
            if "://" not in entry:
                hosts.append(entry)
                continue
            parts = urlsplit(entry)
            if not parts.hostname:
                raise ValueError(f"egress destination {entry!r} names no host")
            hosts.append(parts.hostname)
            ports.add(parts.port or (443 if parts.scheme == "https" else 80))
        return cls(allow=tuple(hosts), ports=tuple(sorted(ports)), via=via)

    def _allowed_networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        return [ipaddress.ip_network(entry, strict=False) for entry in self.allow
                if _is_network(entry)]

    def _allowed_hosts(self) -> set[str]:
        return {entry.lower().rstrip(".") for entry in self.allow if not _is_network(entry)}

    def check_address(self, address: IPAddress) -> str | None:
        """Why `address` is refused, or None if it may be reached."""
        if any(address in net for net in self._allowed_networks()):
            return None
        return refusal_reason(address)

    def destinations(self, host: str, port: int) -> list[tuple[socket.AddressFamily, tuple]]:
        """The socket addresses of `host`:`port` that may be reached; raise `EgressRefused`."""
        if self.ports and port not in self.ports:
            raise EgressRefused(f"port {port} is not allowed (allowed: "
                                f"{', '.join(map(str, self.ports))})")
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as error:
            raise EgressRefused(f"cannot resolve {host}: {error}") from None
        by_name = host.lower().rstrip(".") in self._allowed_hosts()
        allowed, refused = [], []
        for family, _, _, _, sockaddr in infos:
            address = ipaddress.ip_address(sockaddr[0])
            reason = None if by_name else self.check_address(address)
            if reason is None:
                allowed.append((family, sockaddr))
            else:
                refused.append(f"{address} ({reason})")
        if not allowed:
            raise EgressRefused(f"{host} resolves to {', '.join(refused)}, which the egress "
                                "policy refuses")
        return allowed

    def to_dict(self) -> dict[str, list[str] | list[int] | str | None]:
        return {"allow": list(self.allow), "ports": list(self.ports), "via": self.via}


def _is_network(entry: str) -> bool:
    try:
        ipaddress.ip_network(entry, strict=False)
    except ValueError:
        return False
    return True
