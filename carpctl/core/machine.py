"""One vhid's CARP state machine (protocol reference section 4), sans I/O.

Inputs are method calls that carry ``now`` (seconds on any monotonic clock);
outputs are lists of effects. ``get_timer()`` says when the machine next
wants ``handle_timer(now)``. Every input is first classified into a
``Trigger``; the table ``TRANSITIONS`` then says where each (state, trigger)
leads and why, so the protocol's rules read as data. Entering and leaving a
state add that state's standard effects (arming timers, addresses).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum, auto
from ipaddress import IPv4Address, IPv6Address

from carpctl.core import auth, timing, wire
from carpctl.core.effects import (
    Announce,
    AssignAddresses,
    Effect,
    IPAddress,
    Reason,
    ReleaseAddresses,
    SendAdvertisement,
    SplitBrainSeen,
    State,
    StateChanged,
)
from carpctl.core.errors import DropReason, LocalProtocolError, RemoteProtocolError
from carpctl.core.timing import Priority, Timing

COUNTER_MODULUS = 1 << 64
REANNOUNCE_AFTER_ADS = 2  # OpenBSD/ucarp's delayed second announcement


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


class Trigger(Enum):
    LINK_UP = auto()
    LINK_DOWN = auto()
    SHUTDOWN = auto()
    ADMIN_MASTER = auto()
    ADMIN_BACKUP = auto()
    MASTER_DOWN_TIMER = auto()
    ADVERT_TIMER = auto()
    PRIORITY_CHANGED = auto()
    # advertisement received while BACKUP
    SLOWER_MASTER_PREEMPTABLE = auto()
    MORE_DEMOTED_MASTER = auto()
    BOW_OUT = auto()
    MASTER_WILL_TIME_OUT = auto()
    MASTER_ALIVE = auto()
    # advertisement received while MASTER
    BETTER_MASTER = auto()
    LESS_DEMOTED_MASTER = auto()
    WORSE_MASTER = auto()
    PEER_LEAVING = auto()


class Action(Enum):
    """Extra work of a transition, beyond the standard enter/leave effects."""

    ADVERTISE_NOW = auto()  # out of turn: the next one follows a full interval later
    ADVERTISE_ON_SCHEDULE = auto()  # the timer's: keep the cadence of the deadlines
    RESTART_MASTER_DOWN = auto()  # for the family the advertisement came on
    REANNOUNCE = auto()
    BOW_OUT = auto()


@dataclass(frozen=True, slots=True)
class Transition:
    target: State
    reason: Reason | None = None
    actions: tuple[Action, ...] = ()


INIT, BACKUP, MASTER = State.INIT, State.BACKUP, State.MASTER
T = Trigger

TRANSITIONS: dict[tuple[State, Trigger], Transition] = {
    (INIT, T.LINK_UP): Transition(BACKUP, Reason.INIT_COMPLETE),
    (BACKUP, T.LINK_DOWN): Transition(INIT, Reason.INTERFACE_DOWN),
    (MASTER, T.LINK_DOWN): Transition(INIT, Reason.INTERFACE_DOWN),
    (BACKUP, T.SHUTDOWN): Transition(INIT, Reason.SHUTDOWN),
    (MASTER, T.SHUTDOWN): Transition(INIT, Reason.SHUTDOWN, (Action.BOW_OUT,)),
    (BACKUP, T.ADMIN_MASTER): Transition(MASTER, Reason.ADMIN),
    (MASTER, T.ADMIN_BACKUP): Transition(BACKUP, Reason.ADMIN),
    (BACKUP, T.MASTER_DOWN_TIMER): Transition(MASTER, Reason.MASTER_TIMED_OUT),
    (BACKUP, T.SLOWER_MASTER_PREEMPTABLE): Transition(MASTER, Reason.PREEMPT),
    (BACKUP, T.MORE_DEMOTED_MASTER): Transition(MASTER, Reason.REMOTE_MORE_DEMOTED),
    (BACKUP, T.BOW_OUT): Transition(MASTER, Reason.BOW_OUT),
    (BACKUP, T.MASTER_WILL_TIME_OUT): Transition(MASTER, Reason.MASTER_WILL_TIME_OUT),
    (BACKUP, T.MASTER_ALIVE): Transition(BACKUP, None, (Action.RESTART_MASTER_DOWN,)),
    (MASTER, T.BETTER_MASTER): Transition(BACKUP, Reason.MORE_FREQUENT),
    (MASTER, T.LESS_DEMOTED_MASTER): Transition(BACKUP, Reason.LESS_DEMOTED),
    (MASTER, T.WORSE_MASTER): Transition(MASTER, None, (Action.REANNOUNCE,)),
    (MASTER, T.ADVERT_TIMER): Transition(MASTER, None, (Action.ADVERTISE_ON_SCHEDULE,)),
    (MASTER, T.PRIORITY_CHANGED): Transition(MASTER, None, (Action.ADVERTISE_NOW,)),
}
# Anything else is ignored: e.g. advertisements in INIT, a bow-out heard as MASTER.


def classify_as_backup(
    local: Priority, my_demote: int, remote: wire.CarpHeader, preempt: bool, advbase: int
) -> Trigger:
    """Protocol section 4.4: what a valid advertisement means to a BACKUP."""
    theirs = (remote.advbase, remote.advskew)
    if remote.is_bow_out:
        return T.BOW_OUT
    if preempt and local < theirs and remote.demote >= my_demote:
        return T.SLOWER_MASTER_PREEMPTABLE
    if remote.demote > my_demote:  # OpenBSD: a demoted master is replaced
        return T.MORE_DEMOTED_MASTER
    # Skipped for advbase 0, as OpenBSD does: 3 * 0 would beat everyone.
    if advbase > 0 and (3 * local[0], local[1]) < theirs:
        return T.MASTER_WILL_TIME_OUT
    return T.MASTER_ALIVE


def classify_as_master(
    local: Priority,
    my_demote: int,
    remote: wire.CarpHeader,
    *,
    my_address: IPAddress | None = None,
    their_address: IPAddress | None = None,
) -> Trigger:
    """Protocol section 4.5: what a valid advertisement means to a MASTER.

    The kernels yield on a tie, so two equal masters both drop to BACKUP and
    race again. When our own source address is known we break the tie as
    ucarp does, the lower address staying MASTER (numeric order, which is
    ucarp's order too when the first three octets are equal), so equal
    priorities settle on one master.
    """
    if remote.is_bow_out:
        return T.PEER_LEAVING
    theirs = (remote.advbase, remote.advskew)
    tie = local == theirs and remote.demote == my_demote
    if tie and my_address is not None and their_address is not None:
        return T.WORSE_MASTER if int(my_address) < int(their_address) else T.BETTER_MASTER
    if local >= theirs and remote.demote <= my_demote:
        return T.BETTER_MASTER
    if remote.demote < my_demote:
        return T.LESS_DEMOTED_MASTER
    return T.WORSE_MASTER


def _random_counter() -> int:
    return secrets.randbits(64)


class VhidMachine:
    """The CARP state machine of one virtual host."""

    def __init__(
        self, config: VhidConfig, *, random_counter: Callable[[], int] = _random_counter
    ) -> None:
        self.config = config
        self.state = State.INIT
        self.entered_at: float | None = None
        self.demotion = 0  # added to advskew (FreeBSD semantics)
        self.demote_count = 0  # carried in header byte 4 (OpenBSD semantics)
        self.master_seen: MasterSeen | None = None
        # Our advertisements' source address per family, for tie-breaks.
        self.source_addresses: dict[int, IPAddress] = {}
        self._random_counter = random_counter
        self._counter: int | None = None  # None: not yet initialised (random per ad)
        self._last_sent_counter: int | None = None
        self._advert_due: float | None = None
        self._master_down_due: dict[int, float] = {}
        self._ads_until_reannounce: int | None = None

    # -- derived values ---------------------------------------------------

    @property
    def vhid(self) -> int:
        return self.config.vhid

    @property
    def effective_skew(self) -> int:
        return timing.effective_skew(self.config.advskew, self.demotion)

    @property
    def priority(self) -> Priority:
        return (self.config.advbase, self.effective_skew)

    @property
    def advertisement_interval(self) -> float:
        return timing.advertisement_interval(self.config.advbase, self.effective_skew)

    @property
    def master_down_interval(self) -> float:
        """The demotion is ignored here, as the kernels do."""
        c = self.config
        return timing.master_down_interval(c.advbase, c.advskew, c.timing)

    # -- timers -----------------------------------------------------------

    def get_timer(self) -> float | None:
        """When ``handle_timer`` should next be called, or None."""
        deadlines = list(self._master_down_due.values())
        if self._advert_due is not None:
            deadlines.append(self._advert_due)
        return min(deadlines, default=None)

    def handle_timer(self, now: float) -> list[Effect]:
        if self.state is State.BACKUP and any(d <= now for d in self._master_down_due.values()):
            return self._fire(T.MASTER_DOWN_TIMER, now)
        if self.state is State.MASTER and self._advert_due is not None and self._advert_due <= now:
            return self._fire(T.ADVERT_TIMER, now)
        return []

    # -- inputs -----------------------------------------------------------

    def link_up(self, now: float) -> list[Effect]:
        """The interface is usable: INIT -> BACKUP."""
        return self._fire(T.LINK_UP, now)

    def link_down(self, now: float) -> list[Effect]:
        return self._fire(T.LINK_DOWN, now)

    def shutdown(self, now: float) -> list[Effect]:
        """Graceful stop: a MASTER sends the 255/255 bow-out, then releases."""
        return self._fire(T.SHUTDOWN, now)

    def force(self, target: State, now: float) -> list[Effect]:
        """Administrative ``state master`` / ``state backup``."""
        if target is State.INIT:
            raise LocalProtocolError("use link_down or shutdown to enter INIT")
        return self._fire(T.ADMIN_MASTER if target is State.MASTER else T.ADMIN_BACKUP, now)

    def set_demotion(self, demotion: int, now: float) -> list[Effect]:
        """Set the skew demotion; a MASTER re-advertises at once if it changes anything."""
        before = self.effective_skew
        self.demotion = demotion
        return self._fire(T.PRIORITY_CHANGED, now) if self.effective_skew != before else []

    def set_demote_count(self, count: int, now: float) -> list[Effect]:
        """Set OpenBSD's demote count, sent in header byte 4."""
        if not 0 <= count <= 255:
            raise LocalProtocolError(f"demote count must be 0..255, got {count}")
        changed, self.demote_count = count != self.demote_count, count
        return self._fire(T.PRIORITY_CHANGED, now) if changed else []

    def receive(
        self,
        header: wire.CarpHeader,
        *,
        family: int,
        src: IPAddress,
        ttl: int,
        now: float,
        check_ttl: bool = True,
    ) -> list[Effect]:
        """Handle an advertisement whose checksum and version already passed.

        Raises RemoteProtocolError (state untouched) for the checks that need
        this vhid's context: family, TTL, HMAC, our own looped packet.
        """
        if header.vhid != self.vhid:
            raise LocalProtocolError(f"vhid {header.vhid} delivered to vhid {self.vhid}")
        if family not in self.config.families:
            raise RemoteProtocolError(
                DropReason.BADVHID, f"vhid {self.vhid} has no IPv{family} addresses"
            )
        if check_ttl and ttl != wire.CARP_TTL:
            raise RemoteProtocolError(
                DropReason.BADTTL, f"TTL {ttl} != 255 from {src} for vhid {self.vhid}"
            )
        c = self.config
        if not auth.verify_digest(c.key, c.vhid, c.hashed, header.counter, header.digest):
            raise RemoteProtocolError(
                DropReason.BADAUTH,
                f"incorrect hash for vhid {self.vhid} from {src}: "
                "check the password, the vhid and the address list",
            )
        if header.counter == self._last_sent_counter:
            raise RemoteProtocolError(DropReason.LOOP, f"own advertisement looped back from {src}")
        self._counter = header.counter  # FreeBSD/ucarp: continue from the peer's counter
        self.master_seen = MasterSeen(
            src, family, header.advbase, header.advskew, header.demote, now
        )
        if self.state is State.BACKUP:
            trigger = classify_as_backup(
                self.priority, self.demote_count, header, c.preempt, c.advbase
            )
        elif self.state is State.MASTER:
            trigger = classify_as_master(
                self.priority,
                self.demote_count,
                header,
                my_address=self.source_addresses.get(family),
                their_address=src,
            )
        else:
            return []
        effects = self._fire(trigger, now, family=family)
        if trigger is T.WORSE_MASTER:
            effects.append(SplitBrainSeen(self.vhid, src, header.advbase, header.advskew))
        return effects

    # -- the engine -------------------------------------------------------

    def _fire(self, trigger: Trigger, now: float, family: int | None = None) -> list[Effect]:
        transition = TRANSITIONS.get((self.state, trigger))
        if transition is None:
            return []
        effects: list[Effect] = []
        if Action.BOW_OUT in transition.actions:
            effects += self._advertise(now, bow_out=True)
        if transition.target is not self.state:
            effects += self._leave(self.state)
            old, self.state, self.entered_at = self.state, transition.target, now
            assert transition.reason is not None
            effects.insert(0, StateChanged(self.vhid, old, self.state, transition.reason))
            effects += self._enter(self.state, now)
        for action in transition.actions:
            if action is Action.ADVERTISE_NOW:
                effects += self._advertise(now)
            elif action is Action.ADVERTISE_ON_SCHEDULE:
                effects += self._advertise(now, on_schedule=True)
            elif action is Action.RESTART_MASTER_DOWN and family is not None:
                self._master_down_due[family] = now + self.master_down_interval
            elif action is Action.REANNOUNCE:
                effects.append(Announce(self.vhid))
        return effects

    def _leave(self, state: State) -> list[Effect]:
        self._master_down_due.clear()
        self._advert_due = None
        self._ads_until_reannounce = None
        return [ReleaseAddresses(self.vhid)] if state is State.MASTER else []

    def _enter(self, state: State, now: float) -> list[Effect]:
        if state is State.BACKUP:
            due = now + self.master_down_interval
            self._master_down_due = dict.fromkeys(self.config.families, due)
            return []
        if state is State.MASTER:
            effects = self._advertise(now)
            self._ads_until_reannounce = REANNOUNCE_AFTER_ADS
            return [*effects, AssignAddresses(self.vhid), Announce(self.vhid)]
        return []

    def _advertise(
        self, now: float, *, bow_out: bool = False, on_schedule: bool = False
    ) -> list[Effect]:
        """Build one advertisement per family; arm the next one unless bowing out."""
        c = self.config
        if self._counter is None:
            counter = self._random_counter() % COUNTER_MODULUS
        else:
            counter = (self._counter + 1) % COUNTER_MODULUS
            self._counter = counter
        self._last_sent_counter = counter
        advbase, advskew = timing.BOW_OUT if bow_out else self.priority
        header = wire.CarpHeader(
            vhid=c.vhid,
            advbase=advbase,
            advskew=advskew,
            counter=counter,
            digest=auth.compute_digest(c.key, c.vhid, c.hashed, counter),
            demote=self.demote_count,
        )
        payload = wire.encode(header)
        header = wire.parse(payload)  # carries the computed checksum
        effects: list[Effect] = [
            SendAdvertisement(c.vhid, family, payload, header) for family in c.families
        ]
        if bow_out:
            return effects
        # On schedule, count from the missed deadline so that wake-up latency does
        # not accumulate into drift; after a long stall (SIGSTOP) restart from now.
        interval = self.advertisement_interval
        base = self._advert_due if on_schedule and self._advert_due is not None else now
        self._advert_due = base + interval if base + interval > now else now + interval
        if self._ads_until_reannounce is not None:
            self._ads_until_reannounce -= 1
            if self._ads_until_reannounce <= 0:  # the 2nd advertisement after takeover
                self._ads_until_reannounce = None
                effects.append(Announce(self.vhid))
        return effects
