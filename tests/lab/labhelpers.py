"""Helpers shared by the lab tests (conftest.py holds the fixtures)."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys

_counter = itertools.count(1)


def lab_name() -> str:
    """A lab name no other test run uses (lab names: [a-z][a-z0-9_]{0,15})."""
    return f"t{os.getpid()}_{next(_counter)}"


def carpctl(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``carpctl ARGS`` in a child process."""
    return subprocess.run(
        [sys.executable, "-m", "carpctl", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
