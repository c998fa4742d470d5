"""Shared test set-up: the ``netns`` marker, the golden vectors, an advert builder."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from ipaddress import IPv4Address, IPv6Address, ip_address
from pathlib import Path
from typing import Any

import pytest

from carpctl.core import auth, ip, wire

VECTORS = Path(__file__).parent / "vectors"

AdvertBuilder = Callable[..., bytes]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "netns: needs root and ip netns; creates throwaway network namespaces"
    )


@pytest.fixture(scope="session")
def vector_captures() -> list[dict[str, Any]]:
    """index.json's captures: file, nodes (vhid, password, vips ...), frames."""
    captures: list[dict[str, Any]] = json.loads((VECTORS / "index.json").read_text())["captures"]
    return captures


def build_advert(
    *,
    vhid: int = 1,
    advbase: int = 1,
    advskew: int = 0,
    counter: int = 0x0102030405060708,
    password: str = "secret",
    addrs: Iterable[str] = ("198.51.100.100",),
    src: str = "198.51.100.1",
    dst: str | None = None,
    ttl: int = 255,
    demote: int = 0,
    src_mac: bytes = bytes.fromhex("00005e000001"),
) -> bytes:
    """An Ethernet frame holding a CARP advertisement built with the core codec."""
    addresses = auth.VirtualHostAddresses.of(ip_address(a) for a in addrs)
    digest = auth.compute_digest(auth.carp_key(password), vhid, addresses, counter)
    header = wire.CarpHeader(vhid, advbase, advskew, counter, digest, demote=demote)
    source = ip_address(src)
    if isinstance(source, IPv4Address):
        packet = ip.build_ipv4(
            source, IPv4Address(dst or wire.CARP_IPV4_GROUP), wire.encode(header), ttl=ttl
        )
        return bytes.fromhex("01005e000012") + src_mac + b"\x08\x00" + packet
    packet = ip.build_ipv6(
        source, IPv6Address(dst or wire.CARP_IPV6_GROUP), wire.encode(header), hop_limit=ttl
    )
    return bytes.fromhex("333300000012") + src_mac + b"\x86\xdd" + packet


@pytest.fixture
def advert() -> AdvertBuilder:
    """``advert(vhid=..., password=..., addrs=..., src=...)`` -> Ethernet frame bytes."""
    return build_advert
