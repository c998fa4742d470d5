"""A raw IP protocol 112 socket on one interface, for one address family.

Set up as protocol reference sections 1.2-1.4 and 9 item 12 ask: bound to
the interface (SO_BINDTODEVICE), member of 224.0.0.18 / ff02::12 there only
(by ifindex, and IP(V6)_MULTICAST_ALL off so groups other sockets joined
are not delivered here), multicast loopback off (a host never hears itself),
TTL / hop limit 255 for multicast and unicast, non-blocking.

IPv4: the raw socket delivers the whole datagram, header and TTL included.
IPv6: it delivers only the payload; the hop limit and destination come as
ancillary data (IPV6_RECVHOPLIMIT, IPV6_RECVPKTINFO). IPV6_CHECKSUM stays
off: CARP's checksum has no pseudo-header.

Source address: every advertisement carries IP(V6)_PKTINFO naming the
interface's own address (``source``), so a virtual address that carpctl adds
later (and that the kernel's source selection might prefer) is never used.
Left unset, ``source`` is the interface's first own address (IPv6: its
link-local one) that is neither carpctl-tagged nor in ``exclude``.
"""

from __future__ import annotations

import contextlib
import errno
import socket
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address, ip_address
from types import TracebackType

from carpctl.core import wire
from carpctl.core.effects import Effect, IPAddress
from carpctl.core.ip import IPV4_TOS_FREEBSD
from carpctl.core.receiver import Receiver
from carpctl.io.links import Links

# Linux values the socket module does not export (uapi/linux/in.h, in6.h).
IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8)
IP_MTU_DISCOVER = getattr(socket, "IP_MTU_DISCOVER", 10)
IP_PMTUDISC_DO = getattr(socket, "IP_PMTUDISC_DO", 2)  # always set DF
IP_MULTICAST_ALL = 49
IPV6_MULTICAST_ALL = 29

_RECV_BUFFER = 65535
_ANCILLARY_BUFFER = socket.CMSG_SPACE(4) + socket.CMSG_SPACE(20)
DEFAULT_RECEIVE_LIMIT = 1000


@dataclass(frozen=True, slots=True)
class Received:
    """One datagram from a ``CarpSocket``.

    ``payload`` is the IP payload (the CARP bytes). For IPv4 ``datagram`` is
    the whole datagram as it arrived; for IPv6 it is None (the kernel keeps
    the header) and ``src``, ``dst``, ``ttl`` come from the socket.
    """

    family: int
    src: IPAddress
    dst: IPAddress | None
    ttl: int  # TTL / hop limit
    payload: bytes
    datagram: bytes | None = None

    def deliver(self, receiver: Receiver, now: float, *, check_ttl: bool = True) -> list[Effect]:
        """Hand it to the core; raises ``RemoteProtocolError`` like the Receiver does."""
        if self.datagram is not None:
            return receiver.receive_datagram(self.datagram, now, check_ttl=check_ttl)
        return receiver.receive(
            self.payload,
            family=self.family,
            src=self.src,
            ttl=self.ttl,
            now=now,
            check_ttl=check_ttl,
        )


def _received_ipv4(datagram: bytes) -> Received:
    ihl = (datagram[0] & 0x0F) * 4
    return Received(
        family=4,
        src=IPv4Address(datagram[12:16]),
        dst=IPv4Address(datagram[16:20]),
        ttl=datagram[8],
        payload=datagram[ihl:],
        datagram=datagram,
    )


def _received_ipv6(
    payload: bytes, ancillary: list[tuple[int, int, bytes]], address: tuple[str, int, int, int]
) -> Received:
    ttl, dst = 0, None
    for level, kind, data in ancillary:
        if level != socket.IPPROTO_IPV6:
            continue
        if kind == socket.IPV6_HOPLIMIT and len(data) >= 4:
            ttl = struct.unpack("=i", data[:4])[0]
        elif kind == socket.IPV6_PKTINFO and len(data) >= 16:
            dst = IPv6Address(data[:16])
    return Received(
        family=6,
        src=IPv6Address(address[0].split("%", 1)[0]),  # no scope: the wire form
        dst=dst,
        ttl=ttl,
        payload=payload,
    )


class CarpSocket:
    """Raw CARP socket for one (interface, family); use ``CarpSocket.open``."""

    def __init__(
        self,
        sock: socket.socket,
        *,
        interface: str,
        family: int,
        ifindex: int,
        source: IPAddress,
        destination: IPAddress,
    ) -> None:
        self._sock = sock
        self.interface = interface
        self.family = family
        self.ifindex = ifindex
        self.source = source  # the driver may update it if the interface is renumbered
        self.destination = destination

    @classmethod
    def open(
        cls,
        interface: str,
        family: int,
        *,
        source: IPv4Address | IPv6Address | None = None,
        peer: IPAddress | None = None,
        exclude: Iterable[IPAddress] = (),
        tos: int = IPV4_TOS_FREEBSD,
    ) -> CarpSocket:
        """Open, configure and join; raise ``OSError`` if anything fails.

        ``peer``: unicast mode (networks without multicast), send there
        instead of the group. ``exclude``: virtual addresses never to pick as
        ``source`` (tagged ones are never picked anyway). ``tos``: IPv4 TOS
        and IPv6 traffic class (default FreeBSD 14's DSCP 56).
        """
        if family not in (4, 6):
            raise ValueError(f"family must be 4 or 6, got {family}")
        for name, value in (("source", source), ("peer", peer)):
            if value is not None and value.version != family:
                raise ValueError(f"{name} {value} is not an IPv{family} address")
        with Links() as links:
            ifindex = links.ifindex(interface)
            if source is None:
                source = links.source_address(interface, family, exclude=exclude, peer=peer)
        if source is None:
            raise OSError(errno.EADDRNOTAVAIL, f"{interface} has no IPv{family} address of its own")
        group = ip_address(wire.CARP_IPV4_GROUP if family == 4 else wire.CARP_IPV6_GROUP)
        af = socket.AF_INET if family == 4 else socket.AF_INET6
        sock = socket.socket(af, socket.SOCK_RAW, wire.IPPROTO_CARP)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, interface.encode())
            if family == 4:
                _setup_ipv4(sock, ifindex, group.packed, tos)
            else:
                _setup_ipv6(sock, ifindex, group.packed, tos)
            sock.setblocking(False)
        except BaseException:
            sock.close()
            raise
        return cls(
            sock,
            interface=interface,
            family=family,
            ifindex=ifindex,
            source=source,
            destination=group if peer is None else peer,
        )

    def __enter__(self) -> CarpSocket:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def fileno(self) -> int:
        return self._sock.fileno()

    def close(self) -> None:
        self._sock.close()

    def receive(self, limit: int = DEFAULT_RECEIVE_LIMIT) -> list[Received]:
        """Every datagram waiting (at most ``limit``), without blocking."""
        received: list[Received] = []
        while len(received) < limit:
            try:
                data, ancillary, _flags, address = self._sock.recvmsg(
                    _RECV_BUFFER, _ANCILLARY_BUFFER
                )
            except (BlockingIOError, InterruptedError):
                break
            if self.family == 4:
                if len(data) >= 20:  # the kernel only delivers whole headers
                    received.append(_received_ipv4(data))
            else:
                received.append(_received_ipv6(data, ancillary, address))
        return received

    def send(self, payload: bytes) -> None:
        """Send ``payload`` (the CARP bytes) from ``source``; raise ``OSError`` on failure."""
        if self.family == 4:
            pktinfo = struct.pack("=i4s4s", self.ifindex, self.source.packed, bytes(4))
            ancillary = [(socket.IPPROTO_IP, IP_PKTINFO, pktinfo)]
            address: tuple[str, int] | tuple[str, int, int, int] = (str(self.destination), 0)
        else:
            pktinfo = struct.pack("=16si", self.source.packed, self.ifindex)
            ancillary = [(socket.IPPROTO_IPV6, socket.IPV6_PKTINFO, pktinfo)]
            address = (str(self.destination), 0, 0, self.ifindex)
        sent = self._sock.sendmsg([payload], ancillary, 0, address)
        if sent != len(payload):
            raise OSError(errno.EMSGSIZE, f"sent {sent} of {len(payload)} bytes")


def _setup_ipv4(sock: socket.socket, ifindex: int, group: bytes, tos: int) -> None:
    mreqn = struct.pack("=4s4si", group, bytes(4), ifindex)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreqn)
    interface = struct.pack("=4s4si", bytes(4), bytes(4), ifindex)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, interface)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, wire.CARP_TTL)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, wire.CARP_TTL)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, tos)
    sock.setsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DO)
    with contextlib.suppress(OSError):  # Linux >= 2.6.31
        sock.setsockopt(socket.IPPROTO_IP, IP_MULTICAST_ALL, 0)


def _setup_ipv6(sock: socket.socket, ifindex: int, group: bytes, tos: int) -> None:
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_CHECKSUM, -1)  # off (the default)
    mreq = struct.pack("=16si", group, ifindex)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, mreq)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, ifindex)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 0)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, wire.CARP_TTL)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, wire.CARP_TTL)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_TCLASS, tos)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVHOPLIMIT, 1)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO, 1)
    with contextlib.suppress(OSError):  # Linux >= 4.20
        sock.setsockopt(socket.IPPROTO_IPV6, IPV6_MULTICAST_ALL, 0)
