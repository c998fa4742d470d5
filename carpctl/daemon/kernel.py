"""The BSD backends seen from the daemon: the ledger's total applied to the
kernel in order, off the event loop, and the kernel's view for ``status``."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from carpctl.backends import BackendError, KernelBackend
from carpctl.core.ledger import Ledger
from carpctl.core.timing import effective_skew
from carpctl.daemon import logs
from carpctl.daemon.roles import RoleBook


class KernelSink:
    """Applies demotion through ``sysctl``/``ifconfig``, one call at a time.

    The tools are subprocesses, so they run in a single worker thread: calls
    stay in order (the last total wins) and the event loop never waits.
    """

    def __init__(self, backend: KernelBackend, ledger: Ledger, *, skew_demotion: bool) -> None:
        self.backend = backend
        self.ledger = ledger
        self.skew_demotion = skew_demotion  # FreeBSD adds demotion to the skew
        self.started = time.time()
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kernel")
        self._log = logs.get()
        self.last_error = ""

    def apply_demotion(self) -> Future[None]:
        total = max(0, self.ledger.total)  # read on the loop thread
        return self._worker.submit(self._reconcile, total)

    def _reconcile(self, total: int) -> None:
        try:
            applied = self.backend.reconcile(total)
        except BackendError as error:
            self.last_error = str(error)
            self._log.error("kernel demotion not applied", desired=total, error=str(error))
            return
        self.last_error = ""
        for recovery in applied.recovery:
            self._log.warning(
                "kernel demotion recovered", kind=recovery.kind, detail=recovery.message
            )
        if not applied.complete:
            self._log.warning(
                "kernel demotion applied in part",
                desired=total,
                applied=applied.applied,
                limit=applied.limit,
            )

    async def status(self) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        """The kernel's demotion (total, carpctl's share, the rest) and its vhids."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._worker, self._read)

    def _read(self) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        demotion = 0
        kernel: dict[str, Any] | None = None
        try:
            view = self.backend.read()
            kernel = {"total": view.total, "carpctl": view.carpctl, "other": view.foreign}
            demotion = view.total if self.skew_demotion else 0
        except BackendError as error:
            self._log.error("kernel demotion unreadable", error=str(error))
        try:
            vhids = self.backend.vhids()
        except BackendError as error:
            self._log.error("kernel vhids unreadable", error=str(error))
            vhids = []
        rows = [
            {
                "name": v.name,
                "vhid": v.vhid,
                "interface": v.interface,
                "state": str(v.state),
                "since": self.started,  # the kernel does not say when; devd events will
                "advbase": v.advbase,
                "advskew": v.advskew,
                "effective_skew": effective_skew(v.advskew, demotion),
                "master_seen": None,
                "sent": 0,
                "send_errors": 0,
                "split_brain": False,
            }
            for v in vhids
        ]
        return kernel, rows

    def close(self) -> None:
        self._worker.shutdown(wait=True)


async def poll_roles(kernel: KernelSink, roles: RoleBook, interval: float) -> None:
    """Read the kernel's vhid states now and every ``interval`` seconds.

    devd's events arrive through ``carpctl event``; this catches the ones
    that were missed (daemon not running, devd restarted) or reordered.
    """
    while True:
        _, rows = await kernel.status()
        roles.replace_all({row["name"]: row["state"] for row in rows}, time.time())
        await asyncio.sleep(interval)
