"""The embedded engine's state in the control protocol's shapes (wall-clock times)."""

from __future__ import annotations

import time
from typing import Any

from carpctl.core.effects import State
from carpctl.daemon.engine import Engine


def vhid_status(engine: Engine) -> list[dict[str, Any]]:
    """Per vhid, in the control protocol's ``VhidStatus`` shape (wall-clock times)."""
    now = engine.now()
    offset = time.time() - now  # monotonic -> wall clock

    def wall(at: float | None) -> float:
        return (at if at is not None else now) + offset

    result = []
    for h in engine.hosts:
        seen = h.machine.master_seen
        recent_split = h.last_split_brain is not None and (
            now - h.last_split_brain < 3 * h.machine.advertisement_interval
        )
        result.append(
            {
                "name": h.name,
                "vhid": h.section.vhid,
                "interface": h.section.interface,
                "state": h.machine.state.name,
                "since": wall(h.machine.entered_at),
                "advbase": h.section.advbase,
                "advskew": h.section.advskew,
                "effective_skew": h.machine.effective_skew,
                "master_seen": None
                if seen is None
                else {
                    "src": str(seen.src),
                    "advbase": seen.advbase,
                    "advskew": seen.advskew,
                    "at": wall(seen.at),
                },
                "sent": engine.sent[h.name],
                "send_errors": engine.send_errors[h.name],
                "split_brain": recent_split and h.machine.state is State.MASTER,
            }
        )
    return result


def drops(engine: Engine) -> dict[str, dict[str, int]]:
    """Rejected packets per interface and reason."""
    return {
        ifname: {str(k): v for k, v in r.drops.items()} for ifname, r in engine.receivers.items()
    }
