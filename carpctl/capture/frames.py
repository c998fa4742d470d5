"""From a captured link-layer frame to the IP datagram inside it.

``ip_datagram(linktype, frame)`` returns a ``Datagram`` (the IP bytes plus
the link-layer source address when the link has one), ``None`` for frames
that do not carry IP (ARP, LLC, a truncated link header ...), and raises
``UnsupportedLinkType`` for link types it cannot read at all.
"""

from __future__ import annotations

from dataclasses import dataclass

LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW_DLT = 12  # DLT_RAW as written by some systems
LINKTYPE_RAW = 101
LINKTYPE_LOOP = 108
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276

LINKTYPE_NAMES = {
    LINKTYPE_NULL: "BSD loopback",
    LINKTYPE_ETHERNET: "Ethernet",
    LINKTYPE_RAW_DLT: "raw IP",
    LINKTYPE_RAW: "raw IP",
    LINKTYPE_LOOP: "OpenBSD loopback",
    LINKTYPE_LINUX_SLL: "Linux cooked v1",
    LINKTYPE_IPV4: "raw IPv4",
    LINKTYPE_IPV6: "raw IPv6",
    LINKTYPE_LINUX_SLL2: "Linux cooked v2",
}

ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_IPV6 = 0x86DD
_ETHERTYPE_VLAN = {0x8100, 0x88A8, 0x9100}  # 802.1Q, 802.1ad, the old QinQ tag
_ARPHRD_ETHER = 1
_AF_INET = 2
_AF_INET6 = {10, 24, 28, 30}  # Linux, NetBSD/OpenBSD, FreeBSD, Darwin


class UnsupportedLinkType(ValueError):
    """The capture's link type is not one this module reads."""

    def __init__(self, linktype: int) -> None:
        super().__init__(f"link type {linktype} is not supported")
        self.linktype = linktype


@dataclass(frozen=True, slots=True)
class Datagram:
    """An IP datagram taken out of a link-layer frame."""

    data: bytes  # starts at the IPv4/IPv6 header
    src_mac: str | None = None  # "00:00:5e:00:00:01" when the link has addresses
    vlans: tuple[int, ...] = ()  # VLAN ids, outermost first


def format_mac(raw: bytes) -> str:
    return ":".join(f"{b:02x}" for b in raw)


def ip_datagram(linktype: int, frame: bytes) -> Datagram | None:
    """The IP datagram carried by ``frame``, or ``None`` when it carries no IP."""
    if linktype == LINKTYPE_ETHERNET:
        if len(frame) < 14:
            return None
        return _after_ethertype(frame, 12, format_mac(frame[6:12]))
    if linktype == LINKTYPE_LINUX_SLL:
        if len(frame) < 16:
            return None
        hatype = int.from_bytes(frame[2:4], "big")
        addr_len = int.from_bytes(frame[4:6], "big")
        return _after_ethertype(frame, 14, _cooked_mac(hatype, addr_len, frame[6:14]))
    if linktype == LINKTYPE_LINUX_SLL2:
        if len(frame) < 20:
            return None
        hatype = int.from_bytes(frame[8:10], "big")
        body = frame[:2] + frame[20:]  # the protocol field, then the payload
        return _after_ethertype(body, 0, _cooked_mac(hatype, frame[11], frame[12:20]))
    if linktype in (LINKTYPE_RAW, LINKTYPE_RAW_DLT):
        return Datagram(frame) if frame and frame[0] >> 4 in (4, 6) else None
    if linktype == LINKTYPE_IPV4:
        return Datagram(frame) if frame and frame[0] >> 4 == 4 else None
    if linktype == LINKTYPE_IPV6:
        return Datagram(frame) if frame and frame[0] >> 4 == 6 else None
    if linktype in (LINKTYPE_NULL, LINKTYPE_LOOP):
        return _after_address_family(linktype, frame)
    raise UnsupportedLinkType(linktype)


def _cooked_mac(hatype: int, addr_len: int, address: bytes) -> str | None:
    # The cooked header's address is the sender's, for incoming and outgoing frames.
    return format_mac(address[:6]) if hatype == _ARPHRD_ETHER and addr_len == 6 else None


def _after_ethertype(frame: bytes, offset: int, src_mac: str | None) -> Datagram | None:
    """Follow ``frame``'s EtherType at ``offset`` through VLAN tags to IP."""
    vlans: list[int] = []
    while len(frame) >= offset + 2:
        ethertype = int.from_bytes(frame[offset : offset + 2], "big")
        if ethertype in _ETHERTYPE_VLAN:
            if len(frame) < offset + 6:
                return None
            vlans.append(int.from_bytes(frame[offset + 2 : offset + 4], "big") & 0x0FFF)
            offset += 4
            continue
        if ethertype in (ETHERTYPE_IPV4, ETHERTYPE_IPV6):
            return Datagram(frame[offset + 2 :], src_mac, tuple(vlans))
        return None
    return None


def _after_address_family(linktype: int, frame: bytes) -> Datagram | None:
    if len(frame) < 4:
        return None
    # DLT_NULL's family is in the capturing host's byte order, DLT_LOOP's in network order.
    families = {int.from_bytes(frame[:4], "big")}
    if linktype == LINKTYPE_NULL:
        families.add(int.from_bytes(frame[:4], "little"))
    if _AF_INET in families or families & _AF_INET6:
        return Datagram(frame[4:])
    return None
