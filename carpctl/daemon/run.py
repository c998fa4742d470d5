"""``carpctl run``: the daemon in the foreground, until SIGTERM or SIGINT."""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from typing import Any

from carpctl.control.protocol import ControlError, ErrorCode
from carpctl.control.server import ControlServer
from carpctl.core.checkstate import State as CheckVerdict
from carpctl.core.checkstate import Transition
from carpctl.core.effects import StateChanged
from carpctl.core.ledger import Entry, Ledger
from carpctl.core.timing import effective_skew
from carpctl.daemon import logs
from carpctl.daemon.config import Config
from carpctl.daemon.engine import Engine, VirtualHost
from carpctl.daemon.engine_status import drops, vhid_status
from carpctl.daemon.journal import Journal, JournalError
from carpctl.daemon.journal import read as read_journal
from carpctl.daemon.kernel import KernelSink, poll_roles
from carpctl.daemon.metrics import Metrics
from carpctl.daemon.notify import Notifier, format_status
from carpctl.daemon.reload import reload as reload_config
from carpctl.daemon.roles import RoleBook
from carpctl.daemon.supervisor import Supervisor, node_name
from carpctl.health.runner import CheckRunner, UnknownCheck
from carpctl.health.spec import CheckSpec
from carpctl.reactor.executor import Reactor
from carpctl.reactor.spec import ServiceSpec

KERNEL_BACKENDS = ("freebsd", "openbsd")
ROLE_POLL_INTERVAL = 10.0  # seconds between readings of the kernel's vhid states


class BackendUnavailable(Exception):
    """The configured backend cannot run on this machine."""


def resolve_backend(config: Config) -> str:
    """``auto`` by platform; any backend may be named explicitly anywhere."""
    backend = config.carpctl.backend
    if backend == "auto":
        platform = sys.platform
        backend = next((b for b in KERNEL_BACKENDS if platform.startswith(b)), "embedded")
    if backend == "embedded":
        if not sys.platform.startswith("linux"):
            raise BackendUnavailable("the embedded engine needs Linux")
        if not config.vhids:
            raise BackendUnavailable(
                f"{config.path}: vhid: the embedded backend needs at least one [[vhid]]"
            )
    elif config.vhids:
        raise BackendUnavailable(
            f"{config.path}: vhid: [[vhid]] is for the embedded backend; "
            f"with {backend} the kernel runs CARP (configure it with ifconfig)"
        )
    return backend


class Daemon:
    """The supervisor and the control socket, with the engine or a BSD kernel."""

    def __init__(
        self,
        config: Config,
        backend: str,
        supervisor: Supervisor,
        *,
        engine: Engine | None = None,
        kernel: KernelSink | None = None,
    ) -> None:
        self.config = config
        self.backend = backend
        self.engine = engine
        self.kernel = kernel
        self.supervisor = supervisor
        self._log = logs.get()
        supervisor.ledger.observers.append(self._demotion_changed)
        self.roles = RoleBook()
        self.roles.listeners.append(self._role_changed)
        self.journal: Journal | None = None  # opened in serve()
        if engine is not None:
            engine.listeners.append(self._engine_transition)
        self.metrics = Metrics.for_daemon(self)  # None unless metrics_listen is set
        self.checks = CheckRunner(config.checks, self._check_changed) if config.checks else None
        self.reactor = self._new_reactor(config) if config.services else None
        self._tasks: list[asyncio.Task[None]] = []
        self.notifier = Notifier.from_environment()
        self.server = ControlServer(
            config.carpctl.control_socket,
            {
                "status": self.status,
                "demote": supervisor.handle_demote,
                "maintenance": supervisor.handle_maintenance,
                "check": self.check,
                "event": self.event,
                "reload": self.reload,
            },
            log=logs.get(),
        )

    def roles_now(self) -> dict[str, str]:
        """Every vhid's current role (the engine's, or the kernel's as last seen)."""
        if self.engine is not None:
            return {h.name: h.machine.state.name for h in self.engine.hosts}
        return self.roles.roles

    async def reload(self, args: dict[str, Any]) -> dict[str, Any]:
        if args.get("dry_run"):  # changes nothing: systemd need not know
            return await reload_config(self, args)
        self.notifier.reloading()
        try:
            result = await reload_config(self, args)
        finally:  # READY=1 ends the reload for systemd, applied or refused
            self.notifier.ready(format_status(await self.status({})))
        self._log.info(
            "reload",
            applied=result["applied"],
            refused=result["refused"],
            dry_run=bool(args.get("dry_run")),
        )
        return result

    def _sighup(self) -> None:
        async def run() -> None:
            try:
                await self.reload({"dry_run": False, "force": False, "config": None})
            except ControlError as error:
                self._log.error("reload refused", error=str(error))

        self._tasks.append(asyncio.get_running_loop().create_task(run()))

    async def replace_checks(self, new: Config) -> None:
        """New [[check]] tables: a fresh runner; entries of removed checks go."""
        if self.checks is not None:
            await self.checks.stop()
        names = {c.name for c in new.checks}
        for entry in self.supervisor.ledger.entries():
            if entry.name.startswith("check:") and entry.name[len("check:") :] not in names:
                self.supervisor.check_passing(entry.name[len("check:") :])
        self.checks = CheckRunner(new.checks, self._check_changed) if new.checks else None
        if self.checks is not None:
            self.checks.start()

    async def replace_services(self, new: Config) -> None:
        """New [[service]] tables: the reactor keeps what did not change."""
        if self.reactor is None:
            if new.services:
                self.reactor = self._new_reactor(new)
                self.reactor.set_roles(self.roles_now(), time.time())
                self.reactor.start()
            return
        await self.reactor.reload(new.services, [v.name for v in new.vhids])

    def _journal(self, kind: str, **fields: str | int | float | bool | None) -> None:
        if self.journal is not None:
            self.journal.record(kind, **fields)

    def _engine_transition(self, host: VirtualHost, change: StateChanged) -> None:
        self._journal(
            "transition",
            vhid=host.name,
            old=change.old.name,
            new=change.new.name,
            reason=str(change.reason),
        )
        self.roles.set(host.name, change.new.name, time.time())

    def _service_action(
        self, spec: ServiceSpec, action: str, result: str, detail: str, took: float
    ) -> None:
        self._journal(
            "service", name=spec.name, action=action, result=result, detail=detail, duration=took
        )

    def _demotion_changed(self, before: Entry | None, after: Entry | None, total: int) -> None:
        entry = after or before
        assert entry is not None
        skews = {}
        if self.engine is not None:
            skews = {h.name: effective_skew(h.section.advskew, total) for h in self.engine.hosts}
        self._log.info(
            "demotion changed",
            entry=entry.name,
            source=str(entry.source),
            amount=after.amount if after else 0,
            was=before.amount if before else 0,
            reason=entry.reason,
            total=total,
            effective_skew=skews,
        )
        self._journal(
            "demotion",
            entry=entry.name,
            old=before.amount if before else 0,
            new=after.amount if after else 0,
            total=total,
            reason=entry.reason,
        )

    def _new_reactor(self, config: Config) -> Reactor:
        return Reactor(
            config.services,
            on_start_failed=self.supervisor.service_failed,
            on_recovered=lambda spec: self.supervisor.service_recovered(spec.name),
            on_action=self._service_action,
            log=self._log,
            vhids=[v.name for v in config.vhids],
        )

    def _role_changed(self, name: str, old: str, new: str, at: float) -> None:
        if self.kernel is not None:  # the engine logs and journals its own, with the reason
            self._log.info("state changed", vhid=name, old=old, new=new, source="kernel")
            self._journal(
                "transition", vhid=name, old=old, new=new, reason="reported by the kernel"
            )
        if self.reactor is not None:
            self.reactor.role_changed(name, old, new, at)

    async def event(self, args: dict[str, Any]) -> dict[str, Any]:
        """``carpctl event 1@em0 MASTER`` from devd/ifstated (args already validated)."""
        if self.kernel is None:
            raise ControlError(
                "the embedded engine reports its own roles; "
                "carpctl event is the devd/ifstated target for the BSD backends"
            )
        name = f"{args['vhid']}@{args['interface']}"
        changed = self.roles.set(name, str(args["type"]), time.time())
        return {"vhid": name, "state": args["type"], "changed": changed}

    def _check_changed(self, spec: CheckSpec, transition: Transition) -> None:
        self._log.info(
            "check changed",
            check=spec.name,
            old=str(transition.old),
            new=str(transition.new),
            result=str(transition.result),
            detail=transition.detail,
        )
        if self.metrics is not None:
            self.metrics.check_changed(spec.name, transition)
        if transition.new is CheckVerdict.FAILING:
            self.supervisor.check_failing(spec.name, spec.demote, transition.detail)
        elif transition.new is CheckVerdict.PASSING:
            self.supervisor.check_passing(spec.name)
        if self.checks is not None and self.checks.ready:
            self.supervisor.ready()

    async def check(self, args: dict[str, Any]) -> dict[str, Any]:
        """Run checks now (all, or the named one) and report them."""
        if self.checks is None:
            if args.get("name"):
                raise ControlError(f"there is no check named {args['name']!r}", ErrorCode.INVALID)
            return {"checks": []}
        try:
            reports = await self.checks.run_now(args.get("name"))
        except UnknownCheck:
            raise ControlError(
                f"there is no check named {args['name']!r}", ErrorCode.INVALID
            ) from None
        names = {r.name for r in reports}
        return {"checks": [c for c in self.checks.status() if c["name"] in names]}

    async def status(self, args: dict[str, Any]) -> dict[str, Any]:
        kernel, vhids = await self.kernel.status() if self.kernel else (None, [])
        for row in vhids:  # the kernel does not say since when; our events do
            row["since"] = self.roles.since(row["name"]) or row["since"]
        return {
            "backend": self.backend,
            "node": node_name(),
            "demotion": self.supervisor.ledger_status(),
            "vhids": vhid_status(self.engine) if self.engine else vhids,
            "checks": self.checks.status() if self.checks else [],
            "services": self.reactor.status() if self.reactor else [],
            "events": self._recent_events(),
            "drops": drops(self.engine) if self.engine else {},
            "kernel": kernel,
        }

    def _recent_events(self, count: int = 8) -> list[dict[str, Any]]:
        if self.journal is None or not self.journal.seq:
            return []
        try:
            after = max(0, self.journal.seq - count)
            return list(read_journal(self.config.carpctl.state_dir, after_seq=after))
        except JournalError:
            return []

    async def serve(self) -> None:
        """Run until SIGTERM/SIGINT, then stop gracefully."""
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        loop.add_signal_handler(signal.SIGHUP, self._sighup)
        await self.server.start()  # first: refuses to run beside a live daemon
        self.journal = Journal.open(self.config.carpctl.state_dir)
        self._journal("daemon", event="start", backend=self.backend)
        try:
            await self._start(loop)
            await stop.wait()
        finally:
            await self._stop()

    async def _start(self, loop: asyncio.AbstractEventLoop) -> None:
        if self.metrics is not None:
            self.metrics.start(loop)
        self.supervisor.restore()
        if self.checks is not None:
            self.supervisor.gate_until_ready()  # lifted when every check has a verdict
            self.checks.start()
        if self.engine is not None:
            self.engine.start(loop)  # applies the restored demotion
        elif self.kernel is not None:
            self.supervisor.sink.apply_demotion()
            self._tasks.append(
                loop.create_task(poll_roles(self.kernel, self.roles, ROLE_POLL_INTERVAL))
            )
        self.supervisor.start(loop)
        if self.reactor is not None:
            # Level-triggered from the first moment: whatever runs on a BACKUP stops.
            self.reactor.set_roles(self.roles_now(), time.time())
            self.reactor.start()
        self._log.info("started", backend=self.backend)
        self.notifier.ready(format_status(await self.status({})))
        self.notifier.start_watchdog()
        self.notifier.start_status_updates(lambda: self.status({}))

    async def _stop(self) -> None:
        self.notifier.stopping()
        for task in self._tasks:
            task.cancel()
        if self.checks is not None:
            await self.checks.stop()
        self.supervisor.stop()
        if self.engine is not None and self.engine.started:
            self.engine.shutdown()  # bow-out and release first: the peer takes over now
        if self.reactor is not None:
            await self.reactor.release_all()
            await self.reactor.stop()
        if self.kernel is not None:
            self.kernel.close()  # waits for a kernel write in progress
        if self.metrics is not None:
            await self.metrics.stop()
        await self.server.close()
        await self.notifier.close()
        self._journal("daemon", event="stop")
        if self.journal is not None:
            self.journal.close()
        self._log.info("stopped")


def build(config: Config, backend: str) -> Daemon:
    ledger = Ledger()
    if backend in KERNEL_BACKENDS:
        from carpctl.backends import kernel_backend

        state = kernel_backend(backend, config.carpctl.state_dir, log=logs.get())
        kernel = KernelSink(state, ledger, skew_demotion=backend == "freebsd")
        return Daemon(config, backend, Supervisor(config, ledger, kernel), kernel=kernel)
    from carpctl.daemon.linux import open_engine  # Linux-only adapters

    engine = open_engine(config, ledger)
    return Daemon(config, backend, Supervisor(config, ledger, engine), engine=engine)


def run(config: Config) -> int:
    logs.configure(config.carpctl.log_format)
    daemon = build(config, resolve_backend(config))
    asyncio.run(daemon.serve())
    return 0
