"""Rate-limited repetitive log lines: a flood of bad packets, hung checks."""

from __future__ import annotations

import time


class RateLimiter:
    """Allow ``burst`` events per ``period`` seconds per key; count the rest."""

    def __init__(self, burst: int = 5, period: float = 10.0) -> None:
        self.burst, self.period = burst, period
        self._windows: dict[str, tuple[float, int, int]] = {}  # start, allowed, suppressed

    def allow(self, key: str, now: float | None = None) -> tuple[bool, int]:
        """(may log now, how many were suppressed since the last allowed line)."""
        now = time.monotonic() if now is None else now
        start, allowed, suppressed = self._windows.get(key, (now, 0, 0))
        if now - start >= self.period:
            start, allowed = now, 0
        if allowed < self.burst:
            self._windows[key] = (start, allowed + 1, 0)
            return True, suppressed
        self._windows[key] = (start, allowed, suppressed + 1)
        return False, 0
