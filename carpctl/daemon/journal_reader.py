"""The event journal's files and their readers: any process, the daemon need not run.

The on-disk format is described in ``carpctl.daemon.journal`` (the writer).
Readers take only newline-terminated lines that parse as records and skip
anything else (a torn tail, garbage left by a power loss); a line still being
written is left for the next look. Nothing here imports the daemon's logging,
so ``carpctl events`` starts fast.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DIRECTORY = "journal"
POLL = 0.2  # seconds between looks at the journal when following
SEGMENT = re.compile(r"journal-([0-9]{1,20})\.jsonl")


class JournalError(Exception):
    """The journal exists but cannot be read."""


def directory_of(state_dir: Path | str) -> Path:
    return Path(state_dir) / DIRECTORY


def segment_name(first: int) -> str:
    return f"journal-{first:012d}.jsonl"


def segments(directory: Path) -> list[tuple[int, Path]]:
    """(first seq, path) of every segment, oldest first; [] if there is no journal."""
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    found = [(int(m[1]), directory / name) for name in names if (m := SEGMENT.fullmatch(name))]
    return sorted(found)


def parse(line: bytes) -> dict[str, Any] | None:
    """The record on ``line``, None unless it is one (torn, garbage, wrong shape)."""
    try:
        value = json.loads(line)
    except ValueError:
        return None
    if not isinstance(value, dict):
        return None
    seq, at = value.get("seq"), value.get("time")
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
        return None
    if not isinstance(at, int | float) or isinstance(at, bool):
        return None
    return value if isinstance(value.get("kind"), str) else None


@dataclass
class Position:
    """Where a reader is: the segment (by first seq) and the byte offset in it."""

    segment: int = -1
    offset: int = 0


def scan(directory: Path, position: Position) -> Iterator[dict[str, Any]]:
    """Every complete record after ``position``, in order; moves ``position`` on."""
    try:
        found = segments(directory)
    except OSError as error:
        raise JournalError(f"cannot read the journal {directory}: {error.strerror}") from None
    for first, path in found:
        if first < position.segment:
            continue
        if first > position.segment:
            position.segment, position.offset = first, 0
        try:
            with open(path, "rb") as handle:
                if os.fstat(handle.fileno()).st_size < position.offset:
                    position.offset = 0  # repaired under us: read again, seqs drop repeats
                handle.seek(position.offset)
                data = handle.read()
        except FileNotFoundError:
            continue  # the oldest segment, dropped by a rotation meanwhile
        except OSError as error:
            raise JournalError(f"cannot read the journal {path}: {error.strerror}") from None
        end = data.rfind(b"\n") + 1  # a line still being written is left for the next look
        position.offset += end
        for line in data[:end].split(b"\n")[:-1]:
            record = parse(line)
            if record is not None:
                yield record


def _select(
    records: Iterator[dict[str, Any]], since: float | None, last: list[int | None]
) -> Iterator[dict[str, Any]]:
    for record in records:
        if last[0] is not None and record["seq"] <= last[0]:
            continue
        last[0] = record["seq"]
        if since is None or record["time"] >= since:
            yield record


def read(
    state_dir: Path | str, since: float | None = None, after_seq: int | None = None
) -> Iterator[dict[str, Any]]:
    """The kept records, oldest first: those at or after ``since`` (epoch) and
    after ``after_seq``. Raises JournalError if the journal cannot be read."""
    yield from _select(scan(directory_of(state_dir), Position()), since, [after_seq])


def follow(
    state_dir: Path | str,
    since: float | None = None,
    after_seq: int | None = None,
    *,
    interval: float = POLL,
) -> Iterator[dict[str, Any]]:
    """Like ``read``, then every record appended later, as it comes, forever."""
    directory, position, last = directory_of(state_dir), Position(), [after_seq]
    while True:
        yield from _select(scan(directory, position), since, last)
        time.sleep(interval)
