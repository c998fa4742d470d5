"""Start, stop and query a service, one class per way of driving it.

Every call is a coroutine that never blocks the event loop and ends within
the service's ``timeout`` (the program's process group is killed past it,
see ``process.run_argv``). Argv lists only, never a shell.

==========  ================================  =================================
manager     start / stop                      status (exit code -> state)
==========  ================================  =================================
systemd     ``systemctl start|stop UNIT``     ``systemctl is-active UNIT``:
                                              0 running, 3 stopped
freebsd     ``service NAME onestart|onestop`` ``service NAME onestatus``:
                                              0 running, 1 stopped
openbsd     ``rcctl -f start|stop NAME``      ``rcctl check NAME``:
                                              0 running, 1 stopped
command     the ``start``/``stop`` argv +     the ``status`` argv, if any: 0
            ``1@eth0 MASTER``, CARPCTL_* env  running, else stopped; without
                                              one, what carpctl last did
run         carpctl spawns and supervises     the process is alive
            the ``run`` argv (``supervised``)
==========  ================================  =================================

Any other exit code of a status query, a timeout, or a program that cannot
be run, is ``unknown``. A start or stop that fails (but did not time out)
is checked against the status: a stop of a service that turns out not to
be running (``service onestop`` says "not running?" and exits 1) is done,
and so is a start of one that is already running.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from carpctl.core.reactor import Actual
from carpctl.reactor.process import Completed, Event, environment, run_argv
from carpctl.reactor.spec import Manager, ServiceSpec


@dataclass(frozen=True, slots=True)
class Outcome:
    ok: bool
    detail: str
    timed_out: bool = False


class ServiceManager(Protocol):
    spec: ServiceSpec
    state_source: str  # where ``actual`` comes from: "status", "process" or "last action"

    async def start(self, event: Event) -> Outcome: ...

    async def stop(self, event: Event) -> Outcome: ...

    async def status(self) -> Actual | None:
        """The service's state now; None when it cannot be asked (use the last action)."""
        ...

    async def close(self) -> bool:
        """The service's definition is gone (a reload): end what carpctl itself owns
        (a ``run`` process); True when something was stopped."""
        ...


@dataclass(frozen=True)
class Tool:
    """How a service manager program is called, with ``{}`` for the name."""

    start: tuple[str, ...]
    stop: tuple[str, ...]
    status: tuple[str, ...]
    running: frozenset[int]
    stopped: frozenset[int]


TOOLS = {
    Manager.SYSTEMD: Tool(
        ("systemctl", "start", "{}"),
        ("systemctl", "stop", "{}"),
        ("systemctl", "is-active", "{}"),
        frozenset({0}),
        frozenset({3}),
    ),
    Manager.FREEBSD: Tool(
        ("service", "{}", "onestart"),
        ("service", "{}", "onestop"),
        ("service", "{}", "onestatus"),
        frozenset({0}),
        frozenset({1}),
    ),
    Manager.OPENBSD: Tool(
        ("rcctl", "-f", "start", "{}"),
        ("rcctl", "-f", "stop", "{}"),
        ("rcctl", "check", "{}"),
        frozenset({0}),
        frozenset({1}),
    ),
}


def _fill(template: tuple[str, ...], name: str) -> list[str]:
    return [name if word == "{}" else word for word in template]


class _Queryable:
    """Shared: a failed start/stop is judged again by the status."""

    spec: ServiceSpec
    state_source: str = "status"

    async def status(self) -> Actual | None:
        raise NotImplementedError

    async def close(self) -> bool:
        return False  # the service manager owns the service

    async def _judge(self, done: Completed, wanted: Actual) -> Outcome:
        detail = done.describe()
        if done.ok:
            return Outcome(True, done.output or detail)
        if done.timed_out:
            return Outcome(False, detail, timed_out=True)
        if await self.status() is wanted:
            return Outcome(True, f"already {wanted} ({detail})")
        return Outcome(False, detail)


class ToolManager(_Queryable):
    """systemd, FreeBSD ``service`` or OpenBSD ``rcctl``, looked up on PATH at call time."""

    def __init__(self, spec: ServiceSpec) -> None:
        self.spec = spec
        self.tool = TOOLS[spec.manager]
        self.name = spec.unit or spec.rc or ""

    async def start(self, event: Event) -> Outcome:
        done = await run_argv(_fill(self.tool.start, self.name), timeout=self.spec.timeout)
        return await self._judge(done, Actual.RUNNING)

    async def stop(self, event: Event) -> Outcome:
        done = await run_argv(_fill(self.tool.stop, self.name), timeout=self.spec.timeout)
        return await self._judge(done, Actual.STOPPED)

    async def status(self) -> Actual | None:
        done = await run_argv(_fill(self.tool.status, self.name), timeout=self.spec.timeout)
        if done.returncode in self.tool.running:
            return Actual.RUNNING
        if done.returncode in self.tool.stopped:
            return Actual.STOPPED
        return Actual.UNKNOWN


class CommandManager(_Queryable):
    """Hook commands: ``start``/``stop`` argv with ``1@eth0 MASTER`` appended."""

    def __init__(self, spec: ServiceSpec) -> None:
        self.spec = spec
        self.state_source = "status" if spec.status else "last action"

    def environment(self, event: Event | None) -> dict[str, str]:
        extra = event.environment() if event else {"CARPCTL_SERVICE": self.spec.name}
        return environment(dict(self.spec.env), extra)

    async def start(self, event: Event) -> Outcome:
        return await self._hook(self.spec.start, event, Actual.RUNNING)

    async def stop(self, event: Event) -> Outcome:
        return await self._hook(self.spec.stop, event, Actual.STOPPED)

    async def _hook(self, argv: tuple[str, ...], event: Event, wanted: Actual) -> Outcome:
        done = await run_argv(
            [*argv, *event.arguments()], timeout=self.spec.timeout, env=self.environment(event)
        )
        if not self.spec.status and not done.ok:
            return Outcome(False, done.describe(), done.timed_out)
        return await self._judge(done, wanted)

    async def status(self) -> Actual | None:
        if not self.spec.status:
            return None
        done = await run_argv(
            self.spec.status, timeout=self.spec.timeout, env=self.environment(None)
        )
        if done.returncode is None:
            return Actual.UNKNOWN
        return Actual.RUNNING if done.ok else Actual.STOPPED


OnExit = Callable[[str], None]


def make_manager(spec: ServiceSpec, on_exit: OnExit) -> ServiceManager:
    """The manager for ``spec``; ``on_exit(detail)`` reports a ``run`` process's death."""
    if spec.manager is Manager.RUN:
        from carpctl.reactor.supervised import RunManager

        return RunManager(spec, on_exit)
    if spec.manager is Manager.COMMAND:
        return CommandManager(spec)
    return ToolManager(spec)
