"""A virtual host's configuration and what it last heard, as values."""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address

from carpctl.core import auth
from carpctl.core.effects import IPAddress
from carpctl.core.errors import LocalProtocolError
from carpctl.core.timing import Timing


@dataclass(frozen=True, slots=True)
class VhidConfig:
    """A virtual host's configuration. Invalid values raise LocalProtocolError."""

    vhid: int
    addresses: tuple[IPAddress, ...]
    advbase: int = 1
    advskew: int = 0
    key: bytes = b""
    preempt: bool = False
    timing: Timing = Timing.FREEBSD
    hashed: auth.VirtualHostAddresses = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not 1 <= self.vhid <= 255:
            raise LocalProtocolError(f"vhid must be 1..255, got {self.vhid}")
        if not 0 <= self.advbase <= 255:
            raise LocalProtocolError(f"advbase must be 0..255, got {self.advbase}")
        if not 0 <= self.advskew <= 254:
            raise LocalProtocolError(f"advskew must be 0..254, got {self.advskew}")
        if self.advbase == 0 and self.advskew == 0:
            raise LocalProtocolError("advbase 0 needs an advskew above 0")
        if not self.addresses:
            raise LocalProtocolError(f"vhid {self.vhid} has no addresses")
        if len(self.key) > auth.KEY_MAX_LEN:
            raise LocalProtocolError(f"key longer than {auth.KEY_MAX_LEN} bytes")
        object.__setattr__(self, "hashed", auth.VirtualHostAddresses.of(self.addresses))

    @property
    def families(self) -> tuple[int, ...]:
        """Address families this vhid advertises on: 4, 6 or both."""
        has_v4 = any(isinstance(a, IPv4Address) for a in self.addresses)
        has_v6 = any(isinstance(a, IPv6Address) for a in self.addresses)
        return (4,) * has_v4 + (6,) * has_v6


@dataclass(frozen=True, slots=True)
class MasterSeen:
    """The last valid advertisement heard for this vhid."""

    src: IPAddress
    family: int
    advbase: int
    advskew: int
    demote: int
    at: float
