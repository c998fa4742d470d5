"""What the engine needs from the operating system, as small interfaces.

The engine is written against these; carpctl.io provides the Linux
implementations. Keeping them narrow keeps the driver thin and testable.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import IPv4Interface, IPv6Interface
from typing import Protocol

from carpctl.core.effects import IPAddress

VirtualAddress = IPv4Interface | IPv6Interface


@dataclass(frozen=True, slots=True)
class Packet:
    """One received protocol-112 packet, reduced to what the receive path needs."""

    payload: bytes  # the CARP bytes (IP header stripped)
    family: int
    src: IPAddress
    ttl: int


class Wire(Protocol):
    """A raw CARP socket on one interface and address family."""

    def fileno(self) -> int: ...

    def receive(self) -> list[Packet]: ...

    def send(self, payload: bytes, peer: IPAddress | None = None) -> None: ...

    def close(self) -> None: ...


class Interfaces(Protocol):
    """Addresses, announcements and link state (netlink, AF_PACKET)."""

    def is_up(self, ifname: str) -> bool: ...

    def own_addresses(self, ifname: str) -> Sequence[IPAddress]: ...

    def add_addresses(self, ifname: str, addresses: Sequence[VirtualAddress]) -> None: ...

    def remove_addresses(self, ifname: str, addresses: Sequence[VirtualAddress]) -> None: ...

    def remove_stale(self, ifname: str, addresses: Sequence[VirtualAddress]) -> None:
        """Start-up: remove what a crashed run left (ours, or any configured VIP)."""

    def announce(self, ifname: str, addresses: Sequence[VirtualAddress]) -> None: ...

    def ensure_virtual_mac(self, parent: str, vhid: int) -> str:
        """Create (down) the interface answering with 00:00:5e:00:01:<vhid>; its name."""

    def set_link(self, ifname: str, up: bool) -> None: ...

    def delete_link(self, ifname: str) -> None: ...


class LinkEvents(Protocol):
    """Link up/down notifications, readable from the event loop."""

    def fileno(self) -> int: ...

    def drain(self) -> list[tuple[str, bool]]: ...

    def close(self) -> None: ...
