"""The address guard: the fixed set, private networks where set, settings that add, wrapped IPv4 unwrapped."""

from __future__ import annotations

import pytest

from services.common.netguard import AddressGuard
from services.common.settings import Settings

#: (address, blocked in ``seymour up`` (private allowed), blocked on a provisioned host (private blocked))
DECISIONS = [
    ("169.254.169.254", True, True),
    ("169.254.0.1", True, True),
    ("fd00:ec2::254", True, True),
    ("fe80::1%eth0", True, True),
    ("0.0.0.0", True, True),
    ("0.1.2.3", True, True),
    ("::", True, True),
    ("224.0.0.1", True, True),
    ("ff02::1", True, True),
    ("255.255.255.255", True, True),
    ("::ffff:169.254.169.254", True, True),
    ("::ffff:0.0.0.0", True, True),
    ("64:ff9b::a9fe:a9fe", True, True),  # NAT64 of 169.254.169.254
    ("2002:a9fe:a9fe::1", True, True),  # 6to4 of 169.254.169.254
    ("::a9fe:a9fe", True, True),  # IPv4-compatible 169.254.169.254
    ("2001:0:4136:e378:8000:63bf:5601:5601", True, True),  # Teredo, client 169.254.169.254 (inverted bits)
    ("127.0.0.1", False, True),
    ("127.9.9.9", False, True),
    ("::1", False, True),
    ("::ffff:127.0.0.1", False, True),
    ("64:ff9b::7f00:1", False, True),  # NAT64 of 127.0.0.1
    ("2002:7f00:1::", False, True),  # 6to4 of 127.0.0.1
    ("::7f00:1", False, True),  # IPv4-compatible 127.0.0.1
    ("10.1.2.3", False, True),
    ("172.16.0.1", False, True),
    ("192.168.1.1", False, True),
    ("100.64.0.1", False, True),
    ("fd12::1", False, True),
    ("93.184.215.14", False, False),
    ("2606:2800:21f:cb07:6820:80da:af6b:8b2c", False, False),
    ("64:ff9b::5db8:d70e", False, False),  # NAT64 of a public address
    ("fd00:ec2::253", False, True),
]


@pytest.mark.parametrize(("address", "up", "provisioned"), DECISIONS, ids=[row[0] for row in DECISIONS])
def test_decisions(address: str, up: bool, provisioned: bool) -> None:
    assert (AddressGuard().blocking_network(address) is not None) == up
    assert (AddressGuard(block_private=True).blocking_network(address) is not None) == provisioned


def test_blocked_networks_setting_adds_to_the_fixed_set() -> None:
    """Setting SEYMOUR_BLOCKED_NETWORKS used to replace the metadata default: now it only adds."""
    guard = AddressGuard.from_settings(Settings(blocked_networks=["203.0.113.0/24"]))
    assert guard.blocking_network("203.0.113.7") is not None
    assert guard.blocking_network("169.254.169.254") is not None
    assert guard.blocking_network("0.0.0.0") is not None


@pytest.mark.parametrize(
    ("allowed", "address", "blocked"),
    [
        (["169.254.169.254/32"], "169.254.169.254", False),
        (["169.254.169.254/32"], "169.254.169.253", True),
        (["0.0.0.0/0"], "169.254.169.254", True),  # a catch-all is not an explicit allow of metadata
        (["127.0.0.1/32"], "127.0.0.1", False),
        (["127.0.0.1/32"], "127.0.0.2", True),
    ],
    ids=["metadata-named", "its-neighbour", "catch-all", "one-loopback", "other-loopback"],
)
def test_only_an_explicit_allow_reopens(allowed: list[str], address: str, blocked: bool) -> None:
    guard = AddressGuard(allowed=allowed, block_private=True)
    assert (guard.blocking_network(address) is not None) == blocked


def test_private_networks_are_open_by_default_and_blocked_when_set() -> None:
    assert Settings().block_private_networks is False
    assert AddressGuard.from_settings(Settings(block_private_networks=True)).blocking_network("10.0.0.1")
