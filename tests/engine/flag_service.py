"""A stand-in HA service for lab tests: its 'running' state is a flag file.

``python flag_service.py start|stop|status FLAG [devd args...]``; ``hang``
never returns (a start that hangs).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path


def main() -> int:
    action, flag = sys.argv[1], Path(sys.argv[2])
    if action == "start":
        flag.write_text(" ".join(sys.argv[3:]) + "\n")  # the devd-style arguments
        return 0
    if action == "stop":
        flag.unlink(missing_ok=True)
        return 0
    if action == "status":
        return 0 if flag.exists() else 1
    if action == "hang":
        time.sleep(3600)
    return 2


if __name__ == "__main__":
    sys.exit(main())
