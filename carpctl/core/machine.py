"""One vhid's CARP state machine (protocol reference section 4), sans I/O.

Inputs are method calls that carry ``now`` (seconds on any monotonic clock);
outputs are lists of effects. ``get_timer()`` says when the machine next
wants ``handle_timer(now)``. The rules themselves are data in
``transitions.py``; this class classifies inputs, looks the transition up
and adds each state's standard enter/leave effects (timers, addresses).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import replace

from carpctl.core import auth, timing, wire
from carpctl.core.effects import (
    Announce,
    AssignAddresses,
    Effect,
    IPAddress,
    ReleaseAddresses,
    SendAdvertisement,
    SplitBrainSeen,
    State,
    StateChanged,
)
from carpctl.core.errors import DropReason, LocalProtocolError, RemoteProtocolError
from carpctl.core.timing import Priority
from carpctl.core.transitions import (
    TRANSITIONS,
    Action,
    Trigger,
    classify_as_backup,
    classify_as_master,
)
from carpctl.core.vhid import MasterSeen, VhidConfig

T = Trigger

COUNTER_MODULUS = 1 << 64
REANNOUNCE_AFTER_ADS = 2  # OpenBSD/ucarp's delayed second announcement


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
        self._advert_due: float | None = None
        self._master_down_due: dict[int, float] = {}
        self._ads_until_reannounce: int | None = None
        self._cadence_base: float | None = None  # the deadline a takeover happened on

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
        expired = [d for d in self._master_down_due.values() if d <= now]
        if self.state is State.BACKUP and expired:
            # Advertise on the deadline's cadence, not the wake-up's: vhids that
            # time out together stay in step (one wake-up serves them all).
            self._cadence_base = min(expired)
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
        this vhid's context: family, TTL, HMAC. (No counter-based loop check:
        under FreeBSD's scheme every backup adopts the same peer counter, so
        two of them legitimately send equal counters. Loops are caught by
        source address in the Receiver.)
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
                effects += self._advertise(now, base=self._advert_due)
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
            base, self._cadence_base = self._cadence_base, None
            effects = self._advertise(now, base=base)
            self._ads_until_reannounce = REANNOUNCE_AFTER_ADS
            return [*effects, AssignAddresses(self.vhid), Announce(self.vhid)]
        return []

    def _advertise(
        self, now: float, *, bow_out: bool = False, base: float | None = None
    ) -> list[Effect]:
        """Build one advertisement per family; arm the next one unless bowing out."""
        c = self.config
        if self._counter is None:
            counter = self._random_counter() % COUNTER_MODULUS
        else:
            counter = (self._counter + 1) % COUNTER_MODULUS
            self._counter = counter
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
        header = replace(header, checksum=int.from_bytes(payload[6:8], "big"))
        effects: list[Effect] = [
            SendAdvertisement(c.vhid, family, payload, header) for family in c.families
        ]
        if bow_out:
            return effects
        # Count from the deadline this advertisement was due on (``base``), so
        # wake-up latency does not accumulate into drift; after a long stall
        # (SIGSTOP) restart from now.
        interval = self.advertisement_interval
        start = base if base is not None else now
        self._advert_due = start + interval if start + interval > now else now + interval
        if self._ads_until_reannounce is not None:
            self._ads_until_reannounce -= 1
            if self._ads_until_reannounce <= 0:  # the 2nd advertisement after takeover
                self._ads_until_reannounce = None
                # Announce before advertising: a peer that preempts on this very
                # advertisement must announce after us, so its announcement wins.
                effects.insert(0, Announce(self.vhid))
        return effects
