"""What ``carpctl status`` shows of the reactor: one JSON row per service."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from carpctl.reactor.executor import Reactor


@dataclass(frozen=True, slots=True)
class LastAction:
    action: str  # start | stop | exit (a run process died)
    result: str  # ok | failed | timeout
    detail: str
    duration: float
    at: float  # wall clock, when it ended

    def to_json(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "result": self.result,
            "detail": self.detail,
            "duration": round(self.duration, 6),
            "at": self.at,
        }


def service_rows(reactor: Reactor, now: float, offset: float) -> list[dict[str, Any]]:
    """``now``: the core's (monotonic) time; ``offset``: wall clock minus that clock.

    ``desired``/``why``/``until``: whether the service should run now and why
    (``until``: when a hold-down, a start-failure back-off or min_master ends).
    ``actual`` comes from ``actual_from``: the status query ("status"), the
    supervised process ("process") or, for a command service without a status
    argv, what carpctl last did ("last action"). Times are wall-clock seconds.
    """

    def wall(at: float | None) -> float | None:
        return None if at is None else at + offset

    core, rows = reactor.core, []
    for name, spec in reactor.specs.items():
        verdict = core.verdict(name, now)
        last = reactor.last_actions.get(name)
        busy = reactor.busy
        rows.append(
            {
                "name": name,
                "manager": str(spec.manager),
                "target": spec.target,
                "vhids": list(core.vhids_of(name)),
                "every_vhid": not spec.vhids,
                "desired": "running" if verdict.run else "stopped",
                "why": str(verdict.why) + (f": {verdict.detail}" if verdict.detail else ""),
                "until": wall(verdict.until),
                "actual": str(core.actual(name)),
                "actual_from": reactor.managers[name].state_source,
                "busy": str(busy.action) if busy is not None and busy.service == name else None,
                "last": None if last is None else last.to_json(),
                "stop_failed": core.stop_failed(name),
                "hold_down_until": wall(core.hold_until(name, now)),
                "flaps": core.flaps(name, now),
                "master_since": wall(core.eligible_since(name)),
                "demote": spec.demote,
                "retry_after": spec.retry_after,
            }
        )
    return rows
