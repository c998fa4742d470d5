"""``carpctl run``: the daemon in the foreground, until SIGTERM or SIGINT."""

from __future__ import annotations

import asyncio
import signal
import sys
from typing import Any

from carpctl.control.server import ControlServer
from carpctl.core.ledger import Ledger
from carpctl.daemon import logs
from carpctl.daemon.config import Config
from carpctl.daemon.engine import Engine
from carpctl.daemon.supervisor import Supervisor, node_name


class BackendUnavailable(Exception):
    """The configured backend cannot run on this machine."""


def resolve_backend(config: Config) -> str:
    backend = config.carpctl.backend
    if backend == "auto":
        backend = "embedded" if sys.platform.startswith("linux") else sys.platform
    if backend != "embedded":
        raise BackendUnavailable(f"the {backend} backend is not available in this version")
    if not sys.platform.startswith("linux"):
        raise BackendUnavailable("the embedded engine needs Linux")
    if not config.vhids:
        raise BackendUnavailable(
            f"{config.path}: vhid: the embedded backend needs at least one [[vhid]]"
        )
    return backend


class Daemon:
    """The embedded engine, the supervisor and the control socket, together."""

    def __init__(self, config: Config, engine: Engine, supervisor: Supervisor) -> None:
        self.config = config
        self.engine = engine
        self.supervisor = supervisor
        self.server = ControlServer(
            config.carpctl.control_socket,
            {
                "status": self.status,
                "demote": supervisor.handle_demote,
                "maintenance": supervisor.handle_maintenance,
            },
            log=logs.get(),
        )

    async def status(self, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "backend": "embedded",
            "node": node_name(),
            "demotion": self.supervisor.ledger_status(),
            "vhids": self.engine.vhid_status(),
            "checks": [],
            "drops": self.engine.drops(),
            "kernel": None,
        }

    async def serve(self) -> None:
        """Run until SIGTERM/SIGINT, then stop gracefully."""
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await self.server.start()  # first: refuses to run beside a live daemon
        log = logs.get()
        try:
            self.supervisor.restore()
            self.engine.start(loop)
            self.supervisor.start(loop)
            log.info("started", vhids=[h.name for h in self.engine.hosts])
            await stop.wait()
        finally:
            self.supervisor.stop()
            if self.engine.started:
                self.engine.shutdown()
            await self.server.close()
            log.info("stopped")


def run(config: Config) -> int:
    from carpctl.daemon.linux import open_engine  # Linux-only adapters

    logs.configure(config.carpctl.log_format)
    ledger = Ledger()
    engine = open_engine(config, ledger)
    daemon = Daemon(config, engine, Supervisor(config, ledger, engine))
    asyncio.run(daemon.serve())
    return 0
