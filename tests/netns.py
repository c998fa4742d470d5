"""Throwaway network namespaces joined by veth pairs, for tests (root only).

A thin re-export of ``carpctl.lab.netns``, where the safety rules live and
are enforced: namespaces named with the lab's prefix (here ``cci-<pid>-``),
veth pairs created inside them with ``ip -n`` (the root namespace never sees
them), interfaces named ``lab*``, addresses only from 198.51.100.0/24,
203.0.113.0/24 and 2001:db8::/32, processes stopped by PID, and ``close``
(also run by ``with``) stopping the processes and deleting the namespaces
whatever state a failed test left them in.

For a whole CARP cluster (nodes running carpctl, a client, failures,
status) use ``carpctl.lab.Cluster`` instead.
"""

from __future__ import annotations

import os

from carpctl.lab.netns import (
    ALLOWED_NETWORKS,
    LabError,
    Namespaces,
    Output,
    UnsafeOperation,
    check_address,
    unavailable_reason,
    wait_for,
)

__all__ = [
    "ALLOWED_NETWORKS",
    "Lab",
    "LabError",
    "Output",
    "UnsafeOperation",
    "check_address",
    "unavailable_reason",
    "wait_for",
]


class Lab(Namespaces):
    """A set of namespaces (``cci-<pid>-<tag><name>``) and the processes started in them."""

    def __init__(self, tag: str = "") -> None:
        super().__init__(f"cci-{os.getpid()}-{tag}")

    def __enter__(self) -> Lab:
        return self
