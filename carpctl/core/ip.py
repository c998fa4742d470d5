"""The IPv4/IPv6 header around an advertisement: parse and build.

Only what CARP needs: addresses, TTL/hop limit, protocol, the payload. IPv4
options and the common IPv6 extension headers are skipped; a fragmented
packet is refused (advertisements are never fragmented).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address

from carpctl.core.checksum import internet_checksum
from carpctl.core.errors import DropReason, LocalProtocolError, RemoteProtocolError
from carpctl.core.wire import CARP_TTL, IPPROTO_CARP

IPV4_TOS_FREEBSD = 0xE0  # DSCP 56 (CS7), FreeBSD 14's default
IPV4_TOS_LEGACY = 0x10  # OpenBSD, FreeBSD 10 and ucarp
_IPV6_SKIPPABLE = {0, 43, 60}  # hop-by-hop, routing, destination options
_IPV6_FRAGMENT = 44


@dataclass(frozen=True, slots=True)
class IPPacket:
    """An IP datagram reduced to what CARP needs."""

    version: int
    src: IPv4Address | IPv6Address
    dst: IPv4Address | IPv6Address
    ttl: int  # hop limit for IPv6
    protocol: int
    payload: bytes
    header_checksum_ok: bool = True  # IPv6 has none


def _bad(message: str) -> RemoteProtocolError:
    return RemoteProtocolError(DropReason.BADIP, message)


def parse_ipv4(packet: bytes) -> IPPacket:
    if len(packet) < 20:
        raise _bad(f"truncated IPv4 header: {len(packet)} bytes")
    version, ihl = packet[0] >> 4, (packet[0] & 0x0F) * 4
    if version != 4:
        raise _bad(f"IP version {version} where IPv4 was expected")
    total_len = int.from_bytes(packet[2:4], "big")
    if ihl < 20 or total_len < ihl or len(packet) < ihl:
        raise _bad(f"bad IPv4 header length {ihl} / total length {total_len}")
    flags_frag = int.from_bytes(packet[6:8], "big")
    if flags_frag & 0x3FFF:  # MF set or a non-zero offset
        raise _bad("fragmented IPv4 packet")
    # A capture may hold fewer bytes than the total length (snaplen): keep
    # what is there, and let the CARP decoder report the truncation.
    return IPPacket(
        version=4,
        src=IPv4Address(packet[12:16]),
        dst=IPv4Address(packet[16:20]),
        ttl=packet[8],
        protocol=packet[9],
        payload=packet[ihl:total_len],
        header_checksum_ok=internet_checksum(packet[:ihl]) == 0,
    )


def parse_ipv6(packet: bytes) -> IPPacket:
    if len(packet) < 40:
        raise _bad(f"truncated IPv6 header: {len(packet)} bytes")
    if packet[0] >> 4 != 6:
        raise _bad(f"IP version {packet[0] >> 4} where IPv6 was expected")
    payload_len = int.from_bytes(packet[4:6], "big")
    next_header, offset = packet[6], 40
    end = 40 + payload_len
    while next_header in _IPV6_SKIPPABLE:
        if len(packet) < offset + 8:
            raise _bad("truncated IPv6 extension header")
        next_header, offset = packet[offset], offset + (packet[offset + 1] + 1) * 8
    if next_header == _IPV6_FRAGMENT:
        raise _bad("fragmented IPv6 packet")
    if offset > end:
        raise _bad("IPv6 extension headers overrun the payload length")
    return IPPacket(
        version=6,
        src=IPv6Address(packet[8:24]),
        dst=IPv6Address(packet[24:40]),
        ttl=packet[7],
        protocol=next_header,
        payload=packet[offset:end],
    )


def parse_ip(packet: bytes) -> IPPacket:
    """Parse an IPv4 or IPv6 datagram, by its version nibble."""
    if not packet:
        raise _bad("empty IP packet")
    version = packet[0] >> 4
    if version == 4:
        return parse_ipv4(packet)
    if version == 6:
        return parse_ipv6(packet)
    raise _bad(f"unknown IP version {version}")


def build_ipv4(
    src: IPv4Address,
    dst: IPv4Address,
    payload: bytes,
    *,
    ttl: int = CARP_TTL,
    tos: int = IPV4_TOS_LEGACY,
    ident: int = 0,
    protocol: int = IPPROTO_CARP,
) -> bytes:
    """An IPv4 datagram with DF set, as the kernels and ucarp send it."""
    if not (0 <= ttl <= 255 and 0 <= tos <= 255 and 0 <= ident <= 0xFFFF):
        raise LocalProtocolError("ttl, tos and ident out of range")
    if not 0 <= protocol <= 255:
        raise LocalProtocolError(f"protocol must be 0..255, got {protocol}")
    if not (isinstance(src, IPv4Address) and isinstance(dst, IPv4Address)):
        raise LocalProtocolError(f"IPv4 datagram needs IPv4 addresses, got {src!r} -> {dst!r}")
    if 20 + len(payload) > 0xFFFF:
        raise LocalProtocolError(f"payload of {len(payload)} bytes does not fit in IPv4")
    header = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        tos,
        20 + len(payload),
        ident,
        0x4000,
        ttl,
        protocol,
        0,
        src.packed,
        dst.packed,
    )
    checksum = internet_checksum(header)
    return header[:10] + checksum.to_bytes(2, "big") + header[12:] + payload


def build_ipv6(
    src: IPv6Address,
    dst: IPv6Address,
    payload: bytes,
    *,
    hop_limit: int = CARP_TTL,
    traffic_class: int = 0,
    protocol: int = IPPROTO_CARP,
) -> bytes:
    """An IPv6 datagram without extension headers (flow label 0).

    ``protocol`` is the Next Header value: pass 0 (hop-by-hop) and put the
    extension headers at the start of ``payload`` to build a chain.
    """
    if not (0 <= hop_limit <= 255 and 0 <= traffic_class <= 255):
        raise LocalProtocolError("hop limit and traffic class out of range")
    if not 0 <= protocol <= 255:
        raise LocalProtocolError(f"next header must be 0..255, got {protocol}")
    if not (isinstance(src, IPv6Address) and isinstance(dst, IPv6Address)):
        raise LocalProtocolError(f"IPv6 datagram needs IPv6 addresses, got {src!r} -> {dst!r}")
    if len(payload) > 0xFFFF:
        raise LocalProtocolError(f"payload of {len(payload)} bytes needs a jumbogram")
    first_word = 6 << 28 | traffic_class << 20
    header = struct.pack(
        "!IHBB16s16s", first_word, len(payload), protocol, hop_limit, src.packed, dst.packed
    )
    return header + payload
