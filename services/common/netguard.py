"""The one address guard for every outbound request Seymour makes (checks, webhooks, "Send test").

A monitored URL or a webhook URL is chosen by a user, so a request must not reach what the host running
it can reach and the user cannot: cloud metadata, link-local services, the host itself through
``0.0.0.0`` or ``::``. The guard decides on the address a socket is about to connect to — every address
a name resolved to, every redirect hop — so DNS tricks and redirects change nothing (DESIGN §9).

- :data:`ALWAYS_BLOCKED` is blocked whatever the settings say, unless an allowed network names (part
  of) it explicitly: metadata (v4 and v6), link-local, ``0.0.0.0/8``, ``::/128``, multicast, broadcast.
- :data:`PRIVATE` (RFC 1918, CGNAT, ULA, loopback) is blocked when ``block_private`` is set: provisioned
  regions and homes set it; ``seymour up`` leaves it off (it is your own machine).
- ``blocked`` settings ADD networks; they never replace the fixed set.
- The most specific matching network decides; an exact tie goes to allowed.
- IPv6 forms that carry an IPv4 address (IPv4-mapped and -compatible, NAT64 ``64:ff9b::/96``, 6to4
  ``2002::/16``, Teredo's client) are unwrapped: if the IPv4 inside is blocked, so is the address.
"""

from __future__ import annotations

import functools
import ipaddress
import socket
from collections.abc import Iterable
from typing import Any, Final

import aiohttp

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: Blocked unless explicitly allowed (Python's ``is_private`` & co. were wrong for some ranges before
#: 3.12.4: an explicit list).
ALWAYS_BLOCKED: Final[tuple[str, ...]] = (
    "0.0.0.0/8",  # "this host": connecting to 0.0.0.0 reaches a local service on Linux
    "169.254.0.0/16",  # link-local, cloud metadata 169.254.169.254
    "224.0.0.0/4",  # multicast
    "240.0.0.0/4",  # reserved, and 255.255.255.255 broadcast
    "::/128",  # unspecified: like 0.0.0.0, reaches the local host
    "fe80::/10",  # link-local
    "fd00:ec2::254/128",  # AWS metadata over IPv6
    "ff00::/8",  # multicast
)
#: Blocked when ``block_private`` is set.
PRIVATE: Final[tuple[str, ...]] = (
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "100.64.0.0/10",  # carrier-grade NAT
    "127.0.0.0/8",
    "198.18.0.0/15",  # benchmarking, often routed inside clouds
    "::1/128",
    "fc00::/7",  # unique local
)

_NAT64: Final = ipaddress.IPv6Network("64:ff9b::/96")
_COMPATIBLE: Final = ipaddress.IPv6Network("::/96")


class BlockedAddress(OSError):
    """Seymour refused to connect to an address in a blocked network."""


def embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries (mapped, compatible, NAT64, 6to4, Teredo client)."""
    found: list[ipaddress.IPv4Address] = []
    if ip.ipv4_mapped is not None:
        found.append(ip.ipv4_mapped)
    low = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip in _NAT64:
        found.append(low)
    if ip in _COMPATIBLE and int(ip) > 1:  # :: and ::1 are themselves, not IPv4
        found.append(low)
    if ip.sixtofour is not None:
        found.append(ip.sixtofour)
    if ip.teredo is not None:
        found.append(ip.teredo[1])
    return found


class AddressGuard:
    """Decides which addresses may be connected (see the module docstring for the rules)."""

    def __init__(
        self, blocked: Iterable[str] = (), allowed: Iterable[str] = (), *, block_private: bool = False
    ) -> None:
        extra = tuple(blocked)
        rules: list[tuple[IPNetwork, bool]] = []
        for text in (*ALWAYS_BLOCKED, *(PRIVATE if block_private else ()), *extra):
            rules.append((ipaddress.ip_network(text, strict=False), False))
        for text in allowed:
            rules.append((ipaddress.ip_network(text, strict=False), True))
        # Most specific first; for the same network, "allowed" (True) sorts first.
        rules.sort(key=lambda rule: (-rule[0].prefixlen, not rule[1]))
        self._rules = tuple(rules)
        self.block_private = block_private
        # ``ipaddress`` is slow (~20 µs a decision) and a runner meets the same addresses all day.
        self._cached = functools.lru_cache(maxsize=4096)(self._decide)

    @classmethod
    def from_settings(cls, settings: Any) -> AddressGuard:
        """The guard ``settings`` describe (``blocked_networks``, ``allowed_networks``,
        ``block_private_networks``)."""
        return cls(
            settings.blocked_networks,
            settings.allowed_networks,
            block_private=settings.block_private_networks,
        )

    def blocking_network(self, address: str) -> IPNetwork | None:
        """The blocked network ``address`` (or an IPv4 address inside it) falls in, or ``None`` when it
        may be connected. Not an IP address at all: blocked (``0.0.0.0/0``), never guessed. Cached."""
        return self._cached(address)

    def _decide(self, address: str) -> IPNetwork | None:
        try:
            ip: IPAddress = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return ipaddress.IPv4Network("0.0.0.0/0")
        candidates: list[IPAddress] = [ip]
        if isinstance(ip, ipaddress.IPv6Address):
            candidates.extend(embedded_ipv4(ip))
        for candidate in candidates:
            network = self._match(candidate)
            if network is not None:
                return network
        return None

    def _match(self, ip: IPAddress) -> IPNetwork | None:
        for network, allowed in self._rules:
            if ip.version == network.version and ip in network:
                return None if allowed else network
        return None

    def check(self, host: str, port: int) -> None:
        """Raise :class:`BlockedAddress` if ``host`` (an IP address) may not be connected."""
        network = self.blocking_network(host)
        if network is not None:
            raise BlockedAddress(f"refused to connect to {host}:{port}: in blocked network {network}")


def guarded_socket_factory(guard: AddressGuard) -> Any:
    """An aiohttp ``socket_factory`` that vets every address before a socket exists."""

    def factory(addr_info: Any) -> socket.socket:
        family, kind, proto, _, address = addr_info
        guard.check(address[0], address[1])
        return socket.socket(family=family, type=kind, proto=proto)

    return factory


def guarded_session(guard: AddressGuard, **kwargs: Any) -> aiohttp.ClientSession:
    """A client session whose every connection (redirect hops included) goes through ``guard``, with no
    proxy from the environment (a proxy would connect on our behalf, unguarded)."""
    connector = aiohttp.TCPConnector(socket_factory=guarded_socket_factory(guard), use_dns_cache=False)
    return aiohttp.ClientSession(connector=connector, trust_env=False, **kwargs)
