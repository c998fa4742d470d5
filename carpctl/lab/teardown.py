"""Remove a lab completely, from its state file and from what the system shows.

Works for a lab whose command crashed or was killed: the processes are
found by the PIDs recorded in the state file (checked against their start
time) and by asking each of the lab's namespaces which processes live in
it; the namespaces are the recorded ones plus every existing namespace
whose name the lab could have made (``carplab-<name>-switch|client|nodeN``).
Nothing outside that pattern is ever touched.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path

from carpctl.lab.netns import (
    LabError,
    delete_namespace,
    list_namespaces,
    stop_processes_in,
)
from carpctl.lab.process import ProcessRef, terminate_all
from carpctl.lab.state import (
    DEFAULT_ROOT,
    NAME,
    NAMESPACE_PREFIX,
    StateDir,
    is_lab_namespace,
    list_labs,
)


@dataclass
class Teardown:
    name: str
    found: bool = False  # was there anything to remove?
    stopped: list[int] = field(default_factory=list)
    namespaces: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def teardown(name: str, root: Path = DEFAULT_ROOT, timeout: float = 5.0) -> Teardown:
    """Stop every process of lab ``name`` by PID, delete its namespaces and its state."""
    store = StateDir(name, root)
    report = Teardown(name)
    state = store.load() if store.exists() else None
    report.found = store.exists()

    # 1. The processes the lab recorded (graceful first: carpctl bows out).
    if state is not None:
        refs = [
            ProcessRef(p.pid, p.starttime)
            for p in state.processes.values()
            if p.starttime and is_lab_namespace(name, p.namespace)
        ]
        live = [ref for ref in refs if ref.alive()]
        terminate_all(live, timeout)
        report.stopped.extend(ref.pid for ref in live)

    # 2. The namespaces: recorded ones and any the system still has.
    candidates = list(state.namespaces) if state is not None else []
    try:
        candidates += list_namespaces()
    except LabError as error:
        report.problems.append(str(error))
    namespaces = [ns for ns in dict.fromkeys(candidates) if is_lab_namespace(name, ns)]
    for namespace in namespaces:
        with contextlib.suppress(LabError):
            report.stopped.extend(stop_processes_in(namespace, timeout))
    for namespace in reversed(namespaces):
        if delete_namespace(namespace):
            report.namespaces.append(namespace)
            report.found = True
    with contextlib.suppress(LabError):
        left = [ns for ns in list_namespaces() if is_lab_namespace(name, ns)]
        report.problems += [f"namespace {ns} could not be deleted" for ns in left]

    # 3. The state directory (configs, password, logs).
    store.remove()
    report.stopped = sorted(set(report.stopped))
    return report


def lab_names(root: Path = DEFAULT_ROOT) -> list[str]:
    """Every lab on this machine: state directories and namespaces named like a lab's."""
    names = set(list_labs(root))
    with contextlib.suppress(LabError):
        for namespace in list_namespaces():
            if namespace.startswith(NAMESPACE_PREFIX):
                name = namespace[len(NAMESPACE_PREFIX) :].rpartition("-")[0]
                if NAME.fullmatch(name) and is_lab_namespace(name, namespace):
                    names.add(name)
    return sorted(names)
