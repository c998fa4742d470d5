"""Run every check on its own interval, off the event loop, under a hard timeout.

The event loop also sends CARP advertisements, so nothing here may block
it: blocking probes run in a ``WorkerPool`` of daemon threads, command
checks as asyncio subprocesses (``kinds.command.run``, which kills the
whole process group past the timeout).

A thread cannot be killed, so a probe that overruns its timeout is
*abandoned*: the run is reported TIMEOUT at once, and the thread is left to
finish (or hang) on its own. At most one run of a check is in flight: while
an abandoned thread of a check still hangs, its next runs are not started
but reported TIMEOUT ("still hanging"), so a check that hangs forever holds
one thread, never more. The pool is sized to the number of thread-run
checks: with one thread per check at most, no check ever waits for a
worker because others hang (threads are started only as needed).

Results feed each check's ``CheckState`` (rise/fall); a change of state is
handed to ``on_change(spec, transition)`` on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog

from carpctl.core.checkstate import CheckState, Result, State, Transition
from carpctl.health import kinds
from carpctl.health.kinds import command
from carpctl.health.pool import WorkerPool
from carpctl.health.result import CheckResult
from carpctl.health.spec import CheckSpec, CommandParams
from carpctl.ratelimit import RateLimiter

Probe = Callable[[CheckSpec], CheckResult]
OnChange = Callable[[CheckSpec, Transition], None]
FIRST_RUN_SPREAD = 1.0  # seconds over which the first runs of all checks are spread

_log = structlog.get_logger("carpctl.health")
_abandoned = RateLimiter(burst=3, period=300.0)  # per check


class UnknownCheck(LookupError):
    """``run_now`` was asked for a check that is not configured."""


@dataclass(frozen=True, slots=True)
class CheckReport:
    """One finished run of a check."""

    name: str
    kind: str
    status: Result
    detail: str
    duration: float  # seconds, from start to result (the timeout, for an abandoned run)
    at: float  # wall-clock time of the result
    state: State  # the check's state after this result
    transition: Transition | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "status": str(self.status),
            "detail": self.detail,
            "duration": round(self.duration, 6),
            "at": self.at,
            "state": str(self.state),
            "transition": None
            if self.transition is None
            else {"from": str(self.transition.old), "to": str(self.transition.new)},
        }


@dataclass
class _Check:
    spec: CheckSpec
    state: CheckState
    last: CheckReport | None = None
    running: asyncio.Task[CheckReport] | None = None  # the run in flight, shared by callers
    hung: asyncio.Future[CheckResult] | None = None  # an abandoned probe still running
    hung_since: float = 0.0
    schedule: asyncio.Task[None] | None = field(default=None, repr=False)


class CheckRunner:
    def __init__(
        self,
        specs: Sequence[CheckSpec],
        on_change: OnChange,
        *,
        loop: asyncio.AbstractEventLoop | None = None,
        probe: Probe = kinds.probe,
        wall: Callable[[], float] = time.time,
    ) -> None:
        """``probe`` runs one check, blocking (tests replace it); ``wall`` stamps results."""
        self._checks = {s.name: _Check(s, CheckState(s.rise, s.fall)) for s in specs}
        self._on_change = on_change
        self._loop = loop
        self._probe = probe
        self._wall = wall
        threaded = sum(1 for s in specs if not self._as_subprocess(s))
        self.pool = WorkerPool(max(1, threaded))

    # -- life cycle ---------------------------------------------------------

    def start(self) -> None:
        """Schedule every check; the first runs are spread over up to a second."""
        loop = self._get_loop()
        count = len(self._checks)
        for index, check in enumerate(self._checks.values()):
            delay = index / count * min(check.spec.interval, FIRST_RUN_SPREAD)
            check.schedule = loop.create_task(
                self._every(check, delay), name=f"check:{check.spec.name}"
            )

    async def stop(self) -> None:
        """Stop scheduling, cancel runs in flight (killing their commands)."""
        tasks: list[asyncio.Task[Any]] = []
        for check in self._checks.values():
            for task in (check.schedule, check.running):
                if task is not None and not task.done():
                    task.cancel()
                    tasks.append(task)
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.pool.shutdown()

    # -- queries ------------------------------------------------------------

    async def run_now(self, name: str | None = None) -> list[CheckReport]:
        """Run one check (or all) now, concurrently; the results count like scheduled ones.

        A check with a run in flight answers with that run's result.
        """
        if name is not None and name not in self._checks:
            raise UnknownCheck(f"no check named {name!r}")
        chosen = [self._checks[name]] if name is not None else list(self._checks.values())
        return list(await asyncio.gather(*(self._run(c) for c in chosen)))

    def status(self) -> list[dict[str, Any]]:
        """Every check's configuration, state and last result, as JSON values."""
        rows = []
        for check in self._checks.values():
            spec, last = check.spec, check.last
            rows.append(
                {
                    "name": spec.name,
                    "kind": str(spec.kind),
                    "state": str(check.state.state),
                    "demote": spec.demote,
                    "interval": spec.interval,
                    "timeout": spec.timeout,
                    "rise": spec.rise,
                    "fall": spec.fall,
                    "consecutive": check.state.consecutive,
                    "hanging": check.hung is not None and not check.hung.done(),
                    "last": None
                    if last is None
                    else {
                        "status": str(last.status),
                        "detail": last.detail,
                        "duration": round(last.duration, 6),
                        "at": last.at,
                    },
                }
            )
        return rows

    @property
    def ready(self) -> bool:
        """True once every check has a verdict (passed ``rise`` or failed ``fall`` times)."""
        return all(c.state.decided for c in self._checks.values())

    def state(self, name: str) -> State:
        return self._checks[name].state.state

    # -- running ------------------------------------------------------------

    def _get_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop

    def _as_subprocess(self, spec: CheckSpec) -> bool:
        return isinstance(spec.params, CommandParams) and self._probe is kinds.probe

    async def _every(self, check: _Check, delay: float) -> None:
        loop = self._get_loop()
        await asyncio.sleep(delay)
        due = loop.time()
        while True:
            try:
                await self._run(check)
            except Exception:  # a bug must not end the schedule; the log says where
                _log.exception("check run failed", check=check.spec.name)
            due += check.spec.interval
            now = loop.time()
            due = max(due, now)  # a late run (shared with run_now) skips, never bunches
            await asyncio.sleep(due - now)

    async def _run(self, check: _Check) -> CheckReport:
        if check.running is None or check.running.done():
            check.running = self._get_loop().create_task(self._run_once(check))
        return await asyncio.shield(check.running)

    async def _run_once(self, check: _Check) -> CheckReport:
        loop = self._get_loop()
        started = loop.time()
        if check.hung is not None and not check.hung.done():
            result = CheckResult.timeout(
                f"not run: the previous run is still hanging after "
                f"{started - check.hung_since:.1f} s"
            )
        else:
            check.hung = None
            result = await self._execute(check, started)
        return self._record(check, result, loop.time() - started)

    async def _execute(self, check: _Check, started: float) -> CheckResult:
        spec = check.spec
        try:
            if self._as_subprocess(spec):
                assert isinstance(spec.params, CommandParams)
                return await command.run(spec, spec.params)
            future = asyncio.wrap_future(self.pool.submit(lambda: self._probe(spec)))
            try:
                return await asyncio.wait_for(asyncio.shield(future), spec.timeout)
            except TimeoutError:
                check.hung, check.hung_since = future, started
                future.add_done_callback(_consume)
                allowed, suppressed = _abandoned.allow(spec.name)
                if allowed:  # a check that hangs every run would flood the log
                    _log.warning(
                        "check abandoned past its timeout", check=spec.name, suppressed=suppressed
                    )
                return CheckResult.timeout(f"no result within {spec.timeout:g} s")
        except Exception as error:
            _log.exception("probe crashed", check=spec.name)
            return CheckResult.failure(f"probe crashed: {type(error).__name__}: {error}")

    def _record(self, check: _Check, result: CheckResult, duration: float) -> CheckReport:
        spec = check.spec
        transition = check.state.record(result.status, result.detail)
        report = CheckReport(
            name=spec.name,
            kind=str(spec.kind),
            status=result.status,
            detail=result.detail,
            duration=duration,
            at=self._wall(),
            state=check.state.state,
            transition=transition,
        )
        check.last = report
        if transition is not None:
            log = _log.warning if transition.new is State.FAILING else _log.info
            log(
                "check state changed",
                check=spec.name,
                old=str(transition.old),
                new=str(transition.new),
                result=str(result.status),
                detail=result.detail,
            )
            try:
                self._on_change(spec, transition)
            except Exception:
                _log.exception("on_change failed", check=spec.name)
        return report


def _consume(future: asyncio.Future[CheckResult]) -> None:
    """Retrieve an abandoned probe's outcome, so asyncio does not warn it was never seen."""
    if not future.cancelled():
        future.exception()
