"""Link-layer frames to IP datagrams, for every supported link type."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carpctl.capture import frames
from carpctl.capture.frames import Datagram, UnsupportedLinkType, ip_datagram

IPV4 = bytes.fromhex("45100038ac274000ff702d0ac0000201e0000012") + bytes(36)
IPV6 = bytes.fromhex("60000000002470ff") + bytes(32) + bytes(36)
MAC = bytes.fromhex("00005e000001")
ETH_DST = bytes.fromhex("01005e000012")


def ethernet(
    payload: bytes, ethertype: int = 0x0800, tags: tuple[tuple[int, int], ...] = ()
) -> bytes:
    header = ETH_DST + MAC
    for tpid, tci in tags:
        header += struct.pack("!HH", tpid, tci)
    return header + struct.pack("!H", ethertype) + payload


def sll(payload: bytes, protocol: int = 0x0800, hatype: int = 1, addr_len: int = 6) -> bytes:
    address = MAC + b"\0\0"
    return struct.pack("!HHH8sH", 0, hatype, addr_len, address, protocol) + payload


def sll2(payload: bytes, protocol: int = 0x0800, hatype: int = 1) -> bytes:
    return struct.pack("!HHIHBB8s", protocol, 0, 3, hatype, 0, 6, MAC + b"\0\0") + payload


def test_ethernet() -> None:
    assert ip_datagram(1, ethernet(IPV4)) == Datagram(IPV4, "00:00:5e:00:00:01")
    assert ip_datagram(1, ethernet(IPV6, 0x86DD)) == Datagram(IPV6, "00:00:5e:00:00:01")


def test_vlan_tags_802_1q_and_802_1ad() -> None:
    assert ip_datagram(1, ethernet(IPV4, tags=((0x8100, 0x2000 | 10),))) == Datagram(
        IPV4, "00:00:5e:00:00:01", (10,)
    )
    qinq = ethernet(IPV6, 0x86DD, tags=((0x88A8, 100), (0x8100, 0xE000 | 20)))
    assert ip_datagram(1, qinq) == Datagram(IPV6, "00:00:5e:00:00:01", (100, 20))


@pytest.mark.parametrize(
    "frame",
    [
        ethernet(bytes(28), 0x0806),  # ARP
        ethernet(bytes(40), 0x0042),  # 802.3 length field
        ethernet(IPV4)[:13],  # shorter than the Ethernet header
        ethernet(b"", tags=((0x8100, 5),))[:15],  # a cut VLAN tag
        ethernet(bytes(28), 0x0806, tags=((0x8100, 5),)),  # ARP on a VLAN
    ],
)
def test_non_ip_ethernet_frames_are_none(frame: bytes) -> None:
    assert ip_datagram(1, frame) is None


def test_linux_cooked_v1_and_v2() -> None:
    assert ip_datagram(113, sll(IPV4)) == Datagram(IPV4, "00:00:5e:00:00:01")
    assert ip_datagram(113, sll(IPV6, 0x86DD, hatype=772, addr_len=0)) == Datagram(IPV6)
    assert ip_datagram(113, sll(bytes(28), 0x0806)) is None
    assert ip_datagram(276, sll2(IPV4)) == Datagram(IPV4, "00:00:5e:00:00:01")
    assert ip_datagram(276, sll2(IPV6, 0x86DD, hatype=65534)) == Datagram(IPV6)
    assert ip_datagram(276, sll2(IPV4)[:19]) is None


@pytest.mark.parametrize("linktype", [12, 101])
def test_raw_ip(linktype: int) -> None:
    assert ip_datagram(linktype, IPV4) == Datagram(IPV4)
    assert ip_datagram(linktype, IPV6) == Datagram(IPV6)
    assert ip_datagram(linktype, b"") is None
    assert ip_datagram(linktype, b"\x10abc") is None


def test_raw_ipv4_and_ipv6_link_types() -> None:
    assert ip_datagram(228, IPV4) == Datagram(IPV4)
    assert ip_datagram(228, IPV6) is None
    assert ip_datagram(229, IPV6) == Datagram(IPV6)
    assert ip_datagram(229, IPV4) is None


@pytest.mark.parametrize(
    ("linktype", "family", "payload"),
    [
        (0, struct.pack("<I", 2), IPV4),  # DLT_NULL from a little-endian host
        (0, struct.pack(">I", 2), IPV4),  # ... and from a big-endian one
        (0, struct.pack("<I", 28), IPV6),  # FreeBSD's AF_INET6
        (0, struct.pack("<I", 30), IPV6),  # Darwin's AF_INET6
        (108, struct.pack(">I", 24), IPV6),  # OpenBSD DLT_LOOP, network order
        (108, struct.pack(">I", 2), IPV4),
    ],
)
def test_bsd_loopback(linktype: int, family: bytes, payload: bytes) -> None:
    assert ip_datagram(linktype, family + payload) == Datagram(payload)


def test_bsd_loopback_non_ip() -> None:
    assert ip_datagram(0, struct.pack("<I", 7) + IPV4) is None
    assert ip_datagram(108, struct.pack("<I", 2) + IPV4) is None  # DLT_LOOP is big-endian
    assert ip_datagram(0, b"\2\0") is None


def test_unsupported_link_type() -> None:
    with pytest.raises(UnsupportedLinkType) as caught:
        ip_datagram(127, IPV4)  # 802.11 radiotap
    assert caught.value.linktype == 127
    assert str(caught.value) == "link type 127 is not supported"


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(frames.LINKTYPE_NAMES)), st.binary(max_size=80))
def test_any_frame_gives_a_datagram_or_none(linktype: int, frame: bytes) -> None:
    result = ip_datagram(linktype, frame)
    assert result is None or frame.endswith(result.data)
