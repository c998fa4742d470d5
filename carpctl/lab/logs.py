"""What a node's log says: the JSON lines ``carpctl run`` writes to stderr.

Before every start the lab appends a marker line, so "the current run" is
everything after the last marker; lines that are not JSON (a traceback)
are skipped.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

MARKER = "lab started carpctl"


@dataclass(frozen=True)
class RoleChange:
    old: str
    new: str
    reason: str
    time: float  # seconds since the epoch (the log's timestamp)
    vhid: int | None = None


def write_marker(path: Path, argv: list[str]) -> None:
    line = {"event": MARKER, "argv": argv, "timestamp": datetime.now().astimezone().isoformat()}
    with path.open("a") as handle:
        handle.write(json.dumps(line) + "\n")


def _timestamp(text: Any) -> float:
    if isinstance(text, str):
        try:
            return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
        except ValueError:
            pass
    return time.time()


def events(path: Path | str, current_run: bool = True) -> list[dict[str, Any]]:
    """The JSON objects of a log (only the current run's, by default)."""
    try:
        lines = Path(path).read_text(errors="replace").splitlines()
    except OSError:
        return []
    found: list[dict[str, Any]] = []
    for line in lines:
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if not isinstance(event, dict):
            continue
        if current_run and event.get("event") == MARKER:
            found.clear()
        found.append(event)
    return found


def role_changes(path: Path | str, current_run: bool = True) -> list[RoleChange]:
    return [
        RoleChange(
            old=str(e.get("old", "")),
            new=str(e.get("new", "")),
            reason=str(e.get("reason", "")),
            time=_timestamp(e.get("timestamp")),
            vhid=e.get("vhid") if isinstance(e.get("vhid"), int) else None,
        )
        for e in events(path, current_run)
        if e.get("event") == "state changed"
    ]


def last_role(path: Path | str) -> RoleChange | None:
    """The last "state changed" of the current run, or None."""
    changes = role_changes(path)
    return changes[-1] if changes else None


def tail(path: Path | str, lines: int = 5) -> list[str]:
    """The last lines of a log, for error messages."""
    try:
        return Path(path).read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return []
