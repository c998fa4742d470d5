"""The shapes of the daemon's results, and a checker for each.

The daemon builds these (plain JSON values); the CLI checks what it
received with ``check_result`` before rendering, so a daemon of another
version yields one sentence instead of a traceback. Times are wall-clock
epoch seconds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NotRequired, TypedDict, cast

from carpctl.control.protocol import ControlError
from carpctl.core.ledger import Entry

CHECK_PASSED = frozenset({"ok", "warning"})  # CheckResult.status of a passing run


class DemotionEntry(TypedDict):
    name: str  # "operator", "operator:db", "maintenance", "check:web", "ifdown:1@lab0" ...
    source: str  # carpctl.core.ledger.Source
    amount: int
    since: float
    expires: float | None
    reason: str


class Demotion(TypedDict):
    total: int
    entries: list[DemotionEntry]


class MasterSeen(TypedDict):
    src: str  # the master's source address
    advbase: int
    advskew: int
    at: float  # when its last advertisement arrived


class VhidStatus(TypedDict):
    name: str  # "1@lab0"
    vhid: int
    interface: str
    state: str  # INIT | BACKUP | MASTER
    since: float
    advbase: int
    advskew: int  # configured
    effective_skew: int  # advertised: advskew + demotion, clamped to 0..240
    master_seen: MasterSeen | None
    sent: int
    send_errors: int
    split_brain: bool


class CheckResult(TypedDict):
    status: str  # "ok" | "warning" (both pass) | "failure" | "timeout"
    detail: str
    duration: float  # seconds
    at: float


class CheckStatus(TypedDict):
    name: str
    kind: str
    state: str  # after rise/fall: "unknown" | "passing" | "failing"
    demote: int  # added to the demotion while failing
    last: CheckResult | None


class KernelDemotion(TypedDict):
    total: int
    carpctl: int
    other: int


class Status(TypedDict):
    """The result of ``status``."""

    backend: str
    node: str
    demotion: Demotion
    vhids: list[VhidStatus]
    checks: list[CheckStatus]
    drops: dict[str, dict[str, int]]  # interface -> reason -> packets rejected
    kernel: KernelDemotion | None  # BSD backends: the kernel's demotion and who set it
    services: NotRequired[list[dict[str, Any]]]  # the role reactor's rows (carpctl.reactor.status)
    events: NotRequired[list[dict[str, Any]]]  # the journal's last records (carpctl.daemon.journal)


class ChangeResult(TypedDict):
    """The result of ``demote`` and ``maintenance``."""

    entry: DemotionEntry | None  # the entry now in force; None when it was removed
    total: int


class CheckRun(TypedDict):
    """The result of ``check``: the checks that ran, with their fresh ``last``."""

    checks: list[CheckStatus]


EventResult = dict[str, Any]  # the result of ``event``: open for now


def change_result(entry: Entry | None, total: int) -> ChangeResult:
    """The ``demote``/``maintenance`` result for what the ledger returned."""
    return {"entry": None if entry is None else _entry(entry), "total": total}


def _entry(entry: Entry) -> DemotionEntry:
    return cast(DemotionEntry, entry.to_json())


# -- checking -------------------------------------------------------------------


@dataclass(frozen=True)
class _Optional:
    spec: Any


@dataclass(frozen=True)
class _MapOf:
    spec: Any


_NUMBER = (int, float)
_ENTRY = {
    "name": str,
    "source": str,
    "amount": int,
    "since": _NUMBER,
    "expires": _Optional(_NUMBER),
    "reason": str,
}
_CHECK = {
    "name": str,
    "kind": str,
    "state": str,
    "demote": int,
    "last": _Optional({"status": str, "detail": str, "duration": _NUMBER, "at": _NUMBER}),
}
_VHID = {
    "name": str,
    "vhid": int,
    "interface": str,
    "state": str,
    "since": _NUMBER,
    "advbase": int,
    "advskew": int,
    "effective_skew": int,
    "master_seen": _Optional({"src": str, "advbase": int, "advskew": int, "at": _NUMBER}),
    "sent": int,
    "send_errors": int,
    "split_brain": bool,
}
SPECS: dict[str, Any] = {
    "status": {
        "backend": str,
        "node": str,
        "demotion": {"total": int, "entries": [_ENTRY]},
        "vhids": [_VHID],
        "checks": [_CHECK],
        "drops": _MapOf(_MapOf(int)),
        "kernel": _Optional({"total": int, "carpctl": int, "other": int}),
    },
    "demote": {"entry": _Optional(_ENTRY), "total": int},
    "maintenance": {"entry": _Optional(_ENTRY), "total": int},
    "check": {"checks": [_CHECK]},
}


def _mismatch(value: Any, spec: Any, where: str) -> str | None:
    """Where ``value`` departs from ``spec`` (None when it fits)."""
    if isinstance(spec, _Optional):
        return None if value is None else _mismatch(value, spec.spec, where)
    if isinstance(spec, type | tuple):
        kinds = spec if isinstance(spec, tuple) else (spec,)
        if isinstance(value, bool) and bool not in kinds:
            return f"{where}: expected {kinds[0].__name__}, got a boolean"
        return None if isinstance(value, kinds) else f"{where}: expected {kinds[0].__name__}"
    if isinstance(spec, list):
        if not isinstance(value, list):
            return f"{where}: expected a list"
        return next(
            (m for i, v in enumerate(value) if (m := _mismatch(v, spec[0], f"{where}[{i}]"))),
            None,
        )
    if not isinstance(value, dict):
        return f"{where}: expected an object"
    if isinstance(spec, _MapOf):
        items = ((f"{where}.{k}", v, spec.spec) for k, v in value.items())
    else:
        missing = sorted(set(spec) - set(value))
        if missing:
            return f"{where}.{missing[0]}: missing"
        items = ((f"{where}.{k}", value[k], s) for k, s in cast(Mapping[str, Any], spec).items())
    return next((m for key, v, s in items if (m := _mismatch(v, s, key))), None)


def check_result(command: str, result: Any) -> Any:
    """``result`` unchanged if it has the shape of ``command``'s result.

    Extra keys are allowed (a newer daemon may add some); ControlError
    (code 1) names the first thing missing or of the wrong type.
    """
    spec = SPECS.get(command)
    problem = None if spec is None else _mismatch(result, spec, "result")
    if problem:
        raise ControlError(f"the daemon's {command} reply is malformed: {problem}")
    return result


def check_status(result: Any) -> Status:
    return cast(Status, check_result("status", result))


def check_change(command: str, result: Any) -> ChangeResult:
    return cast(ChangeResult, check_result(command, result))


def check_run(result: Any) -> CheckRun:
    return cast(CheckRun, check_result("check", result))
