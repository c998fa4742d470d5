"""The BSD kernels' side of carpctl: demotion and vhid states (design section 3).

``FreeBSDBackend`` and ``OpenBSDBackend`` both offer

* ``reconcile(desired) -> Applied``: make carpctl's share of the kernel's
  demotion ``desired`` (the ledger's total), leaving everyone else's alone;
* ``read() -> KernelView``: the kernel's total, carpctl's share and the rest;
* ``vhids() -> list[VhidStatus]``: every vhid with its state, for
  reconciling MASTER/BACKUP after missed devd events.

What carpctl has applied is kept in ``state_dir`` with a write-ahead record
so that a kill -9 at any moment neither applies a share twice nor leaks it
(``demotion.py`` explains how). Tools are run as argv lists with a timeout;
every failure is a ``BackendError``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from carpctl.backends.command import (
    BackendError,
    CommandError,
    ParseError,
    Runner,
    SubprocessRunner,
    find_tool,
)
from carpctl.backends.demotion import (
    Applied,
    Counter,
    JournaledDemotion,
    KernelDemotion,
    KernelView,
)
from carpctl.backends.freebsd import FreeBSDBackend
from carpctl.backends.journal import StateError
from carpctl.backends.openbsd import OpenBSDBackend
from carpctl.backends.parsing import CarpState, VhidStatus
from carpctl.backends.recovery import Recovery


class KernelBackend(KernelDemotion, Protocol):
    """A BSD kernel as the daemon uses it: demotion and vhid states."""

    def vhids(self) -> list[VhidStatus]: ...


def kernel_backend(
    kind: str,
    state_dir: Path | str,
    *,
    group: str = "carp",
    runner: Runner | None = None,
    search_path: str | None = None,
    log: Any = None,
) -> KernelBackend:
    """The backend named by the config's ``backend`` key ("freebsd" or "openbsd")."""
    if kind == "freebsd":
        return FreeBSDBackend(state_dir, runner=runner, search_path=search_path, log=log)
    if kind == "openbsd":
        return OpenBSDBackend(
            state_dir, group=group, runner=runner, search_path=search_path, log=log
        )
    raise ValueError(f"no kernel backend {kind!r}: freebsd or openbsd")


__all__ = [
    "Applied",
    "BackendError",
    "CarpState",
    "CommandError",
    "Counter",
    "FreeBSDBackend",
    "JournaledDemotion",
    "KernelBackend",
    "KernelDemotion",
    "KernelView",
    "OpenBSDBackend",
    "ParseError",
    "Recovery",
    "Runner",
    "StateError",
    "SubprocessRunner",
    "VhidStatus",
    "find_tool",
    "kernel_backend",
]
