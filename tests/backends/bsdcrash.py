"""Simulated kill -9 for the BSD backends, and a log that remembers.

``CrashingRunner`` wraps a runner and dies (``Crash``, a BaseException that
nothing in carpctl catches) at the n-th kernel *write*: ``before`` it runs
(the write-ahead record is saved, the kernel untouched) or ``after`` it ran
(the kernel changed, the record not yet settled). The backend object is
then dropped without any shutdown and a new one is built on the same
state_dir: a restart.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from carpctl.backends import Runner


class Crash(BaseException):
    """The process died here."""


def is_write(argv: Sequence[str]) -> bool:
    return any("=" in arg for arg in argv[1:]) or any(a.endswith("carpdemote") for a in argv)


def step_of(argv: Sequence[str]) -> int:
    """The demotion change a write makes."""
    if "=" in argv[-1]:
        return int(argv[-1].partition("=")[2])
    return -int(argv[-1]) if argv[-2].startswith("-") else int(argv[-1])


class CrashingRunner:
    def __init__(self, inner: Runner, *, at: int = 0, window: str = "before") -> None:
        assert window in {"before", "after"}
        self.inner, self.at, self.window = inner, at, window
        self.writes = 0
        self.crashed: list[str] | None = None  # the write it died on

    def __call__(self, argv: Sequence[str]) -> str:
        if not is_write(argv):
            return self.inner(argv)
        index, self.writes = self.writes, self.writes + 1
        if index != self.at:
            return self.inner(argv)
        self.crashed = list(argv)
        if self.window == "after":
            self.inner(argv)
        raise Crash(f"killed {self.window} {' '.join(argv)}")


class RecordingLog:
    """Stands in for the structlog logger: keeps (level, event, fields)."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str, dict[str, Any]]] = []

    def info(self, event: str, **fields: Any) -> None:
        self.lines.append(("info", event, fields))

    def warning(self, event: str, **fields: Any) -> None:
        self.lines.append(("warning", event, fields))

    def recoveries(self) -> list[str]:
        return [str(fields["recovery"]) for _, _, fields in self.lines if "recovery" in fields]
