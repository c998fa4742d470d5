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
    Recovery,
)
from carpctl.backends.freebsd import FreeBSDBackend
from carpctl.backends.journal import StateError
from carpctl.backends.openbsd import OpenBSDBackend
from carpctl.backends.parsing import CarpState, VhidStatus

__all__ = [
    "Applied",
    "BackendError",
    "CarpState",
    "CommandError",
    "Counter",
    "FreeBSDBackend",
    "JournaledDemotion",
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
]
