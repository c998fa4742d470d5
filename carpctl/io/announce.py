"""Gratuitous ARP and unsolicited Neighbour Advertisements on becoming MASTER.

Protocol reference section 1.6: one gratuitous ARP *request* per IPv4
address (sender IP = target IP = the address, sender MAC = ours, Ethernet
broadcast) and one unsolicited NA per IPv6 address (Override set,
Solicited clear, to ff02::1, hop limit 255, target link-layer address
option). The frame builders are pure; an ``Announcer`` keeps the sockets
of one interface open (the engine holds one per interface), and the module
functions open and close them for one call.

Note that Linux neighbours, like most hosts, only *update* an existing
cache entry from these (they do not create one), which is all a takeover
needs: hosts that talked to the old master learn the new MAC.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Callable, Iterable
from ipaddress import IPv4Address, IPv6Address

from carpctl.core.checksum import internet_checksum
from carpctl.io.links import Links

ETH_P_ARP = 0x0806
ETHERNET_BROADCAST = b"\xff" * 6
ALL_NODES = IPv6Address("ff02::1")
ND_NEIGHBOR_ADVERT = 136
ND_NA_FLAG_ROUTER = 0x80000000
ND_NA_FLAG_SOLICITED = 0x40000000
ND_NA_FLAG_OVERRIDE = 0x20000000
ND_OPT_TARGET_LINKADDR = 2
ICMP6_FILTER = 1
NDISC_HOP_LIMIT = 255
IPPROTO_ICMPV6 = 58


def _check_mac(mac: bytes) -> None:
    if len(mac) != 6:
        raise ValueError(f"a MAC address has 6 bytes, got {len(mac)}")


def build_gratuitous_arp(mac: bytes, address: IPv4Address) -> bytes:
    """A 42-byte Ethernet frame: broadcast ARP request announcing ``address`` at ``mac``.

    Target hardware address zero, as FreeBSD sends (RFC 5227's announcement).
    """
    _check_mac(mac)
    arp = struct.pack(
        "!HHBBH6s4s6s4s",
        1,  # hardware: Ethernet
        0x0800,  # protocol: IPv4
        6,
        4,
        1,  # request
        mac,
        address.packed,
        bytes(6),
        address.packed,
    )
    return ETHERNET_BROADCAST + mac + ETH_P_ARP.to_bytes(2, "big") + arp


def build_unsolicited_na(
    mac: bytes,
    target: IPv6Address,
    *,
    source: IPv6Address | None = None,
    destination: IPv6Address = ALL_NODES,
    router: bool = False,
) -> bytes:
    """The 32-byte ICMPv6 Neighbour Advertisement (Override, not Solicited).

    With ``source`` the checksum is computed over the IPv6 pseudo-header;
    without it, it is left 0 for the kernel to fill (a raw ICMPv6 socket
    always computes it).
    """
    _check_mac(mac)
    flags = ND_NA_FLAG_OVERRIDE | (ND_NA_FLAG_ROUTER if router else 0)
    option = struct.pack("!BB6s", ND_OPT_TARGET_LINKADDR, 1, mac)
    message = struct.pack("!BBHI16s", ND_NEIGHBOR_ADVERT, 0, 0, flags, target.packed) + option
    if source is None:
        return message
    pseudo = source.packed + destination.packed + struct.pack("!I3xB", len(message), 58)
    checksum = internet_checksum(pseudo + message)
    return message[:2] + checksum.to_bytes(2, "big") + message[4:]


class Announcer:
    """Announcement sockets of one interface, kept open between takeovers.

    Closing an AF_PACKET socket waits for an RCU grace period (about 10 ms
    here), so opening one per takeover made 255 vhids take seconds to come
    up. A send error drops the sockets; the next call opens fresh ones
    (the interface may have been re-created).
    """

    def __init__(self, ifname: str) -> None:
        self.ifname = ifname
        self._packet: socket.socket | None = None
        self._icmp6: socket.socket | None = None
        self._ifindex = 0

    def __enter__(self) -> Announcer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for sock in (self._packet, self._icmp6):
            if sock is not None:
                sock.close()
        self._packet = self._icmp6 = None

    def _packet_socket(self) -> socket.socket:
        if self._packet is None:
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)  # protocol 0: no input
            try:
                sock.bind((self.ifname, 0))
            except OSError:
                sock.close()
                raise
            self._packet = sock
        return self._packet

    def _icmp6_socket(self) -> socket.socket:
        if self._icmp6 is None:
            sock = socket.socket(socket.AF_INET6, socket.SOCK_RAW, IPPROTO_ICMPV6)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, self.ifname.encode())
                sock.setsockopt(IPPROTO_ICMPV6, ICMP6_FILTER, b"\xff" * 32)  # receive nothing
                self._ifindex = socket.if_nametoindex(self.ifname)
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, self._ifindex)
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, NDISC_HOP_LIMIT)
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 0)
            except OSError:
                sock.close()
                raise
            self._icmp6 = sock
        return self._icmp6

    def send_gratuitous_arp(self, mac: bytes, addresses: Iterable[IPv4Address]) -> int:
        """One gratuitous ARP per address; raises ``OSError`` after trying all."""
        frames = [build_gratuitous_arp(mac, a) for a in addresses]
        if not frames:
            return 0
        try:
            return _send_all(frames, self._packet_socket().send)
        except OSError:
            self.close()
            raise

    def send_unsolicited_na(
        self,
        mac: bytes,
        addresses: Iterable[IPv6Address],
        *,
        source: IPv6Address | None = None,
        router: bool = False,
    ) -> int:
        """One unsolicited NA per address to ff02::1; raises ``OSError`` after trying all.

        The kernel picks the source (the link-local address) unless ``source``
        is given.
        """
        messages = [build_unsolicited_na(mac, a, source=source, router=router) for a in addresses]
        if not messages:
            return 0
        try:
            sock = self._icmp6_socket()
            ancillary = []
            if source is not None:
                pktinfo = struct.pack("=16si", source.packed, self._ifindex)
                ancillary.append((socket.IPPROTO_IPV6, socket.IPV6_PKTINFO, pktinfo))
            address = (str(ALL_NODES), 0, 0, self._ifindex)
            return _send_all(messages, lambda m: sock.sendmsg([m], ancillary, 0, address))
        except OSError:
            self.close()
            raise

    def announce(
        self, addresses: Iterable[IPv4Address | IPv6Address], *, mac: bytes | None = None
    ) -> int:
        """GARP for the IPv4 and NA for the IPv6 addresses, with ``mac``.

        ``mac`` defaults to the interface's own. Returns how many were sent;
        raises ``OSError`` (after trying all) if any failed.
        """
        given = list(addresses)
        if mac is None:
            with Links() as links:
                mac = links.mac(self.ifname)
        error: OSError | None = None
        sent = 0
        try:
            sent += self.send_gratuitous_arp(mac, [a for a in given if isinstance(a, IPv4Address)])
        except OSError as failure:
            error = failure
        try:
            sent += self.send_unsolicited_na(mac, [a for a in given if isinstance(a, IPv6Address)])
        except OSError as failure:
            error = error or failure
        if error is not None:
            raise error
        return sent


def send_gratuitous_arp(ifname: str, mac: bytes, addresses: Iterable[IPv4Address]) -> int:
    """``Announcer.send_gratuitous_arp`` with a socket opened for this call only."""
    with Announcer(ifname) as announcer:
        return announcer.send_gratuitous_arp(mac, addresses)


def send_unsolicited_na(
    ifname: str,
    mac: bytes,
    addresses: Iterable[IPv6Address],
    *,
    source: IPv6Address | None = None,
    router: bool = False,
) -> int:
    """``Announcer.send_unsolicited_na`` with a socket opened for this call only."""
    with Announcer(ifname) as announcer:
        return announcer.send_unsolicited_na(mac, addresses, source=source, router=router)


def announce(
    ifname: str, addresses: Iterable[IPv4Address | IPv6Address], *, mac: bytes | None = None
) -> int:
    """``Announcer.announce`` with sockets opened for this call only."""
    with Announcer(ifname) as announcer:
        return announcer.announce(addresses, mac=mac)


def _send_all(packets: list[bytes], send: Callable[[bytes], object]) -> int:
    error: OSError | None = None
    sent = 0
    for packet in packets:
        try:
            send(packet)
        except OSError as failure:
            error = error or failure
        else:
            sent += 1
    if error is not None:
        raise error
    return sent
