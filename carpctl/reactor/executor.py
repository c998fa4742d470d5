"""The role reactor's asyncio driver: services follow mastership (design section 7).

One task performs the plan of ``carpctl.core.reactor``, one step at a time,
asking the core again after every step: transitions are serialized, and a
role change during a step lets that step finish (or time out) and the next
step is planned from the new roles, so a service is never started for a
role that is already gone ("the newest role wins").

``reconcile()`` is level-triggered: every service's status is queried
(concurrently, beside the driver: a hung status query never delays a step,
and an answer older than a step on its service is dropped) and the
differences fixed; failed stops are retried then. The daemon calls it at
start and on reload; the reactor also runs it every ``reconcile_interval``
seconds. A service in an unknown state is asked just before a step on it.
Core time is the loop's monotonic clock; ``at`` arguments and status times
are wall-clock epoch seconds.

A start that fails or times out calls ``on_start_failed(spec, detail)`` (the
daemon adds a ledger entry so a healthy peer takes over), and the next plan
stops what that start left behind; it is not retried for ``retry_after``
seconds. The first successful start after that calls ``on_recovered``. A
``run`` service's process that dies on its own counts as a failed start.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import structlog

from carpctl.core.reactor import Action, Actual, ReactorCore, Role, Step
from carpctl.reactor.managers import OnExit, Outcome, ServiceManager, make_manager
from carpctl.reactor.process import Event
from carpctl.reactor.querying import ask, status_pass
from carpctl.reactor.reloading import replace_services
from carpctl.reactor.spec import ServiceSpec
from carpctl.reactor.status import LastAction, service_rows

RECONCILE_INTERVAL = 10.0
ManagerFactory = Callable[[ServiceSpec, OnExit], ServiceManager]


class Reactor:
    def __init__(
        self,
        specs: Sequence[ServiceSpec],
        *,
        on_start_failed: Callable[[ServiceSpec, str], None],
        on_recovered: Callable[[ServiceSpec], None] | None = None,
        on_action: Callable[[ServiceSpec, str, str, str, float], None] | None = None,
        log: Any = None,
        loop: asyncio.AbstractEventLoop | None = None,
        wall: Callable[[], float] = time.time,
        vhids: Iterable[str] = (),
        reconcile_interval: float = RECONCILE_INTERVAL,
        managers: ManagerFactory = make_manager,
    ) -> None:
        """``vhids``: the vhids known from the start (the configured ``[[vhid]]`` names)."""
        self.specs = {s.name: s for s in specs}
        self.core = ReactorCore([s.rule() for s in specs], vhids)
        self._factory = managers
        self.managers = {s.name: self.new_manager(s) for s in specs}
        self._on_start_failed, self._on_recovered = on_start_failed, on_recovered
        self._on_action = on_action  # (spec, action, result, detail, duration): the journal
        self.log = log if log is not None else structlog.get_logger("carpctl.reactor")
        self._loop, self._wall = loop, wall
        self.reconcile_interval = reconcile_interval
        self.last_actions: dict[str, LastAction] = {}
        self._failed: set[str] = set()  # last start failed; on_recovered pending
        self.busy: Step | None = None
        self._wake = asyncio.Event()
        self._idle = True
        self._reconciles: list[asyncio.Future[None]] = []
        self._idlers: list[asyncio.Future[None]] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._steps = asyncio.Lock()  # held for each step and a reload
        self._query_wanted = asyncio.Event()
        self.generation: dict[str, int] = {}  # per service, bumped around each step

    # -- life cycle ---------------------------------------------------------

    def start(self) -> None:
        """Start the driver and the periodic reconcile; reconcile now."""
        loop = self._get_loop()
        self._tasks = [
            loop.create_task(self._drive(), name="reactor"),
            loop.create_task(self._queries(), name="reactor-status"),
            loop.create_task(self._every(), name="reactor-reconcile"),
        ]
        self.reconcile()

    async def stop(self) -> None:
        """Stop driving. Stops no service: that is ``release_all``'s job."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if self._timer is not None:
            self._timer.cancel()
        for future in self._reconciles + self._idlers:
            future.cancel()
        self._reconciles, self._idlers = [], []

    async def release_all(self) -> None:
        """Stop every service (reverse config order) and start none again (graceful stop)."""
        self.core.release()
        if self._tasks:
            self._kick()
            await self.idle()
        else:
            await self._run_plan()

    async def reload(
        self, specs: Sequence[ServiceSpec], vhids: Iterable[str] | None = None
    ) -> None:
        """Take a new ``[[service]]`` list (between two steps), then reconcile.

        A service whose spec is unchanged keeps everything: state, damping, last
        action, its manager and its ``run`` process. A changed one keeps only what it
        was last seen doing; the process of a changed or removed ``run`` service is
        stopped (carpctl owns it). A removed unit, rc or command service is left as it
        is. ``vhids``: the configured vhids now (None or empty: keep every vhid known).
        """
        async with self._steps:
            await replace_services(self, specs, tuple(vhids or ()))
        if self._tasks:
            await self.reconcile()

    # -- inputs -------------------------------------------------------------

    def role_changed(self, name: str, old: str, new: str, at: float) -> None:
        """``name`` (``1@eth0``) went from ``old`` to ``new`` (INIT/BACKUP/MASTER) at wall time
        ``at``. ValueError (and nothing changes) for a bad name or role."""
        old_role, new_role = Role(old), Role(new)
        if self.core.role_changed(name, new_role, self._now(), old=old_role, at=at):
            self.log.info("role changed", vhid=name, old=str(old_role), new=str(new_role))
        self._kick()

    def set_roles(self, roles: Mapping[str, str], at: float) -> None:
        """A snapshot of roles (e.g. polled from ifconfig): each difference is a change."""
        known = self.core.roles
        for name, new in roles.items():
            if known.get(name) != new:
                self.role_changed(name, str(known.get(name, Role.INIT)), new, at)

    def reconcile(self) -> asyncio.Future[None]:
        """Query every service and fix differences; the future is done after that pass."""
        future = self._get_loop().create_future()
        self._reconciles.append(future)
        self._query_wanted.set()
        return future

    async def idle(self) -> None:
        """Return once nothing is left to do (no step running, none planned); at once when
        the reactor is not started."""
        if not self._tasks or (self._idle and not self._wake.is_set()):
            return
        future = self._get_loop().create_future()
        self._idlers.append(future)
        await future

    # -- driving ------------------------------------------------------------

    def new_manager(self, spec: ServiceSpec) -> ServiceManager:
        return self._factory(spec, functools.partial(self._exited, spec.name))

    def _get_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop

    def _now(self) -> float:
        return self._loop.time() if self._loop is not None else time.monotonic()

    def _kick(self) -> None:
        self._idle = False
        self._wake.set()

    async def _every(self) -> None:
        while True:
            await asyncio.sleep(self.reconcile_interval)
            self.reconcile()

    async def _drive(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            self._idle = False
            try:
                await self._run_plan()
            except Exception:  # a bug must not end the driver; the log says where
                self.log.exception("reactor pass failed")
            self._arm_timer()
            if not self._wake.is_set():
                self._idle = True
                idlers, self._idlers = self._idlers, []
                for future in idlers:
                    if not future.done():
                        future.set_result(None)

    async def _queries(self) -> None:
        """Status passes, beside the driver: a slow or hung status query never delays
        a step. A reconcile's future is done once the plan after its pass is."""
        while True:
            await self._query_wanted.wait()
            self._query_wanted.clear()
            waiting, self._reconciles = self._reconciles, []
            try:
                await status_pass(self)
            except Exception:
                self.log.exception("status pass failed")
            self._idlers += waiting
            self._kick()

    async def _run_plan(self) -> None:
        asked: set[str] = set()
        while True:
            async with self._steps:
                step = self.core.next_step(self._now())
                if step is None:
                    return
                name = step.service
                if self.core.actual(name) is Actual.UNKNOWN and name not in asked:
                    asked.add(name)  # in doubt, ask before acting (once per pass)
                    if await ask(self, name):
                        continue
                await self._execute(step)

    async def _execute(self, step: Step) -> None:
        spec, manager = self.specs[step.service], self.managers[step.service]
        event = Event.answering(step, self._wall())
        self.busy, started = step, self._now()
        self.bump(spec.name)
        self.log.info(f"service {step.action}", service=spec.name, vhid=step.vhid)
        try:
            call = manager.start if step.action is Action.START else manager.stop
            outcome = await call(event)
        except Exception as error:
            self.log.exception("service manager crashed", service=spec.name)
            outcome = Outcome(False, f"{type(error).__name__}: {error}")
        finally:
            self.busy = None
            self.bump(spec.name)
        self.core.done(spec.name, step.action, outcome.ok, self._now())
        result = "ok" if outcome.ok else "timeout" if outcome.timed_out else "failed"
        self._record(spec, str(step.action), result, outcome.detail, self._now() - started)
        if step.action is Action.START and outcome.ok and spec.name in self._failed:
            self._failed.discard(spec.name)
            if self._on_recovered is not None:
                self._call(self._on_recovered, spec)
        elif step.action is Action.START and not outcome.ok:
            self._start_failed(spec, outcome.detail)

    def bump(self, name: str) -> None:
        self.generation[name] = self.generation.get(name, 0) + 1

    def _exited(self, name: str, detail: str) -> None:
        """A ``run`` process died on its own."""
        spec = self.specs.get(name)
        if spec is None:
            return
        self.core.died(name, self._now())
        self._record(spec, "exit", "failed", detail, 0.0)
        self._start_failed(spec, f"died: {detail}")
        self._kick()

    def forget_failures(self, keep: set[str]) -> None:
        self._failed &= keep

    def _start_failed(self, spec: ServiceSpec, detail: str) -> None:
        self._failed.add(spec.name)
        self._call(self._on_start_failed, spec, detail)

    def _record(
        self, spec: ServiceSpec, action: str, result: str, detail: str, took: float
    ) -> None:
        self.last_actions[spec.name] = LastAction(action, result, detail, took, self._wall())
        log = self.log.info if result == "ok" else self.log.error
        log(f"service {action} {result}", service=spec.name, detail=detail, duration=took)
        if self._on_action is not None:
            self._call(self._on_action, spec, action, result, detail, took)

    def _call(self, callback: Callable[..., None], *args: Any) -> None:
        try:
            callback(*args)
        except Exception:
            self.log.exception("reactor callback failed", callback=repr(callback))

    def _arm_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        deadline = self.core.get_timer()
        if deadline is not None and self._tasks:
            self._timer = self._get_loop().call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self.core.handle_timer(self._now())
        self._kick()

    # -- status -------------------------------------------------------------

    def roles(self) -> dict[str, str]:
        return {name: str(role) for name, role in self.core.roles.items()}

    def status(self) -> list[dict[str, Any]]:
        """Per service: what should be and why, what is, the last action, damping."""
        now = self._now()
        return service_rows(self, now, self._wall() - now)
