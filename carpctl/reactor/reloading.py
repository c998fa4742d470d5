"""A reload of the reactor's ``[[service]]`` list (``Reactor.reload``), between two steps."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from carpctl.core.reactor import Actual, ReactorCore
from carpctl.reactor.spec import ServiceSpec

if TYPE_CHECKING:
    from carpctl.reactor.executor import Reactor


async def replace_services(
    reactor: Reactor, specs: Sequence[ServiceSpec], vhids: tuple[str, ...]
) -> None:
    """Swap in ``specs`` (the caller holds the step lock); see ``Reactor.reload``."""
    fresh = {s.name: s for s in specs}
    closed = set()
    for name, manager in reactor.managers.items():
        if fresh.get(name) != reactor.specs[name] and await manager.close():
            closed.add(name)
            reactor.log.info("run service stopped: its definition changed or is gone", service=name)
    core = ReactorCore([s.rule() for s in specs], vhids)
    core.adopt(reactor.core, keep_vhids=not vhids)
    for name in closed & fresh.keys():
        core.observed(name, Actual.STOPPED)
    old_specs, old_managers = reactor.specs, reactor.managers
    reactor.managers = {
        s.name: old_managers[s.name] if old_specs.get(s.name) == s else reactor.new_manager(s)
        for s in specs
    }
    reactor.specs, reactor.core = fresh, core
    reactor.last_actions = {k: v for k, v in reactor.last_actions.items() if k in fresh}
    reactor.forget_failures(set(fresh))
