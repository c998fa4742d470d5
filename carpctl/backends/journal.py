"""What carpctl has applied to the kernel's demotion, on disk, crash-proof.

One small JSON file in ``state_dir`` (``kernel-demotion.json``)::

    {"format": 1, "backend": "freebsd", "target": "net.inet.carp.demotion",
     "boot": "1712345678", "uptime": 3600, "applied": 50,
     "pending": {"step": 30, "kernel_before": 70}}

``applied`` is carpctl's share now in the kernel. ``pending`` is a kernel
write that may or may not have happened: it is saved *before* the write and
cleared, with ``applied`` moved on, *after* it (a write-ahead record).
``boot`` is the kernel's boot time and ``uptime`` how long it had been up
when the record was saved: a kernel that booted since has forgotten every
share (``recovery.same_boot``).

Saving is atomic (temporary file, fsync, rename, fsync of the directory): a
kill -9 at any moment leaves the old record or the new one, never a torn
file. A lock file serialises every carpctl process that uses the same
``state_dir`` (the daemon, a CLI fallback), so each reads the record, talks
to the kernel and saves the result as one unit.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from carpctl.backends.command import BackendError
from carpctl.statefile import write_json

STATE_FILE = "kernel-demotion.json"
LOCK_FILE = "kernel-demotion.lock"
FORMAT = 1


class StateError(BackendError):
    """The record exists but cannot be trusted; carpctl will not guess its share."""


@dataclass(frozen=True, slots=True)
class Pending:
    step: int  # the change being written to the kernel
    kernel_before: int  # the kernel's value read just before writing it


@dataclass(frozen=True, slots=True)
class Record:
    backend: str
    target: str
    boot: str
    applied: int = 0
    pending: Pending | None = None
    uptime: int = 0  # seconds the kernel had been up at the save

    def begin(self, step: int, kernel_before: int) -> Record:
        return replace(self, pending=Pending(step, kernel_before))

    def settle(self, applied: int) -> Record:
        return replace(self, applied=applied, pending=None)

    def to_json(self) -> dict[str, Any]:
        pending = self.pending
        return {
            "format": FORMAT,
            "backend": self.backend,
            "target": self.target,
            "boot": self.boot,
            "uptime": self.uptime,
            "applied": self.applied,
            "pending": None
            if pending is None
            else {"step": pending.step, "kernel_before": pending.kernel_before},
        }

    @classmethod
    def from_json(cls, raw: Any) -> Record:
        """The record in ``raw``; ValueError when it is not one."""
        if not isinstance(raw, dict) or raw.get("format") != FORMAT:
            raise ValueError(f"not a format-{FORMAT} record")
        pending = raw.get("pending")
        if pending is not None and not isinstance(pending, dict):
            raise ValueError("pending is not an object")
        return cls(
            backend=_text(raw, "backend"),
            target=_text(raw, "target"),
            boot=_text(raw, "boot"),
            applied=_integer(raw, "applied"),
            pending=None
            if pending is None
            else Pending(_integer(pending, "step"), _integer(pending, "kernel_before")),
            uptime=_integer(raw, "uptime") if "uptime" in raw else 0,
        )


def _text(raw: dict[str, Any], key: str) -> str:
    value = raw.get(key)
    if not isinstance(value, str):
        raise ValueError(f"{key} is not a string")
    return value


def _integer(raw: dict[str, Any], key: str) -> int:
    value = raw.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{key} is not an integer")
    return value


class Journal:
    def __init__(self, state_dir: Path | str) -> None:
        self.directory = Path(state_dir)
        self.path = self.directory / STATE_FILE

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the lock for one read-decide-write unit (released by the kernel on a crash)."""
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def load(self) -> Record | None:
        """The saved record, or None when there is none."""
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return None
        except OSError as error:
            raise StateError(f"cannot read {self.path}: {error.strerror}") from None
        try:
            return Record.from_json(json.loads(text))
        except ValueError as error:
            raise StateError(
                f"{self.path} is not a record of carpctl's kernel demotion ({error}); "
                "carpctl cannot tell its share from others'. Check the kernel's value, "
                "then remove the file: carpctl will treat all current demotion as not its own"
            ) from None

    def save(self, record: Record) -> None:
        write_json(self.path, record.to_json())
