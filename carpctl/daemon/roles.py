"""The node's role per vhid, whoever reports it.

On Linux the embedded engine reports every change. On the BSDs the kernel
runs CARP: devd/ifstated report changes through ``carpctl event`` and the
daemon also reads ``ifconfig`` at start and periodically, so a missed or
reordered event is corrected within one poll (level-triggered).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

RoleListener = Callable[[str, str, str, float], None]  # name, old, new, at (wall clock)

STATES = ("INIT", "BACKUP", "MASTER")


class RoleBook:
    def __init__(self) -> None:
        self._roles: dict[str, str] = {}
        self._since: dict[str, float] = {}
        self.listeners: list[RoleListener] = []

    @property
    def roles(self) -> dict[str, str]:
        return dict(self._roles)

    def since(self, name: str) -> float | None:
        return self._since.get(name)

    def set(self, name: str, state: str, at: float) -> bool:
        """Record ``name``'s role; True (and listeners told) when it changed."""
        if state not in STATES:
            raise ValueError(f"unknown CARP state {state!r}")
        old = self._roles.get(name, "INIT")
        if name in self._roles and old == state:
            return False
        self._roles[name] = state
        self._since[name] = at
        for listener in self.listeners:
            listener(name, old, state, at)
        return True

    def replace_all(self, states: Mapping[str, str], at: float) -> list[str]:
        """A full reading (ifconfig): vhids no longer listed fall back to INIT."""
        changed = [name for name, state in states.items() if self.set(name, state, at)]
        for name in set(self._roles) - set(states):
            if self.set(name, "INIT", at):
                changed.append(name)
        return changed
