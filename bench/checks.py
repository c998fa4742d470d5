"""What the check benchmarks share: carpctl with ``[[check]]`` tables, the HTTP
endpoint in a node's namespace, and the check events of a node's log.

Used by ``checkfail.py`` (a failing check hands mastership over) and
``checkjitter.py`` (advertisement jitter under 200 http checks).
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.daemons import Carpctl, Vhid
from carpctl.daemon import config as carpctl_config
from carpctl.lab import Cluster, LabError
from carpctl.lab.logs import _timestamp, events

SERVER = Path(__file__).with_name("health_server.py")
PORT = 8080


@dataclass(frozen=True)
class HttpCheck:
    name: str
    path: str  # on the node's own endpoint: http://127.0.0.1:PORT<path>
    interval: float
    timeout: float
    rise: int = 2
    fall: int = 2
    demote: int = 50

    def toml(self) -> str:
        return "\n".join(
            [
                "[[check]]",
                f'name = "{self.name}"',
                'kind = "http"',
                f'url = "http://127.0.0.1:{PORT}{self.path}"',
                f"interval = {self.interval!r}",
                f"timeout = {self.timeout!r}",
                f"rise = {self.rise}",
                f"fall = {self.fall}",
                f"demote = {self.demote}",
                "",
            ]
        )


class CheckedCarpctl(Carpctl):
    """bench's carpctl configuration (daemons.Carpctl) plus ``[[check]]`` tables per node."""

    def __init__(self, checks: dict[str, list[HttpCheck]]) -> None:
        self.checks = checks

    def argvs(self, lab: Cluster, node: str, vhids: list[Vhid], preempt: bool) -> list[list[str]]:
        [argv] = super().argvs(lab, node, vhids, preempt)
        path = Path(argv[-1])  # ... run -c PATH
        tables = self.checks.get(node, [])
        if tables:
            path.write_text(path.read_text() + "\n" + "\n".join(c.toml() for c in tables))
            carpctl_config.load(path)  # refused here rather than by the daemon
        return [argv]


def start_server(lab: Cluster, node: str, flag: Path | None = None) -> None:
    """The HTTP endpoint on the node's 127.0.0.1:PORT, recorded for the lab's teardown."""
    argv = [sys.executable, str(SERVER), str(PORT)] + (["--flag", str(flag)] if flag else [])
    lab.spawn(node, argv, f"http-{node}")
    probe = (
        "import socket,sys\n"
        f"socket.create_connection(('127.0.0.1', {PORT}), 1).close()\n"
    )  # fmt: skip
    deadline = time.monotonic() + 10
    while lab.exec(node, [sys.executable, "-c", probe]).returncode != 0:
        if time.monotonic() > deadline:
            raise LabError(f"the health endpoint on {node} never accepted a connection")
        time.sleep(0.1)


@dataclass(frozen=True)
class CheckEvent:
    time: float  # time.monotonic(), from the log's time stamp (wall clock) and an offset
    check: str
    new: str  # passing | failing
    detail: str


def log_events(lab: Cluster, node: str, name: str, offset: float) -> list[dict[str, Any]]:
    """The node's JSON log events called ``name``, each with ``mono``: its time stamp
    moved onto ``time.monotonic()`` (``offset`` as ``capture.clock_offset``)."""
    found = []
    for event in events(lab.log(node)):
        if event.get("event") == name:
            found.append(event | {"mono": _timestamp(event.get("timestamp")) - offset})
    return found


def check_events(lab: Cluster, node: str, offset: float) -> list[CheckEvent]:
    """The daemon's "check changed" events: a check's verdict after its fall-th
    failure or rise-th pass, logged as the probe's result is recorded."""
    return [
        CheckEvent(e["mono"], str(e.get("check")), str(e.get("new")), str(e.get("detail", "")))
        for e in log_events(lab, node, "check changed", offset)
    ]
