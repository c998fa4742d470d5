"""Gratuitous ARP and unsolicited NA between throwaway namespaces: a client's cache follows."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from ipaddress import IPv4Interface, IPv6Interface
from pathlib import Path

import pytest
from iolab import CHECKSUM_GOOD, Capture, IoLab, make_lab, tshark_fields, wait_for

from carpctl.io import addresses, links
from carpctl.io.announce import announce, send_gratuitous_arp, send_unsolicited_na

pytestmark = pytest.mark.netns

VIP4, VIP6 = IPv4Interface("198.51.100.100/24"), IPv6Interface("2001:db8::100/64")
OLD_MASTER_MAC = "02:00:00:00:00:99"
VIRTUAL_MAC = "00:00:5e:00:01:09"


@pytest.fixture
def lab() -> Iterator[IoLab]:
    yield from make_lab("ioannounce-")


@pytest.fixture
def takeover(lab: IoLab) -> tuple[IoLab, str, str, str]:
    """Node A takes the VIPs over; client C still has them at the old master's MAC."""
    a, c = lab.namespace("a"), lab.namespace("c")
    lab.veth(a, c)
    for namespace, host in ((a, 1), (c, 3)):
        lab.address(namespace, "lab0", f"198.51.100.{host}/24")
        lab.address(namespace, "lab0", f"2001:db8::{host}/64")
    lab.run(a, addresses.add, "lab0", [VIP4, VIP6])
    for vip in (VIP4, VIP6):
        lab.ip(c, "neigh", "replace", str(vip.ip), "lladdr", OLD_MASTER_MAC, "dev", "lab0")
        lab.ip(c, "neigh", "change", str(vip.ip), "dev", "lab0", "nud", "stale")
    mac = lab.run(a, links.mac, "lab0").hex(":")
    return lab, a, c, mac


def neighbour_mac(lab: IoLab, namespace: str, address: str) -> str | None:
    entries = json.loads(lab.ip(namespace, "-j", "neigh", "show", address, "dev", "lab0"))
    return entries[0].get("lladdr") if entries else None


def cache_says(
    lab: IoLab, namespace: str, vip: IPv4Interface | IPv6Interface, mac: str
) -> Callable[[], bool]:
    return lambda: neighbour_mac(lab, namespace, str(vip.ip)) == mac


def test_client_cache_follows_the_announcement(
    takeover: tuple[IoLab, str, str, str], tmp_path: Path
) -> None:
    lab, a, c, mac = takeover
    assert neighbour_mac(lab, c, str(VIP4.ip)) == OLD_MASTER_MAC
    assert neighbour_mac(lab, c, str(VIP6.ip)) == OLD_MASTER_MAC
    capture = Capture(lab, c, tmp_path / "announce.pcap", "arp or (icmp6 and ip6[40] == 136)")
    assert lab.run(a, announce, "lab0", [VIP4.ip, VIP6.ip]) == 2
    for vip in (VIP4, VIP6):
        assert wait_for(cache_says(lab, c, vip, mac), 3, 0.02), vip
    capture.stop()
    garp = tshark_fields(
        capture.path,
        ["arp.isgratuitous", "arp.opcode", "arp.src.hw_mac", "arp.src.proto_ipv4", "eth.dst"],
        display_filter="arp",
    )
    assert garp == [["1", "1", mac, str(VIP4.ip), "ff:ff:ff:ff:ff:ff"]]
    na = tshark_fields(
        capture.path,
        [
            "icmpv6.nd.na.flag.o",
            "icmpv6.nd.na.flag.s",
            "icmpv6.nd.na.flag.r",
            "icmpv6.nd.na.target_address",
            "icmpv6.opt.linkaddr",
            "icmpv6.checksum.status",
            "ipv6.hlim",
            "ipv6.dst",
        ],
        display_filter="icmpv6.type == 136",
    )
    assert na == [["1", "0", "0", str(VIP6.ip), mac, CHECKSUM_GOOD, "255", "ff02::1"]]


def test_announce_with_a_given_mac(takeover: tuple[IoLab, str, str, str]) -> None:
    lab, a, c, _ = takeover
    virtual = bytes.fromhex(VIRTUAL_MAC.replace(":", ""))
    assert lab.run(a, send_gratuitous_arp, "lab0", virtual, [VIP4.ip]) == 1
    assert lab.run(a, send_unsolicited_na, "lab0", virtual, [VIP6.ip]) == 1
    for vip in (VIP4, VIP6):
        assert wait_for(cache_says(lab, c, vip, VIRTUAL_MAC), 3, 0.02), vip


def test_nothing_to_announce(takeover: tuple[IoLab, str, str, str]) -> None:
    lab, a, _, _ = takeover
    assert lab.run(a, announce, "lab0", []) == 0


def test_announce_on_a_missing_interface_raises(takeover: tuple[IoLab, str, str, str]) -> None:
    lab, a, _, _ = takeover
    with pytest.raises(OSError, match="No such device"):
        lab.run(a, announce, "lab9", [VIP4.ip])
    with pytest.raises(OSError, match="No such device"):
        lab.run(a, send_unsolicited_na, "lab9", b"\x02" * 6, [VIP6.ip])
