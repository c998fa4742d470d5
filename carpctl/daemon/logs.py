"""One structlog configuration for the whole program.

Human-readable on a terminal, JSON lines otherwise (journald and log
shippers), or as the config's ``log_format`` says.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

from carpctl.ratelimit import RateLimiter

__all__ = ["RateLimiter", "configure", "get"]


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
