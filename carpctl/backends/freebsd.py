"""FreeBSD kernel CARP: ``net.inet.carp.demotion`` and the vhids in ``ifconfig``.

Writing ``sysctl net.inet.carp.demotion=N`` *adds* N (N may be negative;
the stored value is never clamped) and prints ``net.inet.carp.demotion:
old -> new``. One write is therefore always enough.

``ifconfig`` shows a vhid on its parent interface, after the addresses
(``inet 198.51.100.100 ... vhid 1``)::

    carp: MASTER vhid 1 advbase 1 advskew 0
          peer 224.0.0.18 peer6 ff02::12        (FreeBSD 14+)

plus `` key "..."`` after advskew with ``ifconfig -k``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from carpctl.backends import parsing
from carpctl.backends.command import Runner, SubprocessRunner, find_tool
from carpctl.backends.demotion import JournaledDemotion
from carpctl.backends.parsing import Line, VhidStatus

DEMOTION_OID = "net.inet.carp.demotion"
BOOTTIME_OID = "kern.boottime"

_CARP = re.compile(
    r"^carp: (?P<state>\S+) vhid (?P<vhid>\d+) advbase (?P<advbase>\d+)"
    r" advskew (?P<advskew>\d+)(?: key \".*\")?$"
)
_PEER = re.compile(r"^peer \S+ peer6 \S+$")


class SysctlDemotion:
    """The ``Counter`` of the FreeBSD kernel: relative, unbounded writes."""

    backend = "freebsd"
    low: int | None = None
    high: int | None = None
    max_step: int | None = None

    def __init__(self, run: Runner, sysctl: str, oid: str = DEMOTION_OID) -> None:
        self.run, self.sysctl, self.target = run, sysctl, oid

    def read(self) -> int:
        return parsing.integer(
            self.run([self.sysctl, "-n", self.target]), self.target, low=-(2**31)
        )

    def add(self, step: int) -> None:
        self.run([self.sysctl, f"{self.target}={step}"])

    def boot(self) -> str:
        return parsing.boottime(self.run([self.sysctl, "-n", BOOTTIME_OID]))


class FreeBSDBackend(JournaledDemotion):
    """Demotion through the sysctl, vhid states from ``ifconfig``.

    ``sysctl``/``ifconfig`` name the programs; by default they are looked up
    on PATH (or on ``search_path``).
    """

    def __init__(
        self,
        state_dir: Path | str,
        *,
        runner: Runner | None = None,
        sysctl: str | None = None,
        ifconfig: str | None = None,
        search_path: str | None = None,
        log: Any = None,
    ) -> None:
        self.run = runner if runner is not None else SubprocessRunner()
        self.sysctl = find_tool("sysctl", sysctl, search_path=search_path)
        self.ifconfig = find_tool("ifconfig", ifconfig, search_path=search_path)
        super().__init__(SysctlDemotion(self.run, self.sysctl), state_dir, log=log)

    def vhids(self) -> list[VhidStatus]:
        """Every vhid on every interface, as ``ifconfig`` shows them now."""
        return parse_ifconfig(self.run([self.ifconfig]))


def parse_ifconfig(text: str) -> list[VhidStatus]:
    """The vhids in FreeBSD ``ifconfig`` output (one interface or all of them)."""
    found: list[VhidStatus] = []
    for interface, lines in parsing.blocks(text):
        last: Line | None = None  # the carp line a peer line belongs to
        for line in lines:
            body = line.text.strip()
            if body.startswith("carp:"):
                found.append(_vhid(interface, line, body))
                last = line
            elif body.startswith("peer ") and (
                last is None or last.number != line.number - 1 or not _PEER.match(body)
            ):
                raise parsing.bad_line(line, "a peer line that does not follow a carp line")
    return found


def _vhid(interface: str, line: Line, body: str) -> VhidStatus:
    match = _CARP.match(body)
    if match is None:
        raise parsing.bad_line(line, "not a carp line (carp: STATE vhid N advbase B advskew S)")
    return VhidStatus(
        vhid=_field(match, "vhid", line, 1, 255),
        interface=interface,
        state=parsing.state(match["state"], line),
        advbase=_field(match, "advbase", line, 0, 255),
        advskew=_field(match, "advskew", line, 0, 255),
    )


def _field(match: re.Match[str], key: str, line: Line, low: int, high: int) -> int:
    value = int(match[key])
    if not low <= value <= high:
        raise parsing.bad_line(line, f"{key} {value} is outside {low}..{high}")
    return value
