"""``carpctl run``: the daemon in the foreground, until SIGTERM or SIGINT."""

from __future__ import annotations

import asyncio
import signal
import sys

from carpctl.daemon import logs
from carpctl.daemon.config import Config
from carpctl.daemon.engine import Engine


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


async def serve(engine: Engine) -> None:
    """Run ``engine`` until SIGTERM/SIGINT, then stop it gracefully."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    engine.start(loop)
    log = logs.get()
    log.info("started", vhids=[h.name for h in engine.hosts])
    try:
        await stop.wait()
    finally:
        engine.shutdown()
        log.info("stopped")


def run(config: Config) -> int:
    from carpctl.daemon.linux import open_engine  # Linux-only adapters

    logs.configure(config.carpctl.log_format)
    engine = open_engine(config)
    asyncio.run(serve(engine))
    return 0
