"""The supervisor: the demotion ledger and who may change it.

It keeps the ledger (operator shares and maintenance persisted in
``state_dir``, expiring entries, check results, readiness gating), pushes
its total to whatever applies demotion (the embedded engine, or the BSD
kernel), and answers the control socket's requests.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from carpctl.core.ledger import Entry, Ledger, Source
from carpctl.daemon import logs
from carpctl.daemon.config import Config
from carpctl.reactor.spec import ServiceSpec
from carpctl.statefile import StateFileError, read_json, write_json

LEDGER_FILE = "ledger.json"
STARTUP = "startup"
STARTUP_DEMOTION = 240


class DemotionSink(Protocol):
    """Where the ledger's total takes effect."""

    def apply_demotion(self) -> object: ...


class Supervisor:
    def __init__(
        self,
        config: Config,
        ledger: Ledger,
        sink: DemotionSink,
        *,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.ledger = ledger
        self.sink = sink
        self._wall = wall
        self._path = Path(config.carpctl.state_dir) / LEDGER_FILE
        self._expiry: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._log = logs.get()

    # -- life cycle ---------------------------------------------------------

    def restore(self) -> None:
        """Put back the operator shares and maintenance of a previous run."""
        try:
            raw = read_json(self._path)
        except StateFileError as error:
            self._log.error("ledger state unreadable, starting without it", error=str(error))
            return
        if raw is None:
            return
        entries = []
        for item in raw.get("entries", []) if isinstance(raw, dict) else []:
            try:
                entries.append(Entry.from_json(item))
            except ValueError as error:
                self._log.error("ledger entry skipped", error=str(error))
        for entry in self.ledger.restore(entries, self._wall()):
            self._log.info(
                "demotion restored", entry=entry.name, amount=entry.amount, reason=entry.reason
            )

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._schedule_expiry()

    def stop(self) -> None:
        if self._expiry is not None:
            self._expiry.cancel()

    # -- changes ------------------------------------------------------------

    def changed(self, persist: bool = False) -> None:
        """The ledger changed: persist (if asked), apply, re-arm the expiry timer."""
        if persist:
            write_json(
                self._path,
                {"version": 1, "entries": [e.to_json() for e in self.ledger.persistent()]},
            )
        self.sink.apply_demotion()
        self._schedule_expiry()

    def _schedule_expiry(self) -> None:
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        due = self.ledger.next_expiry()
        if due is not None and self._loop is not None:
            self._expiry = self._loop.call_later(max(0.0, due - self._wall()), self._expire)

    def _expire(self) -> None:
        self._expiry = None
        gone = self.ledger.expire(self._wall())
        for entry in gone:
            self._log.info("demotion expired", entry=entry.name, amount=entry.amount)
        self.changed(persist=any(e.source in (Source.OPERATOR, Source.MAINTENANCE) for e in gone))

    # -- readiness and checks -------------------------------------------------

    def gate_until_ready(self) -> None:
        """A starting node stays fully demoted until its checks have a verdict."""
        entry = Entry(
            STARTUP,
            Source.STARTUP,
            STARTUP_DEMOTION,
            self._wall(),
            reason="checks not yet passed rise times",
        )
        self.ledger.set(entry)

    def ready(self) -> None:
        if self.ledger.get(STARTUP) is not None:
            self.ledger.remove(STARTUP)
            self._log.info("ready: every check has a verdict")
            self.changed()

    def check_failing(self, name: str, amount: int, detail: str) -> None:
        self.ledger.set(Entry(f"check:{name}", Source.CHECK, amount, self._wall(), reason=detail))
        self.changed()

    def check_passing(self, name: str) -> None:
        if self.ledger.remove(f"check:{name}"):
            self.changed()

    def service_failed(self, spec: ServiceSpec, detail: str) -> None:
        """A start failed or timed out: demote so a healthy peer takes over, for a while."""
        now = self._wall()
        entry = Entry(
            f"service:{spec.name}", Source.SERVICE, spec.demote, now, now + spec.retry_after, detail
        )
        self.ledger.set(entry)
        self._log.warning("service failed to start", service=spec.name, detail=detail)
        self.changed()

    def service_recovered(self, name: str) -> None:
        if self.ledger.remove(f"service:{name}"):
            self.changed()

    # -- control requests -----------------------------------------------------

    async def handle_demote(self, args: dict[str, Any]) -> dict[str, Any]:
        """Args as validated by carpctl.control.protocol; a LedgerError refusal
        reaches the client as its one sentence (the server maps it to code 1)."""
        now, reason, duration = self._wall(), str(args.get("reason") or ""), args.get("for")
        if "set" in args:
            entry = self.ledger.set_operator(
                str(args["as"]), int(args["set"]), now, reason=reason, duration=duration
            )
        else:
            entry = self.ledger.adjust_operator(
                int(args["delta"]), now, reason=reason, duration=duration
            )
        self.changed(persist=True)
        self._log.info(
            "operator demotion", entry=entry.name if entry else None, total=self.ledger.total
        )
        return {"entry": entry.to_json() if entry else None, "total": self.ledger.total}

    async def handle_maintenance(self, args: dict[str, Any]) -> dict[str, Any]:
        entry = self.ledger.set_maintenance(
            bool(args["on"]),
            self._wall(),
            reason=str(args.get("reason") or ""),
            duration=args.get("for"),
        )
        self.changed(persist=True)
        self._log.info("maintenance", on=entry is not None, total=self.ledger.total)
        return {"entry": entry.to_json() if entry else None, "total": self.ledger.total}

    def ledger_status(self) -> dict[str, Any]:
        return {"total": self.ledger.total, "entries": [e.to_json() for e in self.ledger.entries()]}


def node_name() -> str:
    return socket.gethostname()
