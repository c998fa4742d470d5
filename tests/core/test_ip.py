"""The IPv4/IPv6 datagram around an advertisement: parse and build."""

from __future__ import annotations

import struct
from ipaddress import IPv4Address, IPv6Address

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carpctl.core import ip, wire
from carpctl.core.checksum import internet_checksum
from carpctl.core.errors import DropReason, LocalProtocolError, RemoteProtocolError

FAST = settings(max_examples=150, deadline=None)

# Reference 3.4: the IPv4 datagram of s1's first advertisement.
S1_IPV4 = bytes.fromhex(
    "45100038ac274000ff702d0ac0000201e0000012"
    "210100070001c611323c5908329a6934"
    "d6ee44a9b504cd7edff3a2e3c1b7ae67c8fd97c1"
)
CARP = S1_IPV4[20:]
SRC4, DST4 = IPv4Address("192.0.2.1"), IPv4Address(wire.CARP_IPV4_GROUP)
SRC6, DST6 = IPv6Address("fe80::1"), IPv6Address(wire.CARP_IPV6_GROUP)

ipv4s = st.builds(IPv4Address, st.integers(0, 2**32 - 1))
ipv6s = st.builds(IPv6Address, st.integers(0, 2**128 - 1))
payloads = st.binary(max_size=80)


def _badip(packet: bytes, parser: object = ip.parse_ip) -> RemoteProtocolError:
    with pytest.raises(RemoteProtocolError) as info:
        parser(packet)  # type: ignore[operator]
    assert info.value.reason is DropReason.BADIP
    return info.value


def _hop_by_hop(next_header: int, pad_octets: int = 0) -> bytes:
    """A hop-by-hop options header of 8 * (1 + pad_octets) bytes, PadN-filled."""
    length = 8 * (1 + pad_octets)
    padn = bytes([1, length - 4]) + bytes(length - 4)
    return bytes([next_header, pad_octets]) + padn


def _ipv6_with(payload: bytes, next_header: int, payload_len: int | None = None) -> bytes:
    packet = bytearray(ip.build_ipv6(SRC6, DST6, payload, protocol=next_header))
    if payload_len is not None:
        packet[4:6] = payload_len.to_bytes(2, "big")
    return bytes(packet)


# --- IPv4 -----------------------------------------------------------------


def test_parse_reference_3_4() -> None:
    packet = ip.parse_ipv4(S1_IPV4)
    assert packet == ip.parse_ip(S1_IPV4)
    assert packet.version == 4
    assert packet.src == SRC4
    assert packet.dst == DST4
    assert packet.ttl == 255
    assert packet.protocol == wire.IPPROTO_CARP
    assert packet.header_checksum_ok
    assert packet.payload == CARP
    assert wire.decode(packet.payload).vhid == 1


def test_build_ipv4_reproduces_the_capture() -> None:
    # ucarp: TOS 0x10, DF, TTL 255; only the random IP ID differs per packet.
    built = ip.build_ipv4(SRC4, DST4, CARP, ident=0xAC27)
    assert built == S1_IPV4
    assert ip.IPV4_TOS_LEGACY == 0x10
    assert ip.IPV4_TOS_FREEBSD == 0xE0


def test_build_ipv4_defaults() -> None:
    built = ip.build_ipv4(SRC4, DST4, CARP)
    assert built[0] == 0x45
    assert built[1] == 0x10
    assert int.from_bytes(built[2:4], "big") == 56
    assert built[6:8] == b"\x40\x00"  # DF, no offset
    assert built[8] == 255
    assert built[9] == 112
    assert internet_checksum(built[:20]) == 0


@FAST
@given(
    src=ipv4s,
    dst=ipv4s,
    payload=payloads,
    ttl=st.integers(0, 255),
    tos=st.integers(0, 255),
    ident=st.integers(0, 0xFFFF),
    protocol=st.integers(0, 255),
)
def test_ipv4_round_trip(
    *,
    src: IPv4Address,
    dst: IPv4Address,
    payload: bytes,
    ttl: int,
    tos: int,
    ident: int,
    protocol: int,
) -> None:
    built = ip.build_ipv4(src, dst, payload, ttl=ttl, tos=tos, ident=ident, protocol=protocol)
    assert len(built) == 20 + len(payload)
    assert built[1] == tos
    assert built[4:6] == ident.to_bytes(2, "big")
    packet = ip.parse_ip(built)
    assert packet == ip.IPPacket(4, src, dst, ttl, protocol, payload, header_checksum_ok=True)


@FAST
@given(payloads, st.binary(min_size=1, max_size=30))
def test_ipv4_ethernet_padding_is_dropped(payload: bytes, padding: bytes) -> None:
    built = ip.build_ipv4(SRC4, DST4, payload)
    assert ip.parse_ip(built + padding).payload == payload


def test_ipv4_short_capture_keeps_what_is_there() -> None:
    # A snaplen-truncated capture: the CARP decoder reports the truncation.
    packet = ip.parse_ip(S1_IPV4[:40])
    assert packet.payload == CARP[:20]
    with pytest.raises(RemoteProtocolError) as info:
        wire.decode(packet.payload)
    assert info.value.reason is DropReason.BADLEN


def test_ipv4_options_are_skipped() -> None:
    options = bytes([0x94, 0x04, 0x00, 0x00])  # Router Alert
    header = bytearray(S1_IPV4[:20] + options)
    header[0] = 0x46
    header[2:4] = (24 + len(CARP)).to_bytes(2, "big")
    header[10:12] = b"\x00\x00"
    header[10:12] = internet_checksum(bytes(header)).to_bytes(2, "big")
    packet = ip.parse_ip(bytes(header) + CARP)
    assert packet.payload == CARP
    assert packet.header_checksum_ok


def test_ipv4_bad_header_checksum_is_reported_not_raised() -> None:
    corrupted = S1_IPV4[:10] + b"\x00\x00" + S1_IPV4[12:]
    packet = ip.parse_ip(corrupted)
    assert not packet.header_checksum_ok
    assert packet.payload == CARP


def test_ipv4_ttl_is_reported() -> None:
    built = ip.build_ipv4(SRC4, DST4, CARP, ttl=1)
    assert ip.parse_ip(built).ttl == 1


@pytest.mark.parametrize(
    "flags_fragment",
    [0x2000, 0x0001, 0x1FFF, 0x2001, 0x6000, 0x4001],
    ids=["MF", "offset 1", "max offset", "MF+offset", "DF+MF", "DF+offset"],
)
def test_ipv4_fragments_are_refused(flags_fragment: int) -> None:
    packet = bytearray(S1_IPV4)
    packet[6:8] = flags_fragment.to_bytes(2, "big")
    assert "fragment" in str(_badip(bytes(packet)))
    assert "fragment" in str(_badip(bytes(packet), ip.parse_ipv4))


@pytest.mark.parametrize("flags_fragment", [0x0000, 0x4000, 0x8000])
def test_ipv4_unfragmented_flags_are_accepted(flags_fragment: int) -> None:
    packet = bytearray(S1_IPV4)
    packet[6:8] = flags_fragment.to_bytes(2, "big")
    assert ip.parse_ip(bytes(packet)).payload == CARP


@pytest.mark.parametrize(
    "packet",
    [
        S1_IPV4[:19],  # shorter than a header
        b"\x44" + S1_IPV4[1:],  # IHL 4 words
        b"\x4f" + S1_IPV4[1:],  # IHL 60 bytes, more than is there
        S1_IPV4[:2] + b"\x00\x13" + S1_IPV4[4:],  # total length < header length
        b"\x65" + S1_IPV4[1:],  # IPv6 version nibble
    ],
    ids=["short", "ihl<5", "ihl>len", "total<ihl", "version 6"],
)
def test_ipv4_malformed(packet: bytes) -> None:
    _badip(packet, ip.parse_ipv4)


# --- IPv6 -----------------------------------------------------------------


def test_build_ipv6_layout() -> None:
    built = ip.build_ipv6(SRC6, DST6, CARP, traffic_class=0xE0)
    assert len(built) == 40 + 36
    assert built[:4] == bytes([0x6E, 0x00, 0x00, 0x00])  # version 6, TC 0xe0, flow 0
    assert int.from_bytes(built[4:6], "big") == 36
    assert built[6] == 112
    assert built[7] == 255
    assert built[8:24] == SRC6.packed
    assert built[24:40] == DST6.packed
    assert built[40:] == CARP


@FAST
@given(ipv6s, ipv6s, payloads, st.integers(0, 255), st.integers(0, 255))
def test_ipv6_round_trip(
    src: IPv6Address, dst: IPv6Address, payload: bytes, hop_limit: int, traffic_class: int
) -> None:
    built = ip.build_ipv6(src, dst, payload, hop_limit=hop_limit, traffic_class=traffic_class)
    packet = ip.parse_ip(built)
    assert packet == ip.IPPacket(6, src, dst, hop_limit, 112, payload)
    assert packet == ip.parse_ipv6(built)


@FAST
@given(
    ipv6s,
    ipv6s,
    payloads,
    st.lists(st.tuples(st.sampled_from([0, 43, 60]), st.integers(0, 3)), max_size=3),
)
def test_ipv6_round_trip_with_extension_headers(
    src: IPv6Address,
    dst: IPv6Address,
    payload: bytes,
    chain: list[tuple[int, int]],
) -> None:
    # Hop-by-hop (0), routing (43) and destination options (60) are skipped.
    kinds = [kind for kind, _ in chain]
    extensions = b""
    for i, (_kind, pad) in enumerate(chain):
        following = kinds[i + 1] if i + 1 < len(kinds) else wire.IPPROTO_CARP
        extensions += _hop_by_hop(following, pad)
    first = kinds[0] if kinds else wire.IPPROTO_CARP
    built = ip.build_ipv6(src, dst, extensions + payload, protocol=first)
    packet = ip.parse_ip(built)
    assert packet.protocol == wire.IPPROTO_CARP
    assert packet.payload == payload
    assert (packet.src, packet.dst, packet.ttl) == (src, dst, 255)


def test_ipv6_hop_by_hop_then_carp() -> None:
    built = ip.build_ipv6(SRC6, DST6, _hop_by_hop(112) + CARP, protocol=0)
    packet = ip.parse_ip(built)
    assert packet.protocol == 112
    assert packet.payload == CARP
    assert wire.decode(packet.payload).vhid == 1


def test_ipv6_fragment_is_refused() -> None:
    fragment = bytes([112, 0, 0x00, 0x01, 0, 0, 0, 1])  # offset 0, MF
    assert "fragment" in str(_badip(_ipv6_with(fragment + CARP, 44)))
    # Also behind a hop-by-hop header.
    assert "fragment" in str(_badip(_ipv6_with(_hop_by_hop(44) + fragment + CARP, 0)))
    # Even an atomic fragment (offset 0, no MF) is refused.
    atomic = bytes([112, 0, 0, 0, 0, 0, 0, 1])
    _badip(_ipv6_with(atomic + CARP, 44), ip.parse_ipv6)


def test_ipv6_ethernet_padding_is_dropped() -> None:
    built = ip.build_ipv6(SRC6, DST6, CARP)
    assert ip.parse_ip(built + bytes(10)).payload == CARP


def test_ipv6_extension_header_past_the_payload_length() -> None:
    # Payload length says 8 bytes (the hop-by-hop header only): its next
    # header must not be read from whatever follows (Ethernet padding).
    packet = _ipv6_with(_hop_by_hop(0) + _hop_by_hop(112) + CARP, 0, payload_len=8)
    _badip(packet)
    # An extension header longer than the payload length says.
    _badip(_ipv6_with(_hop_by_hop(112, pad_octets=2), 0, payload_len=8))


@pytest.mark.parametrize(
    "packet",
    [
        bytes(39),
        b"\x60" + bytes(38),
        b"\x40" + bytes(39),  # IPv4 version nibble
        _ipv6_with(b"\x70\x00\x00\x00", 0),  # hop-by-hop header truncated
        _ipv6_with(_hop_by_hop(0), 0),  # second hop-by-hop missing
    ],
    ids=["short", "short-v6", "version 4", "truncated ext", "missing ext"],
)
def test_ipv6_malformed(packet: bytes) -> None:
    _badip(packet, ip.parse_ipv6)


# --- parse_ip dispatch and arbitrary input --------------------------------


@pytest.mark.parametrize("first", [b"", b"\x00", b"\x50", b"\xff"])
def test_parse_ip_unknown_versions(first: bytes) -> None:
    _badip(first + bytes(60) if first else b"")


@FAST
@given(st.binary(max_size=100))
def test_arbitrary_bytes(data: bytes) -> None:
    for parser in (ip.parse_ip, ip.parse_ipv4, ip.parse_ipv6):
        try:
            packet = parser(data)
        except RemoteProtocolError as error:
            assert error.reason is DropReason.BADIP
            continue
        assert packet.version in {4, 6}
        assert len(packet.payload) <= len(data)


@FAST
@given(st.sampled_from([4, 6]), st.binary(min_size=40, max_size=100))
def test_arbitrary_bytes_with_a_plausible_version(version: int, data: bytes) -> None:
    # Random bytes mostly fail on the version nibble; force it.
    data = bytes([version << 4 | (5 if version == 4 else 0)]) + data[1:]
    try:
        ip.parse_ip(data)
    except RemoteProtocolError as error:
        assert error.reason is DropReason.BADIP


# --- builders refuse what they cannot build -------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"ttl": 256},
        {"ttl": -1},
        {"tos": 256},
        {"ident": 0x10000},
        {"ident": -1},
        {"protocol": 256},
        {"protocol": -1},
    ],
    ids=repr,
)
def test_build_ipv4_rejects_out_of_range(kwargs: dict[str, int]) -> None:
    with pytest.raises(LocalProtocolError):
        ip.build_ipv4(SRC4, DST4, CARP, **kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"hop_limit": 256},
        {"hop_limit": -1},
        {"traffic_class": 256},
        {"protocol": 256},
        {"protocol": -1},
    ],
    ids=repr,
)
def test_build_ipv6_rejects_out_of_range(kwargs: dict[str, int]) -> None:
    with pytest.raises(LocalProtocolError):
        ip.build_ipv6(SRC6, DST6, CARP, **kwargs)


def test_builders_reject_oversized_payloads() -> None:
    assert len(ip.build_ipv4(SRC4, DST4, bytes(65535 - 20))) == 65535
    with pytest.raises(LocalProtocolError):
        ip.build_ipv4(SRC4, DST4, bytes(65535 - 19))
    assert len(ip.build_ipv6(SRC6, DST6, bytes(65535))) == 40 + 65535
    with pytest.raises(LocalProtocolError):
        ip.build_ipv6(SRC6, DST6, bytes(65536))


def test_builders_reject_the_wrong_family() -> None:
    with pytest.raises(LocalProtocolError):
        ip.build_ipv4(SRC6, DST4, CARP)  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError):
        ip.build_ipv4(SRC4, DST6, CARP)  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError):
        ip.build_ipv6(SRC4, DST6, CARP)  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError):
        ip.build_ipv6(SRC6, DST4, CARP)  # type: ignore[arg-type]


def test_struct_layout_of_built_ipv4_header() -> None:
    built = ip.build_ipv4(SRC4, DST4, CARP, ident=7, tos=0xE0, ttl=255)
    fields = struct.unpack("!BBHHHBBH4s4s", built[:20])
    assert fields[:8] == (0x45, 0xE0, 56, 7, 0x4000, 255, 112, fields[7])
    assert fields[8:] == (SRC4.packed, DST4.packed)
