"""``carpctl lab``: a CARP cluster on one machine, built from network namespaces.

The Python API tests and benchmarks use::

    from carpctl.lab import Cluster, FailMode

    with Cluster.up(name="t1", nodes=2) as lab:       # torn down on exit
        lab.wait_role("node1", "MASTER", timeout=10)
        lab.client_view().owner                        # "node1"
        lab.fail("node1", FailMode.KILL)
        ...

``teardown(name)`` removes a lab left behind by a crashed process.
"""

from carpctl.lab.netns import LabError, Namespaces, UnsafeOperation, check_address
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
    "Teardown",
    "UnsafeOperation",
    "check_address",
    "run_available",
    "teardown",
]
