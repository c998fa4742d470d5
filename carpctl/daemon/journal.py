"""The event journal: what happened, numbered and kept, in ``state_dir/journal/``.

Append-only JSON lines in segments named after the seq of their first record
(``journal-000000001234.jsonl``), oldest first by that number. Every record is
``{"seq": int, "time": wall epoch float, "kind": str, ...flat fields}``; seq
goes up by one per record, across restarts: ``open`` takes it from the newest
segment's last valid record (or, if that segment is empty, from its name).

Bounded: a record that would take the current segment past ``max_bytes``
starts a new segment, and only the newest ``keep`` segments are kept. Segments
are never renamed, so a reader never races a rename; a follower finishes its
segment and moves on to the next one by name.

Crash safety: each record is one ``os.write`` of the whole line on an
``O_APPEND`` descriptor, so a kill -9 leaves at most a torn last line (no
newline). Readers only take newline-terminated lines that parse and skip
anything else; ``open`` truncates a torn or invalid tail before appending.

Durability: ``record`` never fsyncs (it runs on the event loop, beside the
advertisements). The old segment is fsynced when a new one starts, and the
current one on ``sync()`` and ``close()``. A kill -9 loses nothing that
``record`` returned (the page cache survives the process); a power loss or
kernel crash can lose what the kernel had not yet written back, by default
up to about 30 seconds (``vm.dirty_expire_centisecs``), or since the last
``sync()`` if the daemon calls it more often.

One writer per journal (an flock on the directory); readers (``read``,
``follow``, in ``journal_reader``, re-exported here) take no lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import time
from collections.abc import Callable
from pathlib import Path

from carpctl.daemon import logs
from carpctl.daemon.journal_reader import (
    JournalError,
    directory_of,
    follow,
    parse,
    read,
    segment_name,
    segments,
)

__all__ = ["KINDS", "Journal", "JournalError", "follow", "read"]

MAX_BYTES = 1 << 20  # per segment
KEEP = 5  # segments
MAX_TEXT = 1024  # characters kept of a string field
RETRY = 10.0  # seconds between attempts to open a journal that failed to open
TAIL = 1 << 16  # bytes read back at a time when looking for the last record
# The kinds the daemon records; any other short word is accepted too.
KINDS = ("transition", "demotion", "check", "service", "daemon")
RESERVED = ("seq", "time", "kind")
FLAGS = os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC  # read: the tail at open

Scalar = str | int | float | bool | None


def _value(value: object) -> Scalar:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    text = value if isinstance(value, str) else str(value)
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 3] + "..."


def encode(seq: int, at: float, kind: str, fields: dict[str, object]) -> bytes:
    record: dict[str, Scalar] = {"seq": seq, "time": round(at, 6), "kind": str(kind)}
    record.update((str(k), _value(v)) for k, v in fields.items() if k not in RESERVED)
    return (json.dumps(record, separators=(",", ":")) + "\n").encode()


def _last_valid(fd: int, size: int) -> tuple[int | None, int]:
    """The seq of the segment's last valid record and the offset where it ends."""
    window = TAIL
    while True:
        start = max(0, size - window)
        data = os.pread(fd, size - start, start)
        lines = data.split(b"\n")[:-1]  # the part after the last newline is torn
        if start > 0:
            lines = lines[1:]  # the first piece may begin mid-line
        end = start + data.rfind(b"\n") + 1 if lines else start
        for line in reversed(lines):
            record = parse(line)
            if record is not None:
                return record["seq"], end
            end -= len(line) + 1
        if start == 0:
            return None, 0
        window *= 2


class Journal:
    """The daemon's writer. ``record`` is cheap, synchronous and never raises."""

    def __init__(
        self, directory: Path, max_bytes: int, keep: int, clock: Callable[[], float]
    ) -> None:
        self.directory, self.max_bytes, self.keep, self._clock = directory, max_bytes, keep, clock
        self.seq = 0  # the last seq given out
        self.errors = 0  # records lost and other failures, logged
        self._fd: int | None = None  # the current segment, append-only
        self._dir_fd: int | None = None  # the directory: locked, fsynced
        self._size = 0  # bytes in the current segment
        self._dirty = False  # written since the last fsync
        self._torn = False  # a failed write left a fragment that needs a newline
        self._closed = False
        self._retry_at = 0.0
        self._log = logs.get(journal=str(directory))

    @classmethod
    def open(
        cls,
        state_dir: Path | str,
        *,
        max_bytes: int = MAX_BYTES,
        keep: int = KEEP,
        clock: Callable[[], float] = time.time,
    ) -> Journal:
        """The journal in ``state_dir/journal``; if it cannot be opened now, it is
        logged, counted and tried again on a later ``record`` (every RETRY seconds)."""
        if max_bytes < 1 or keep < 1:
            raise ValueError("max_bytes and keep must be at least 1")
        journal = cls(directory_of(state_dir), max_bytes, keep, clock)
        journal._reopen()
        return journal

    def record(self, kind: str, **fields: Scalar) -> int:
        """Append one record; its seq, or 0 if it could not be written (counted)."""
        if self._closed:
            return 0
        try:
            if self._fd is None and not self._reopen():
                self.errors += 1
                return 0
            seq = self.seq + 1
            line = encode(seq, self._clock(), kind, dict(fields))
            if self._size and self._size + len(line) > self.max_bytes:
                self._rotate(seq)
            self.seq = seq
            self._write(line)
            return seq
        except Exception as error:  # the daemon must never fail because of its journal
            self._failed("journal record lost", error)
            return 0

    def sync(self) -> None:
        """fsync what was written since the last sync (from a timer, or at stop)."""
        if self._fd is not None and self._dirty:
            try:
                os.fsync(self._fd)
                self._dirty = False
            except OSError as error:
                self._failed("journal fsync failed", error)

    def close(self) -> None:
        self.sync()
        self._closed = True
        self._release()

    # -- internals ----------------------------------------------------------------

    def _failed(self, what: str, error: BaseException) -> None:
        self.errors += 1
        self._log.error(what, error=f"{type(error).__name__}: {error}", errors=self.errors)

    def _release(self) -> None:
        for fd in (self._fd, self._dir_fd):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._fd = self._dir_fd = None

    def _reopen(self) -> bool:
        if time.monotonic() < self._retry_at:
            return False
        try:
            self._recover()
            return True
        except OSError as error:
            self._release()
            self._retry_at = time.monotonic() + RETRY
            self._failed("cannot open the journal", error)
            return False

    def _recover(self) -> None:
        self.directory.mkdir(mode=0o750, parents=True, exist_ok=True)
        self._dir_fd = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        # One writer per journal: a second daemon on this state_dir would reuse seqs.
        fcntl.flock(self._dir_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        found = segments(self.directory)
        if not found:
            self._start(self.seq + 1)
            return
        first, path = found[-1]
        self._fd = os.open(path, FLAGS, 0o640)
        size = os.fstat(self._fd).st_size
        last, end = _last_valid(self._fd, size)
        if end < size:
            os.ftruncate(self._fd, end)
            self._log.warning("journal: torn tail removed", segment=path.name, bytes=size - end)
        self._size = end
        self.seq = max(self.seq, first - 1 if last is None else last)
        self._prune()

    def _start(self, first: int) -> None:
        """Make the segment whose first record will be ``first`` the current one."""
        fd = os.open(self.directory / segment_name(first), FLAGS, 0o640)
        old, self._fd, self._size, self._torn = self._fd, fd, os.fstat(fd).st_size, False
        if old is not None:
            with contextlib.suppress(OSError):
                os.close(old)
        self._prune()
        self._sync_dir()

    def _rotate(self, first: int) -> None:
        self.sync()  # the finished segment is durable before older ones are dropped
        self._start(first)

    def _prune(self) -> None:
        for _, path in segments(self.directory)[: -self.keep]:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def _sync_dir(self) -> None:
        if self._dir_fd is not None:
            try:
                os.fsync(self._dir_fd)
            except OSError as error:
                self._failed("journal directory fsync failed", error)

    def _write(self, line: bytes) -> None:
        assert self._fd is not None
        if self._torn:
            line = b"\n" + line  # end the fragment a failed write left, so this line parses
        written = os.write(self._fd, line)
        if written < len(line):  # disk full part-way: take the fragment back if we can
            try:
                os.ftruncate(self._fd, self._size)
            except OSError:
                self._size += written
                self._torn = True
            raise OSError(f"short write: {written} of {len(line)} bytes")
        self._size += written
        self._dirty, self._torn = True, False
