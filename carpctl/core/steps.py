"""What the reactor's planner (``core.reactor``) takes and gives, as plain values:
a service's rule, the verdict on it, the steps of a plan."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from carpctl.core.roles import Role


class Actual(StrEnum):
    RUNNING = "running"
    STOPPED = "stopped"
    UNKNOWN = "unknown"


class Action(StrEnum):
    START = "start"
    STOP = "stop"


class Why(StrEnum):
    """Why a service should (not) run now."""

    MASTER = "master of all its vhids"
    NO_VHID = "no vhid known yet"
    UNREPORTED = "waiting for the role of"
    NOT_MASTER = "not master"
    HOLD_DOWN = "held down after flapping"
    START_FAILED = "start failed, retry later"
    SETTLING = "waiting for min_master"
    RELEASED = "released (daemon stopping)"


@dataclass(frozen=True, slots=True)
class ServiceRule:
    name: str
    vhids: tuple[str, ...] = ()  # () = every vhid known
    min_master: float = 0.0
    flap_count: int = 0  # 0 = no hold-down
    flap_window: float = 60.0
    hold_down: float = 60.0
    retry_after: float = 60.0


@dataclass(frozen=True, slots=True)
class Verdict:
    run: bool
    why: Why
    until: float | None = None  # when HOLD_DOWN / START_FAILED / SETTLING ends
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Step:
    """One thing to do, with the devd-style event it answers (``1@eth0 MASTER``)."""

    action: Action
    service: str
    vhid: str
    state: Role
    old_state: Role
    seq: int  # the role-change sequence number of that vhid's current role
    at: float | None  # the caller's time stamp of that role change (wall clock)
