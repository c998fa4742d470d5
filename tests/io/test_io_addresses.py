"""Virtual addresses via netlink, inside throwaway namespaces; a client pings them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from ipaddress import IPv4Interface, IPv6Interface

import pytest
from iolab import IoLab, make_lab, ping

from carpctl.io import addresses
from carpctl.io.addresses import CARPCTL_PROTO, AddressTable
from carpctl.io.rtnl import IPInterface, Rtnl

pytestmark = pytest.mark.netns

REAL4, REAL6 = IPv4Interface("198.51.100.1/24"), IPv6Interface("2001:db8::1/64")
VIP4, VIP6 = IPv4Interface("198.51.100.100/24"), IPv6Interface("2001:db8::100/64")
VIPS: list[IPInterface] = [VIP4, VIP6]


@pytest.fixture
def lab() -> Iterator[IoLab]:
    yield from make_lab("ioaddr-")


@pytest.fixture
def hosts(lab: IoLab) -> tuple[IoLab, str, str]:
    """Node A (duplicate address detection on, as on a real host) and a client C."""
    a, c = lab.namespace("a", dad=True), lab.namespace("c")
    lab.veth(a, c)
    lab.address(a, "lab0", str(REAL4))
    lab.address(c, "lab0", "198.51.100.3/24")
    lab.address(c, "lab0", "2001:db8::3/64")
    return lab, a, c


def flags_of(lab: IoLab, namespace: str, address: IPInterface) -> list[str]:
    """iproute2's view of an address's flags (an independent reader)."""
    shown = json.loads(lab.ip(namespace, "-j", "address", "show", "dev", "lab0"))
    for info in shown[0]["addr_info"]:
        if info["local"] == str(address.ip) and info["prefixlen"] == address.network.prefixlen:
            return [key for key in ("tentative", "nodad", "dadfailed") if info.get(key)]
    raise AssertionError(f"{address} is not on lab0: {shown}")


def test_add_is_idempotent_and_tags(hosts: tuple[IoLab, str, str]) -> None:
    lab, a, _ = hosts
    assert lab.run(a, addresses.add, "lab0", VIPS) == VIPS
    assert lab.run(a, addresses.add, "lab0", VIPS) == []  # already there: not an error
    assert lab.run(a, addresses.add, "lab0", [REAL4]) == []  # someone else's: left alone
    present = lab.run(a, addresses.present, "lab0")
    assert {REAL4, VIP4, VIP6} <= present
    tagged = lab.run(a, addresses.tagged, "lab0")
    assert tagged == {VIP4, VIP6}  # the real address carries no tag


def test_remove_is_idempotent(hosts: tuple[IoLab, str, str]) -> None:
    lab, a, _ = hosts
    lab.run(a, addresses.add, "lab0", VIPS)
    assert lab.run(a, addresses.remove, "lab0", VIPS) == VIPS
    assert lab.run(a, addresses.remove, "lab0", VIPS) == []  # already gone: not an error
    assert lab.run(a, addresses.remove, "lab9", VIPS) == []  # no such interface either
    present = lab.run(a, addresses.present, "lab0")
    assert REAL4 in present
    assert not present & set(VIPS)


def test_add_to_a_missing_interface_fails(hosts: tuple[IoLab, str, str]) -> None:
    lab, a, _ = hosts
    with pytest.raises(OSError, match="lab9"):
        lab.run(a, addresses.add, "lab9", VIPS)
    with pytest.raises(TypeError):
        lab.run(a, addresses.add, "lab0", ["198.51.100.100/24"])  # type: ignore[list-item]


def test_ipv6_is_usable_at_once(hosts: tuple[IoLab, str, str]) -> None:
    lab, a, _ = hosts
    # The control: an address added the ordinary way starts tentative here.
    lab.address(a, "lab0", "2001:db8::50/64")
    assert "tentative" in flags_of(lab, a, IPv6Interface("2001:db8::50/64"))
    lab.run(a, addresses.add, "lab0", [VIP6])
    assert flags_of(lab, a, VIP6) == ["nodad"]

    def usable() -> bool:
        with AddressTable() as table:
            return table.usable("lab0", VIP6)

    assert lab.run(a, usable)


def test_stale_addresses_of_a_crashed_run_are_removed(hosts: tuple[IoLab, str, str]) -> None:
    lab, a, _ = hosts
    admin = IPv4Interface("203.0.113.5/24")
    lab.address(a, "lab0", str(admin))  # an operator's address: must survive
    # The crashed run: tagged VIPs, and one from before tagging (plain ``ip``).
    lab.run(a, addresses.add, "lab0", [VIP4, VIP6, IPv4Interface("203.0.113.100/24")])
    untagged = IPv4Interface("198.51.100.101/24")
    lab.address(a, "lab0", str(untagged))

    def restart() -> list[IPInterface]:
        with AddressTable(Rtnl()) as table:
            # The configured list names the untagged one, with another prefix length.
            return table.remove_stale("lab0", configured=[IPv4Interface("198.51.100.101/32")])

    removed = lab.run(a, restart)
    expected = {VIP4, VIP6, IPv4Interface("203.0.113.100/24"), untagged}
    assert set(removed) == expected
    present = lab.run(a, addresses.present, "lab0")
    assert {REAL4, admin} <= present
    assert not present & expected
    assert lab.run(a, addresses.remove_stale, "lab0") == []  # nothing left to do
    assert lab.run(a, addresses.remove_stale, "lab9") == []


def test_tag_is_ifa_proto(hosts: tuple[IoLab, str, str]) -> None:
    lab, a, _ = hosts
    lab.run(a, addresses.add, "lab0", VIPS)

    def protos() -> dict[IPInterface, int]:
        with Rtnl() as rtnl:
            index = int(rtnl.link("lab0")["index"])
            return {e.interface: e.proto for e in rtnl.addresses(index)}

    seen = lab.run(a, protos)
    assert seen[VIP4] == seen[VIP6] == CARPCTL_PROTO
    assert seen[REAL4] == 0


def test_client_reaches_the_vip_only_while_it_is_added(hosts: tuple[IoLab, str, str]) -> None:
    lab, a, c = hosts
    lab.ip(a, "address", "add", "2001:db8::1/64", "dev", "lab0", "nodad")
    for vip in VIPS:
        assert not lab.run(c, ping, str(vip.ip), 0.3)
    lab.run(a, addresses.add, "lab0", VIPS)
    for vip in VIPS:
        assert lab.run(c, ping, str(vip.ip)), f"{vip} does not answer"
    lab.run(a, addresses.remove, "lab0", VIPS)
    for vip in VIPS:
        assert not lab.run(c, ping, str(vip.ip), 0.3), f"{vip} still answers"
