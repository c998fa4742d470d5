"""Shared pieces of the CARP socket tests: advertisements, receivers, waiting."""

from __future__ import annotations

import time
from ipaddress import IPv4Address, IPv6Address

from iolab import IoLab, wait_readable

from carpctl.core import auth, wire
from carpctl.core.effects import IPAddress
from carpctl.core.machine import VhidMachine
from carpctl.core.receiver import Receiver
from carpctl.core.vhid import VhidConfig
from carpctl.io.carp_socket import CarpSocket, Received

VHID, PASSWORD = 9, "io-test"
VIPS: tuple[IPAddress, ...] = (IPv4Address("198.51.100.100"), IPv6Address("2001:db8::100"))
A4, B4 = IPv4Address("198.51.100.1"), IPv4Address("198.51.100.2")
A6, B6 = IPv6Address("2001:db8::1"), IPv6Address("2001:db8::2")


def advertisement(
    *,
    vhid: int = VHID,
    advbase: int = 1,
    advskew: int = 0,
    counter: int = 1,
    password: str = PASSWORD,
    vips: tuple[IPAddress, ...] = VIPS,
) -> bytes:
    """The 36 CARP bytes, built and signed with the core."""
    addresses = auth.VirtualHostAddresses.of(vips)
    digest = auth.compute_digest(auth.carp_key(password), vhid, addresses, counter)
    return wire.encode(wire.CarpHeader(vhid, advbase, advskew, counter, digest))


def receiver(
    *, vhid: int = VHID, password: str = PASSWORD, vips: tuple[IPAddress, ...] = VIPS
) -> Receiver:
    """A core Receiver with one vhid (in INIT: it verifies, and changes nothing)."""
    config = VhidConfig(vhid=vhid, addresses=vips, key=auth.carp_key(password))
    return Receiver([VhidMachine(config)])


def receive_until(
    lab: IoLab, namespace: str, sock: CarpSocket, count: int, timeout: float = 3.0
) -> list[Received]:
    """Drain ``sock`` (inside ``namespace``) until ``count`` datagrams or the timeout."""
    got: list[Received] = []
    deadline = time.monotonic() + timeout
    while len(got) < count and (left := deadline - time.monotonic()) > 0:
        if wait_readable(sock.fileno(), left):
            got += lab.run(namespace, sock.receive)
    return got


def carp_pair(lab: IoLab) -> tuple[str, str]:
    """Namespaces A and B joined by lab0, with IPv4 and IPv6 addresses."""
    a, b = lab.namespace("a"), lab.namespace("b")
    lab.veth(a, b)
    lab.address(a, "lab0", f"{A4}/24")
    lab.address(b, "lab0", f"{B4}/24")
    lab.address(a, "lab0", f"{A6}/64")
    lab.address(b, "lab0", f"{B6}/64")
    return a, b
