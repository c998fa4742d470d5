"""Route received datagrams to the vhids of one interface, counting drops.

This is the receive path of protocol section 5 up to the vhid lookup; the
per-vhid checks (family, TTL, HMAC, loop) are the machine's.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from carpctl.core import ip, wire
from carpctl.core.effects import Effect, IPAddress
from carpctl.core.errors import DropReason, RemoteProtocolError
from carpctl.core.machine import VhidMachine


class Receiver:
    """The vhids configured on one interface."""

    def __init__(
        self,
        machines: Iterable[VhidMachine],
        *,
        allow: bool = True,
        own_addresses: Iterable[IPAddress] = (),
    ) -> None:
        self.machines = {m.vhid: m for m in machines}
        self.allow = allow
        self.own_addresses = frozenset(own_addresses)
        self.accepted = 0
        self.drops: Counter[DropReason] = Counter()

    def receive_datagram(
        self, datagram: bytes, now: float, *, check_ttl: bool = True
    ) -> list[Effect]:
        """A whole IPv4/IPv6 datagram (as a raw IPv4 socket or a capture gives it)."""
        try:
            packet = ip.parse_ip(datagram)
            if packet.protocol != wire.IPPROTO_CARP:
                raise RemoteProtocolError(
                    DropReason.BADIP, f"IP protocol {packet.protocol} is not CARP"
                )
        except RemoteProtocolError as error:
            self.drops[error.reason] += 1
            raise
        return self.receive(
            packet.payload,
            family=packet.version,
            src=packet.src,
            ttl=packet.ttl,
            now=now,
            check_ttl=check_ttl,
        )

    def receive(
        self,
        payload: bytes,
        *,
        family: int,
        src: IPAddress,
        ttl: int,
        now: float,
        check_ttl: bool = True,
    ) -> list[Effect]:
        """The CARP bytes with the facts of the IP header around them.

        Raises RemoteProtocolError after counting it; nothing changes then.
        """
        try:
            if not self.allow:
                raise RemoteProtocolError(DropReason.DISABLED, "carp.allow is off")
            if src in self.own_addresses:
                raise RemoteProtocolError(DropReason.LOOP, f"own packet from {src}")
            header = wire.decode(payload)
            machine = self.machines.get(header.vhid)
            if machine is None:
                raise RemoteProtocolError(
                    DropReason.BADVHID, f"vhid {header.vhid} from {src} is not configured here"
                )
            effects = machine.receive(
                header, family=family, src=src, ttl=ttl, now=now, check_ttl=check_ttl
            )
        except RemoteProtocolError as error:
            self.drops[error.reason] += 1
            raise
        self.accepted += 1
        return effects
