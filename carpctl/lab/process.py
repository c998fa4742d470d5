"""Processes known by PID only (they may belong to an earlier lab command).

A PID alone is not an identity: after a process exits its number can be
reused. A ``ProcessRef`` also keeps the start time from /proc/PID/stat and
is signalled only while both still match, and ``in_namespace`` checks that
a PID really lives in one of the lab's namespaces before anyone kills it.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path


class Liveness(StrEnum):
    RUNNING = "running"
    STOPPED = "stopped"  # SIGSTOP (or traced)
    GONE = "gone"  # exited (a zombie counts as gone)


def _stat(pid: int) -> tuple[str, int] | None:
    """(state letter, start time in clock ticks) from /proc/PID/stat."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name may contain spaces and parentheses: split after the last ')'.
    fields = text[text.rfind(")") + 2 :].split()
    return fields[0], int(fields[19])


@dataclass(frozen=True)
class ProcessRef:
    pid: int
    starttime: int

    @classmethod
    def of(cls, pid: int) -> ProcessRef | None:
        stat = _stat(pid)
        return None if stat is None else cls(pid, stat[1])

    def liveness(self) -> Liveness:
        stat = _stat(self.pid)
        if stat is None or stat[1] != self.starttime or stat[0] in ("Z", "X", "x"):
            return Liveness.GONE
        return Liveness.STOPPED if stat[0] in ("T", "t") else Liveness.RUNNING

    def alive(self) -> bool:
        return self.liveness() is not Liveness.GONE

    def signal(self, sig: int) -> bool:
        """Send ``sig`` if this is still the same process; True if it was sent."""
        if not self.alive():
            return False
        try:
            os.kill(self.pid, sig)
        except ProcessLookupError:
            return False
        return True

    def wait_gone(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self.alive():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)
        return True

    def terminate(self, timeout: float = 5.0) -> None:
        """SIGTERM (and SIGCONT, should it be stopped), then SIGKILL past ``timeout``."""
        if self.signal(signal.SIGTERM):
            self.signal(signal.SIGCONT)
            if self.wait_gone(timeout):
                return
        if self.signal(signal.SIGKILL):
            self.wait_gone(timeout)


def in_namespace(pid: int, namespace_file: Path) -> bool:
    """Whether process ``pid`` lives in the network namespace bound at ``namespace_file``."""
    try:
        return os.stat(f"/proc/{pid}/ns/net").st_ino == namespace_file.stat().st_ino
    except OSError:
        return False


def terminate_all(refs: list[ProcessRef], timeout: float = 5.0) -> None:
    """SIGTERM (and SIGCONT) all at once, then SIGKILL whoever is left past ``timeout``."""
    for ref in refs:
        if ref.signal(signal.SIGTERM):
            ref.signal(signal.SIGCONT)
    deadline = time.monotonic() + timeout
    for ref in refs:
        if not ref.wait_gone(max(0.0, deadline - time.monotonic())) and ref.signal(signal.SIGKILL):
            ref.wait_gone(timeout)
