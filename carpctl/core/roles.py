"""A vhid's name and role as devd reports them: ``1@eth0`` and MASTER, BACKUP or INIT.

Validated strictly: these values arrive from devd, ifstated or the network
and end up as arguments of hook commands.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

VHID_NAME = re.compile(r"([0-9]{1,3})@([A-Za-z0-9_.:-]{1,15})")


def parse_vhid_name(text: str) -> tuple[int, str]:
    """``"1@eth0"`` -> ``(1, "eth0")``; ValueError unless vhid 1..255 and an interface name."""
    match = VHID_NAME.fullmatch(text) if isinstance(text, str) else None
    if match is None or not 1 <= int(match[1]) <= 255 or match[1].startswith("0"):
        raise ValueError(f"expected VHID@INTERFACE with a vhid 1..255, got {text!r}")
    return int(match[1]), match[2]


class Role(StrEnum):
    INIT = "INIT"
    BACKUP = "BACKUP"
    MASTER = "MASTER"


@dataclass(slots=True)
class VhidRole:
    role: Role = Role.INIT
    old: Role = Role.INIT
    since: float | None = None  # monotonic time of the change into ``role``
    seq: int = 0
    at: float | None = None
    reported: bool = False  # False: only named by a service, no role heard of yet
