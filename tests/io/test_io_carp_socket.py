"""CarpSocket between two throwaway namespaces: real packets, checked by the core and tshark."""

from __future__ import annotations

import errno
import json
import os
import socket
import time
from collections.abc import Iterator
from ipaddress import IPv4Address, IPv4Interface, IPv6Address, IPv6Interface, ip_address
from pathlib import Path

import pytest
from carpnet import A4, A6, B4, B6, VHID, advertisement, carp_pair, receive_until, receiver
from iolab import CHECKSUM_GOOD, Capture, IoLab, make_lab, tshark_fields, wait_readable

from carpctl.core import wire
from carpctl.core.effects import IPAddress
from carpctl.io import addresses
from carpctl.io.carp_socket import CarpSocket
from carpctl.io.links import Links

pytestmark = pytest.mark.netns

GROUP = {4: ip_address(wire.CARP_IPV4_GROUP), 6: ip_address(wire.CARP_IPV6_GROUP)}
SOURCE: dict[int, IPAddress] = {4: A4, 6: A6}
# What Linux says when the source is not ours or the link is down (IPv6 drops
# the addresses of a downed interface, so both end up as EINVAL there).
SEND_ERRORS = "Network is unreachable|Network is down|Invalid argument|Cannot assign"


@pytest.fixture
def lab() -> Iterator[IoLab]:
    yield from make_lab("iosock-")


@pytest.fixture
def pair(lab: IoLab) -> tuple[IoLab, str, str]:
    a, b = carp_pair(lab)
    return lab, a, b


def link_local(lab: IoLab, namespace: str) -> IPv6Address:
    def find() -> IPv6Address:
        with Links() as links:
            own = links.own_addresses("lab0", 6)
        found = next(i.ip for i in own if i.ip.is_link_local)
        assert isinstance(found, IPv6Address)
        return found

    return lab.run(namespace, find)


@pytest.mark.parametrize("family", [4, 6])
def test_socket_options(pair: tuple[IoLab, str, str], family: int) -> None:
    lab, a, _ = pair
    sock = lab.run(a, CarpSocket.open, "lab0", family)
    try:
        af = socket.AF_INET if family == 4 else socket.AF_INET6
        view = socket.socket(af, socket.SOCK_RAW, wire.IPPROTO_CARP, fileno=os.dup(sock.fileno()))
        with view:
            opt = view.getsockopt
            assert opt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, 16).rstrip(b"\0") == b"lab0"
            assert not os.get_blocking(sock.fileno())
            if family == 4:
                assert opt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP) == 0
                assert opt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL) == 255
                assert opt(socket.IPPROTO_IP, socket.IP_TTL) == 255
            else:
                assert opt(socket.IPPROTO_IPV6, socket.IPV6_CHECKSUM) == -1
                assert opt(socket.IPPROTO_IPV6, socket.IPV6_RECVHOPLIMIT) == 1
                assert opt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP) == 0
                assert opt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS) == 255
                assert opt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS) == 255
        groups = json.loads(lab.ip(a, "-j", "maddress", "show", "dev", "lab0"))
        joined = {m.get("address") for entry in groups for m in entry.get("maddr", [])}
        assert str(GROUP[family]) in joined
        assert sock.source == (A4 if family == 4 else link_local(lab, a))
        assert sock.destination == GROUP[family]
    finally:
        sock.close()


@pytest.mark.parametrize("family", [4, 6])
def test_advertisement_reaches_the_peer_and_the_core_accepts_it(
    pair: tuple[IoLab, str, str], family: int, tmp_path: Path
) -> None:
    lab, a, b = pair
    capture = Capture(lab, b, tmp_path / "carp.pcap", "ip proto 112 or ip6 proto 112", count=1)
    sender = lab.run(a, CarpSocket.open, "lab0", family, source=SOURCE[family])
    listener = lab.run(b, CarpSocket.open, "lab0", family)
    try:
        payload = advertisement(counter=42)
        lab.run(a, sender.send, payload)
        got = receive_until(lab, b, listener, 1)
        assert len(got) == 1
        packet = got[0]
        assert (packet.family, packet.src, packet.dst, packet.ttl) == (
            family,
            SOURCE[family],
            GROUP[family],
            255,
        )
        assert packet.payload == payload
        assert (packet.datagram is not None) == (family == 4)
        core = receiver()
        assert packet.deliver(core, now=1.0) == []  # INIT: verified, nothing to do
        assert core.accepted == 1
        assert not core.drops
        # Multicast loopback is off: the sender never hears itself.
        assert receive_until(lab, a, sender, 1, timeout=0.3) == []
    finally:
        sender.close()
        listener.close()
    capture.wait()
    if family == 4:
        ip_fields = ["ip.ttl", "ip.dst", "ip.dsfield.dscp", "ip.flags.df"]
    else:
        ip_fields = ["ipv6.hlim", "ipv6.dst", "ipv6.tclass.dscp"]
    rows = tshark_fields(
        capture.path,
        ["carp.vhid", "carp.checksum.status", "carp.authlen", *ip_fields],
        display_filter="carp",
    )
    assert len(rows) == 1, rows
    # DSCP 56 (CS7) as FreeBSD 14 sends by default.
    assert rows[0][:6] == [str(VHID), CHECKSUM_GOOD, "7", "255", str(GROUP[family]), "56"]
    if family == 4:
        assert rows[0][6] in ("1", "True")  # don't fragment, as every CARP sender


def test_ipv4_source_is_the_real_address_even_when_a_virtual_one_is_primary(
    pair: tuple[IoLab, str, str],
) -> None:
    """A stale virtual address left as the primary one must not become the source."""
    lab, a, b = pair
    vip = IPv4Interface("198.51.100.100/24")
    lab.ip(a, "address", "del", f"{A4}/24", "dev", "lab0")
    lab.run(a, addresses.add, "lab0", [vip])  # the tagged VIP is primary now
    lab.address(a, "lab0", f"{A4}/24")  # the real address comes back as secondary
    route = lab.ip(a, "route", "get", wire.CARP_IPV4_GROUP, "oif", "lab0")
    assert f"src {vip.ip}" in route  # what the kernel alone would have picked

    sender = lab.run(a, CarpSocket.open, "lab0", 4)  # source picked: not the tagged VIP
    listener = lab.run(b, CarpSocket.open, "lab0", 4)
    try:
        assert sender.source == A4
        lab.run(a, sender.send, advertisement())
        (packet,) = receive_until(lab, b, listener, 1)
        assert packet.src == A4
        # A virtual address added after opening changes nothing either.
        lab.run(a, addresses.add, "lab0", [IPv4Interface("203.0.113.100/24")])
        lab.run(a, sender.send, advertisement())
        (packet,) = receive_until(lab, b, listener, 1)
        assert packet.src == A4
    finally:
        sender.close()
        listener.close()


def test_ipv4_source_skips_excluded_addresses(pair: tuple[IoLab, str, str]) -> None:
    lab, a, _ = pair
    lab.ip(a, "address", "del", f"{A4}/24", "dev", "lab0")
    lab.address(a, "lab0", "198.51.100.100/24")  # untagged (a pre-tag run), primary
    lab.address(a, "lab0", f"{A4}/24")
    exclude = [IPv4Address("198.51.100.100")]
    sender = lab.run(a, CarpSocket.open, "lab0", 4, exclude=exclude)
    try:
        assert sender.source == A4
    finally:
        sender.close()


def test_ipv6_source_is_the_given_address_after_a_virtual_one_is_added(
    pair: tuple[IoLab, str, str],
) -> None:
    lab, a, b = pair
    sender = lab.run(a, CarpSocket.open, "lab0", 6, source=A6)
    automatic = lab.run(a, CarpSocket.open, "lab0", 6)
    listener = lab.run(b, CarpSocket.open, "lab0", 6)
    try:
        lab.run(a, addresses.add, "lab0", [IPv6Interface("2001:db8::100/64")])
        lab.run(a, sender.send, advertisement())
        lab.run(a, automatic.send, advertisement())
        got = receive_until(lab, b, listener, 2)
        assert [p.src for p in got] == [A6, link_local(lab, a)]
    finally:
        sender.close()
        automatic.close()
        listener.close()


@pytest.mark.parametrize("family", [4, 6])
def test_unicast_peer(pair: tuple[IoLab, str, str], family: int) -> None:
    lab, a, b = pair
    peer = B4 if family == 4 else B6
    sender = lab.run(a, CarpSocket.open, "lab0", family, source=SOURCE[family], peer=peer)
    listener = lab.run(b, CarpSocket.open, "lab0", family)
    try:
        assert sender.destination == peer
        lab.run(a, sender.send, advertisement())
        (packet,) = receive_until(lab, b, listener, 1)
        assert (packet.src, packet.dst, packet.ttl) == (SOURCE[family], peer, 255)
        core = receiver()
        packet.deliver(core, now=0.0)
        assert core.accepted == 1
    finally:
        sender.close()
        listener.close()


def test_receive_drains_without_blocking(pair: tuple[IoLab, str, str]) -> None:
    lab, a, b = pair
    sender = lab.run(a, CarpSocket.open, "lab0", 4)
    listener = lab.run(b, CarpSocket.open, "lab0", 4)
    try:
        assert lab.run(b, listener.receive) == []  # nothing waiting: returns at once
        for counter in range(12):
            lab.run(a, sender.send, advertisement(counter=counter))
        got = receive_until(lab, b, listener, 12)
        assert [wire.parse(p.payload).counter for p in got] == list(range(12))
        assert lab.run(b, listener.receive) == []
    finally:
        sender.close()
        listener.close()


def test_receive_limit(pair: tuple[IoLab, str, str]) -> None:
    lab, a, b = pair
    sender = lab.run(a, CarpSocket.open, "lab0", 4)
    listener = lab.run(b, CarpSocket.open, "lab0", 4)
    try:
        for counter in range(4):
            lab.run(a, sender.send, advertisement(counter=counter))
        assert wait_readable(listener.fileno(), 3)
        time.sleep(0.1)  # the other three follow within microseconds on a veth
        batches = [lab.run(b, listener.receive, 3), lab.run(b, listener.receive, 3)]
        assert [len(batch) for batch in batches] == [3, 1]
    finally:
        sender.close()
        listener.close()


@pytest.mark.parametrize("family", [4, 6])
def test_send_failures_raise_oserror(pair: tuple[IoLab, str, str], family: int) -> None:
    lab, a, _ = pair
    sender = lab.run(a, CarpSocket.open, "lab0", family, source=SOURCE[family])
    try:
        sender.source = ip_address("198.51.100.99" if family == 4 else "2001:db8::99")
        with pytest.raises(OSError, match=SEND_ERRORS):  # not an address of ours
            lab.run(a, sender.send, advertisement())
        sender.source = SOURCE[family]
        lab.run(a, sender.send, advertisement())
        lab.ip(a, "link", "set", "lab0", "down")
        with pytest.raises(OSError, match=SEND_ERRORS):
            lab.run(a, sender.send, advertisement())
    finally:
        sender.close()


def test_open_errors(lab: IoLab) -> None:
    a = lab.namespace("a")
    b = lab.namespace("b")
    lab.veth(a, b)
    with pytest.raises(OSError, match="No such device") as missing:
        lab.run(a, CarpSocket.open, "lab9", 4)
    assert missing.value.errno == errno.ENODEV
    with pytest.raises(OSError, match="no IPv4 address") as no_address:
        lab.run(a, CarpSocket.open, "lab0", 4)
    assert no_address.value.errno == errno.EADDRNOTAVAIL
    with pytest.raises(ValueError, match="family"):
        lab.run(a, CarpSocket.open, "lab0", 5)
    with pytest.raises(ValueError, match="not an IPv4"):
        lab.run(a, CarpSocket.open, "lab0", 4, source=A6)
