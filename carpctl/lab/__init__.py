"""``carpctl lab``: a CARP cluster on one machine, built from network namespaces.

The Python API tests and benchmarks use (root only)::

    from carpctl.lab import Cluster, FailMode, Prober

    with Cluster.up(name="t1", nodes=2, preempt=False) as lab:  # removed on exit
        lab.wait_role("node1", "MASTER", timeout=10)     # roles from the nodes' logs
        lab.holders()                                    # ["node1"]: who has the VIP
        lab.client_view().owner                          # "node1": whose MAC answers
        with Prober(lab, "198.51.100.100") as prober:    # ICMP echo every 10 ms
            crash = lab.fail("node1", FailMode.KILL)     # time.monotonic() of the crash
            reply = prober.wait_reply(crash, timeout=15) # first answer after it
            takeover = reply.received - crash
        lab.recover("node1")

``Cluster.up(start=False)`` builds the namespaces only; ``lab.start(node,
argv)`` runs another daemon (ucarp, keepalived) on a node, ``lab.spawn``
any program in any host, ``lab.exec`` runs a command to completion there.
``Cluster.attach(name)`` re-opens a lab built by an earlier command, and
``teardown(name)`` removes a lab left behind by a crashed process.
"""

from carpctl.lab.netns import LabError, Namespaces, UnsafeOperation, check_address
from carpctl.lab.probe import Prober, Reply
from carpctl.lab.teardown import Teardown, teardown
from carpctl.lab.topology import (
    ClientView,
    Cluster,
    FailMode,
    LabOptions,
    LabStatus,
    NodeStatus,
    run_available,
)

__all__ = [
    "ClientView",
    "Cluster",
    "FailMode",
    "LabError",
    "LabOptions",
    "LabStatus",
    "Namespaces",
    "NodeStatus",
    "Prober",
    "Reply",
    "Teardown",
    "UnsafeOperation",
    "check_address",
    "run_available",
    "teardown",
]
