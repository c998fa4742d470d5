"""CARP's transitions as data (protocol reference sections 4.3-4.8).

Every input of a vhid's machine is first classified into a ``Trigger``;
``TRANSITIONS`` then says where each (state, trigger) leads, why, and what
extra work it takes. Pairs missing from the table are ignored (an
advertisement in INIT, a bow-out heard while MASTER).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, auto

from carpctl.core import wire
from carpctl.core.effects import IPAddress, Reason, State
from carpctl.core.timing import Priority


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
