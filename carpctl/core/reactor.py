"""Which services should run, from the node's roles (design section 7), sans I/O.

A service runs iff this node is MASTER of ALL its vhids (a router must hold
both its LAN and its WAN address) and nothing holds it down. A service
bound to no vhid in particular follows every vhid the reactor knows; with
none known yet it is left alone (no step either way), and so is a service
one of whose vhids was only named by the config and never reported (its
role is unknown, not INIT: a BSD daemon restarting on a master must not
stop what runs before the first ifconfig poll). Vhids given to the
constructor (the configured ones) start known, as INIT.

Damping, per service, counted on its *eligibility* (MASTER of all its
vhids or not) rather than on raw vhid events, so a router's LAN+WAN
failover is one change, not two:

* ``min_master``: seconds the node must have been MASTER of all the
  service's vhids before the start is issued (0: at once);
* ``flap_count`` changes within ``flap_window`` seconds hold the service
  down for ``hold_down`` seconds from the last of them (0: never); every
  further change while the count holds extends the hold-down.

After a failed start the service is not started again for ``retry_after``
seconds; after a failed stop the stop is not retried until the driver
calls ``retry_stops()`` (its next reconcile).

``plan(now)`` lists the steps that close the gap between desired and
actual: stops first, in reverse config order, then starts, in config order.
The driver performs one step, reports it with ``done()``, and asks again:
a role change between two steps changes the next plan, so a step is never
issued for a role that is already gone. ``get_timer()`` is when the core
next wants ``handle_timer(now)``. Times are seconds on any monotonic clock.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from carpctl.core.roles import Role, VhidRole, parse_vhid_name
from carpctl.core.steps import Action, Actual, ServiceRule, Step, Verdict, Why

__all__ = [
    "Action",
    "Actual",
    "ReactorCore",
    "Role",
    "ServiceRule",
    "Step",
    "Verdict",
    "VhidRole",
    "Why",
    "parse_vhid_name",
]


@dataclass(slots=True)
class _Service:
    rule: ServiceRule
    actual: Actual = Actual.UNKNOWN
    eligible: bool = False
    eligible_since: float | None = None
    flips: deque[float] = field(default_factory=deque)
    hold_until: float | None = None
    blocked_until: float | None = None  # after a failed start
    stop_failed: bool = False


class ReactorCore:
    def __init__(self, rules: Sequence[ServiceRule], vhids: Iterable[str] = ()) -> None:
        names = [r.name for r in rules]
        if len(set(names)) != len(names):
            raise ValueError(f"service names must be unique, got {names}")
        self._services = {r.name: _Service(r) for r in rules}
        self._roles: dict[str, VhidRole] = {}
        for name in vhids:  # declared: INIT until told otherwise
            parse_vhid_name(name)
            self._roles.setdefault(name, VhidRole(reported=True))
        for name in (v for r in rules for v in r.vhids):  # only named: unknown until told
            parse_vhid_name(name)
            self._roles.setdefault(name, VhidRole())
        self._seq = 0
        self._now = float("-inf")
        self.released = False

    # -- inputs -------------------------------------------------------------

    def role_changed(
        self, vhid: str, new: Role, now: float, *, old: Role | None = None, at: float | None = None
    ) -> bool:
        """Record ``vhid``'s new role; True when it differs from the one known."""
        parse_vhid_name(vhid)
        new = Role(new)
        self._tick(now)
        known = self._roles.setdefault(vhid, VhidRole())
        if known.role is new and known.reported:
            return False
        self._seq += 1
        previous = known.role if old is None else Role(old)
        self._roles[vhid] = VhidRole(new, previous, now, self._seq, at, reported=True)
        for service in self._services.values():
            if not service.rule.vhids or vhid in service.rule.vhids:
                self._update_eligibility(service, now)
        return known.role is not new

    def observed(self, name: str, actual: Actual) -> None:
        """A status query found the service ``actual``."""
        self._services[name].actual = Actual(actual)

    def done(self, name: str, action: Action, ok: bool, now: float) -> None:
        """The driver performed a step (``ok``: it succeeded). A failed start may have left
        something running: it counts as running, so the next plan stops it."""
        self._tick(now)
        service = self._services[name]
        if action is Action.START:
            service.actual = Actual.RUNNING
            service.blocked_until = None if ok else now + service.rule.retry_after
            service.stop_failed = False  # an earlier failed stop is history now
        else:
            service.actual = Actual.STOPPED if ok else Actual.UNKNOWN
            service.stop_failed = not ok

    def died(self, name: str, now: float) -> None:
        """A supervised process exited on its own: like a failed start."""
        self._tick(now)
        service = self._services[name]
        service.actual = Actual.STOPPED
        service.blocked_until = now + service.rule.retry_after

    def retry_stops(self) -> None:
        """Let failed stops be tried again (the driver's reconcile)."""
        for service in self._services.values():
            service.stop_failed = False

    def release(self) -> None:
        """From now on every service should be stopped (a graceful daemon stop)."""
        self.released = True

    def handle_timer(self, now: float) -> None:
        self._tick(now)

    def adopt(self, old: ReactorCore, *, keep_vhids: bool = True) -> None:
        """Carry state over from ``old`` (a reload): the roles (all of them, or with
        ``keep_vhids=False`` only those of vhids this core knows), and per service of
        the same name all its state if its rule is unchanged, else only ``actual``."""
        roles = {k: v for k, v in old._roles.items() if keep_vhids or k in self._roles}
        self._roles = {**self._roles, **roles}
        self._seq, self._now, self.released = old._seq, old._now, old.released
        for name in self._services:
            s, before = self._services[name], old._services.get(name)
            if before is not None and before.rule == s.rule:
                self._services[name] = s = before
            elif before is not None:
                s.actual = before.actual
            vhids = self.vhids_of(name)
            eligible = bool(vhids) and all(self._is_master(v) for v in vhids)
            if eligible != s.eligible:  # a new vhid, or a new rule: not a flap
                s.eligible = eligible
                since = [self._roles[v].since for v in vhids]
                s.eligible_since = (
                    max(self._now if t is None else t for t in since) if eligible else None
                )

    # -- outputs ------------------------------------------------------------

    def get_timer(self) -> float | None:
        """The next moment a verdict may change by itself, or None."""
        deadlines = []
        for s in self._services.values():
            deadlines += [s.hold_until, s.blocked_until]
            if s.eligible and s.eligible_since is not None and s.rule.min_master > 0:
                deadlines.append(s.eligible_since + s.rule.min_master)
        return min((d for d in deadlines if d is not None and d > self._now), default=None)

    def verdict(self, name: str, now: float) -> Verdict:
        self._tick(now)
        s = self._services[name]
        vhids = self.vhids_of(name)
        if self.released:
            return Verdict(False, Why.RELEASED)
        if not vhids:
            return Verdict(False, Why.NO_VHID)
        unheard = [v for v in vhids if not self._roles[v].reported]
        if unheard:
            return Verdict(False, Why.UNREPORTED, detail=", ".join(unheard))
        if not s.eligible:
            others = [f"{v} is {self._roles[v].role}" for v in vhids if not self._is_master(v)]
            return Verdict(False, Why.NOT_MASTER, detail=", ".join(others))
        for why, until in ((Why.HOLD_DOWN, s.hold_until), (Why.START_FAILED, s.blocked_until)):
            if until is not None and until > now:
                return Verdict(False, why, until)
        since = s.eligible_since if s.eligible_since is not None else now
        settled = since + s.rule.min_master
        if settled > now:
            return Verdict(False, Why.SETTLING, settled)
        return Verdict(True, Why.MASTER, detail=", ".join(vhids))

    def plan(self, now: float) -> list[Step]:
        """Stops in reverse config order, then starts in config order."""
        stops, starts = [], []
        for name, s in self._services.items():
            verdict = self.verdict(name, now)
            if verdict.why in (Why.NO_VHID, Why.UNREPORTED):
                continue  # nothing known of its roles: leave it as it is
            run = verdict.run
            if run and s.actual is not Actual.RUNNING:
                starts.append(self._step(Action.START, name))
            elif not run and s.actual is not Actual.STOPPED and not s.stop_failed:
                stops.append(self._step(Action.STOP, name))
        return [*reversed(stops), *starts]

    def next_step(self, now: float) -> Step | None:
        steps = self.plan(now)
        return steps[0] if steps else None

    # -- queries ------------------------------------------------------------

    @property
    def roles(self) -> dict[str, Role]:
        return {name: r.role for name, r in self._roles.items()}

    def role(self, vhid: str) -> VhidRole:
        return self._roles[vhid]

    def vhids_of(self, name: str) -> tuple[str, ...]:
        return self._services[name].rule.vhids or tuple(self._roles)

    def actual(self, name: str) -> Actual:
        return self._services[name].actual

    def flaps(self, name: str, now: float) -> int:
        """Eligibility changes of the service within its flap window."""
        s = self._services[name]
        return sum(1 for t in s.flips if t > now - s.rule.flap_window)

    def hold_until(self, name: str, now: float) -> float | None:
        until = self._services[name].hold_until
        return until if until is not None and until > now else None

    def eligible_since(self, name: str) -> float | None:
        return self._services[name].eligible_since

    def stop_failed(self, name: str) -> bool:
        return self._services[name].stop_failed

    # -- internals ----------------------------------------------------------

    def _tick(self, now: float) -> None:
        self._now = max(self._now, now)

    def _is_master(self, vhid: str) -> bool:
        return self._roles[vhid].role is Role.MASTER

    def _update_eligibility(self, s: _Service, now: float) -> None:
        vhids = self.vhids_of(s.rule.name)
        eligible = bool(vhids) and all(self._is_master(v) for v in vhids)
        if eligible == s.eligible:
            return
        s.eligible = eligible
        s.eligible_since = now if eligible else None
        rule = s.rule
        s.flips.append(now)
        while s.flips and s.flips[0] <= now - rule.flap_window:
            s.flips.popleft()
        if rule.flap_count and len(s.flips) >= rule.flap_count:
            s.hold_until = max(s.hold_until or now, now + rule.hold_down)

    def _step(self, action: Action, name: str) -> Step:
        """The step, with the event it answers: for a start, the service's most recent
        MASTER vhid; for a stop, its first vhid that is not MASTER (BACKUP if all are:
        held down, a failed start, or the daemon stopping)."""
        vhids = self.vhids_of(name)
        if action is Action.START:
            vhid = max(vhids, key=lambda v: self._roles[v].seq)
            role = self._roles[vhid]
            return Step(action, name, vhid, Role.MASTER, role.old, role.seq, role.at)
        vhid = next((v for v in vhids if not self._is_master(v)), vhids[0])
        role = self._roles[vhid]
        state = role.role if role.role is not Role.MASTER else Role.BACKUP
        old = role.old if role.role is not Role.MASTER else Role.MASTER
        return Step(action, name, vhid, state, old, role.seq, role.at)
