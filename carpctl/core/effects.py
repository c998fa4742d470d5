"""What a vhid's state machine asks its driver to do, as plain values.

The driver performs effects in list order: e.g. on becoming MASTER it sends
the first advertisement, then adds the addresses, then announces them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, StrEnum
from ipaddress import IPv4Address, IPv6Address

from carpctl.core.wire import CarpHeader

IPAddress = IPv4Address | IPv6Address


class State(IntEnum):
    """Values as in the kernels' ``carp_state``."""

    INIT = 0
    BACKUP = 1
    MASTER = 2


class Reason(StrEnum):
    """Why a state changed, in the protocol's (and FreeBSD's log's) words."""

    INIT_COMPLETE = "initialization complete"
    MASTER_TIMED_OUT = "master timed out"
    PREEMPT = "preempting a slower master"
    REMOTE_MORE_DEMOTED = "master is more demoted"
    MASTER_WILL_TIME_OUT = "master will time out"
    BOW_OUT = "bow-out received"
    MORE_FREQUENT = "more frequent advertisement received"
    LESS_DEMOTED = "less demoted advertisement received"
    INTERFACE_DOWN = "interface down"
    ADMIN = "administrative request"
    SHUTDOWN = "shutting down"


@dataclass(frozen=True, slots=True)
class StateChanged:
    vhid: int
    old: State
    new: State
    reason: Reason


@dataclass(frozen=True, slots=True)
class SendAdvertisement:
    """Send ``payload`` (the 36 CARP bytes) on ``family`` (4 or 6), TTL 255."""

    vhid: int
    family: int
    payload: bytes
    header: CarpHeader


@dataclass(frozen=True, slots=True)
class AssignAddresses:
    """Configure the vhid's virtual addresses on the interface."""

    vhid: int


@dataclass(frozen=True, slots=True)
class ReleaseAddresses:
    """Remove the vhid's virtual addresses from the interface."""

    vhid: int


@dataclass(frozen=True, slots=True)
class Announce:
    """Gratuitous ARP for the IPv4 and unsolicited NA for the IPv6 addresses."""

    vhid: int


@dataclass(frozen=True, slots=True)
class SplitBrainSeen:
    """Another, less preferred, node advertises as master while we are master."""

    vhid: int
    peer: IPAddress
    advbase: int
    advskew: int


Effect = (
    StateChanged
    | SendAdvertisement
    | AssignAddresses
    | ReleaseAddresses
    | Announce
    | SplitBrainSeen
)
