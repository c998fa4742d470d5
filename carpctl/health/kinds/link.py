"""link: an interface is administratively up and has carrier (Linux, /sys/class/net).

Read from ``/sys/class/net/<if>/``: ``flags`` must have IFF_UP (else
"administratively down"), ``carrier`` must read 1 (it reads 0 without
carrier, and fails with EINVAL while the interface is down), and
``operstate`` must be ``up`` or ``unknown`` (loopback and dummy interfaces
never report ``up``); ``down``, ``lowerlayerdown``, ``dormant``,
``testing`` and ``notpresent`` fail. On systems without /sys/class/net
(the BSDs) the probe fails saying so.
"""

from __future__ import annotations

from pathlib import Path

from carpctl.health.params import LinkParams
from carpctl.health.result import CheckResult

SYSFS_NET = Path("/sys/class/net")
IFF_UP = 0x1
GOOD_OPERSTATES = ("up", "unknown")


def probe(params: LinkParams, sysfs: Path = SYSFS_NET) -> CheckResult:
    name = params.interface
    if not sysfs.is_dir():
        return CheckResult.failure(f"link checks read {sysfs}, which only Linux has")
    directory = sysfs / name
    if not directory.is_dir():
        return CheckResult.failure(f"no interface {name}")
    try:
        flags = int(_read(directory / "flags"), 16)
        operstate = _read(directory / "operstate")
    except (OSError, ValueError) as error:
        return CheckResult.failure(f"cannot read the state of {name}: {error}")
    if not flags & IFF_UP:
        return CheckResult.failure(f"{name} is administratively down")
    try:
        carrier = _read(directory / "carrier")
    except OSError:
        carrier = "unreadable"
    if carrier != "1":
        return CheckResult.failure(f"{name} has no carrier (operstate {operstate})")
    if operstate not in GOOD_OPERSTATES:
        return CheckResult.failure(f"{name} is {operstate}")
    return CheckResult.ok(f"{name} is up with carrier (operstate {operstate})")


def _read(path: Path) -> str:
    return path.read_text().strip()
