"""What the BSD tools print, read strictly: the shared part.

``ifconfig`` output is a sequence of blocks, one per interface: a header
line at column 0 (``em0: flags=8843<UP,...> mtu 1500``) followed by
indented lines. The per-OS modules read the CARP lines inside the blocks.
Anything that does not have the documented shape is a ``ParseError`` that
quotes the line, never a traceback.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum

from carpctl.backends.command import ParseError

_HEADER = re.compile(r"^(?P<name>[A-Za-z][\w.:-]*?): flags=[0-9a-f]+<[^>]*>")
_BOOTTIME_FREEBSD = re.compile(r"^\{ sec = (\d+), usec = \d+ \}")


class CarpState(StrEnum):
    INIT = "INIT"
    BACKUP = "BACKUP"
    MASTER = "MASTER"


@dataclass(frozen=True, slots=True)
class VhidStatus:
    """One vhid as the kernel shows it."""

    vhid: int
    interface: str  # the parent (FreeBSD: the interface itself; OpenBSD: carpdev)
    state: CarpState
    advbase: int
    advskew: int  # as configured, not demoted
    carp_interface: str | None = None  # OpenBSD: the carpN holding the vhid

    @property
    def name(self) -> str:
        """``1@em0``, as devd and ``carpctl event`` name it."""
        return f"{self.vhid}@{self.interface}"


@dataclass(frozen=True, slots=True)
class Line:
    number: int  # 1-based, for messages
    text: str


def integer(text: str, what: str, *, low: int = 0, high: int = 2**31 - 1) -> int:
    value = text.strip()
    if not re.fullmatch(r"-?\d+", value) or not low <= int(value) <= high:
        raise ParseError(f"{what}: expected an integer in {low}..{high}, got {value[:80]!r}")
    return int(value)


def state(text: str, line: Line) -> CarpState:
    try:
        return CarpState(text)
    except ValueError:
        raise bad_line(line, f"unknown CARP state {text!r}") from None


def boottime(text: str) -> str:
    """``sysctl -n kern.boottime``: FreeBSD ``{ sec = N, usec = M } date``, OpenBSD ``N``."""
    value = text.strip()
    if value.isdigit():
        return value
    match = _BOOTTIME_FREEBSD.match(value)
    if match is None:
        raise ParseError(f"kern.boottime: not a boot time: {value[:80]!r}")
    return match.group(1)


def bad_line(line: Line, why: str) -> ParseError:
    return ParseError(f"ifconfig output, line {line.number}: {why}: {line.text.strip()[:120]!r}")


def blocks(text: str) -> Iterator[tuple[str, list[Line]]]:
    """(interface name, its indented lines) for each interface in ``ifconfig`` output."""
    name: str | None = None
    body: list[Line] = []
    seen = False
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        line = Line(number, raw)
        if raw[0] in " \t":
            if name is None:
                raise bad_line(line, "an indented line before any interface")
            body.append(line)
            continue
        header = _HEADER.match(raw)
        if header is None:
            raise bad_line(line, "not an interface header")
        if name is not None:
            yield name, body
        name, body, seen = header.group("name"), [], True
    if not seen:
        raise ParseError("ifconfig output lists no interface")
    assert name is not None
    yield name, body
