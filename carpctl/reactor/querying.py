"""Asking services for their state, for the reactor (``Reactor.reconcile`` and the plan)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from carpctl.core.reactor import Actual

if TYPE_CHECKING:
    from carpctl.reactor.executor import Reactor


async def status_pass(reactor: Reactor) -> None:
    """Query every service at once and record the answers, then let failed stops be
    tried again. An answer is dropped when its service was reloaded, or a step on it
    began or ended while the query ran (the answer is older than what the step did)."""
    managers = dict(reactor.managers)
    before = dict(reactor.generation)
    found = await asyncio.gather(*(m.status() for m in managers.values()), return_exceptions=True)
    for (name, manager), answer in zip(managers.items(), found, strict=True):
        stale = reactor.generation.get(name, 0) != before.get(name, 0)
        if reactor.managers.get(name) is not manager or stale:
            continue
        if isinstance(answer, BaseException):
            reactor.log.error("status query failed", service=name, error=repr(answer))
            reactor.core.observed(name, Actual.UNKNOWN)
        elif answer is not None:
            reactor.core.observed(name, answer)
    reactor.core.retry_stops()


async def ask(reactor: Reactor, name: str) -> bool:
    """Query one service before a step on it; True when the answer says running or stopped."""
    try:
        answer = await reactor.managers[name].status()
    except Exception as error:
        reactor.log.error("status query failed", service=name, error=repr(error))
        return False
    if answer is None or answer is Actual.UNKNOWN:
        return False
    reactor.core.observed(name, answer)
    reactor.bump(name)  # a status pass begun before is older than this answer
    return True
