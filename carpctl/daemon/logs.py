"""One structlog configuration for the whole program.

Human-readable on a terminal, JSON lines otherwise (journald and log
shippers), or as the config's ``log_format`` says.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

import structlog


def configure(log_format: str = "auto", level: int = logging.INFO) -> None:
    use_json = log_format == "json" or (log_format == "auto" and not sys.stderr.isatty())
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if use_json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=False,
    )


def get(**context: Any) -> Any:
    return structlog.get_logger().bind(**context)


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
