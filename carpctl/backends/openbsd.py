"""OpenBSD kernel CARP: an interface group's demote count and the carpN interfaces.

``ifconfig -g carp`` prints ``carp: carp demote count N``.
``ifconfig -g carp carpdemote N`` adds N and ``-carpdemote N`` subtracts it;
ifconfig refuses N above 128 (``invalid carp demotion: too large``) and the
kernel refuses a change that would leave the count outside 0..255
(``SIOCSIFGATTR: Invalid argument``). Larger shares are written in steps.

``ifconfig`` shows each carpN with its parent (``carpdev``)::

    carp: MASTER carpdev em0 vhid 1 advbase 1 advskew 0 [carppeer IP]

or, with several vhids on one carpN (load balancing)::

    carp: carpdev em0 advbase 1 balancing ip [carppeer IP]
            state MASTER vhid 1 advskew 0
            state BACKUP vhid 2 advskew 100
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from carpctl.backends import parsing
from carpctl.backends.command import BackendError, ParseError, Runner, SubprocessRunner, find_tool
from carpctl.backends.demotion import JournaledDemotion
from carpctl.backends.parsing import Line, VhidStatus

DEFAULT_GROUP = "carp"
MAX_COUNT = 255
MAX_STEP = 128
BOOTTIME_OID = "kern.boottime"

_GROUP_NAME = re.compile(r"^[A-Za-z_][\w.-]{0,14}$")
_SINGLE = re.compile(
    r"^carp: (?P<state>\S+) carpdev (?P<dev>\S+) vhid (?P<vhid>\d+) advbase (?P<advbase>\d+)"
    r" advskew (?P<advskew>\d+)(?: carppeer \S+)?$"
)
_SEVERAL = re.compile(
    r"^carp: carpdev (?P<dev>\S+) advbase (?P<advbase>\d+) balancing \S+(?: carppeer \S+)?$"
)
_MEMBER = re.compile(r"^state (?P<state>\S+) vhid (?P<vhid>\d+) advskew (?P<advskew>\d+)$")


def check_group(group: str) -> str:
    """An interface group name as OpenBSD accepts it (not ending in a digit)."""
    if not _GROUP_NAME.match(group) or group[-1].isdigit():
        raise BackendError(
            f"{group!r} is not an interface group name "
            "(letters, digits, '_', '.', '-', at most 15, not ending in a digit)"
        )
    return group


class GroupDemotion:
    """The ``Counter`` of an OpenBSD interface group: 0..255, at most 128 a write."""

    backend = "openbsd"
    low: int | None = 0
    high: int | None = MAX_COUNT
    max_step: int | None = MAX_STEP

    def __init__(self, run: Runner, ifconfig: str, sysctl: str, group: str = DEFAULT_GROUP):
        self.run, self.ifconfig, self.sysctl = run, ifconfig, sysctl
        self.group = check_group(group)
        self.target = f"group {group}"

    def read(self) -> int:
        text = self.run([self.ifconfig, "-g", self.group]).strip()
        match = re.fullmatch(r"(\S+): carp demote count (-?\d+)", text)
        if match is None or match.group(1) != self.group:
            raise ParseError(
                f"ifconfig -g {self.group}: expected '{self.group}: carp demote count N', "
                f"got {text[:120]!r}"
            )
        return int(match.group(2))

    def add(self, step: int) -> None:
        if not 0 < abs(step) <= MAX_STEP:
            raise ValueError(f"one carpdemote change is 1..{MAX_STEP} either way, got {step}")
        verb = "carpdemote" if step > 0 else "-carpdemote"
        self.run([self.ifconfig, "-g", self.group, verb, str(abs(step))])

    def boot(self) -> str:
        return parsing.boottime(self.run([self.sysctl, "-n", BOOTTIME_OID]))


class OpenBSDBackend(JournaledDemotion):
    """Demotion through an interface group's demote count, vhids from ``ifconfig``."""

    def __init__(
        self,
        state_dir: Path | str,
        *,
        group: str = DEFAULT_GROUP,
        runner: Runner | None = None,
        ifconfig: str | None = None,
        sysctl: str | None = None,
        search_path: str | None = None,
        log: Any = None,
    ) -> None:
        self.run = runner if runner is not None else SubprocessRunner()
        self.ifconfig = find_tool("ifconfig", ifconfig, search_path=search_path)
        self.sysctl = find_tool("sysctl", sysctl, search_path=search_path)
        counter = GroupDemotion(self.run, self.ifconfig, self.sysctl, group)
        super().__init__(counter, state_dir, log=log)

    def vhids(self) -> list[VhidStatus]:
        """Every vhid of every carpN, as ``ifconfig`` shows them now."""
        return parse_ifconfig(self.run([self.ifconfig]))


def parse_ifconfig(text: str) -> list[VhidStatus]:
    """The vhids in OpenBSD ``ifconfig`` output (one interface or all of them)."""
    found: list[VhidStatus] = []
    for interface, lines in parsing.blocks(text):
        several: re.Match[str] | None = None  # the header the next vhid lines belong to
        members = 0
        for line in lines:
            body = line.text.strip()
            if several is not None and body.startswith("state "):
                member = _MEMBER.match(body)
                if member is None:
                    raise parsing.bad_line(line, "not a vhid line (state S vhid N advskew A)")
                found.append(_vhid(several, member, interface, line))
                members += 1
                continue
            if several is not None and members == 0:
                raise parsing.bad_line(line, "a 'carp: carpdev' line without vhid lines after it")
            several = None
            if body.startswith("carp:"):
                single = _SINGLE.match(body)
                if single is not None:
                    found.append(_vhid(single, single, interface, line))
                    continue
                several, members = _SEVERAL.match(body), 0
                if several is None:
                    raise parsing.bad_line(line, "not a carp line")
        if several is not None and members == 0:
            raise ParseError(f"ifconfig output: {interface}'s 'carp: carpdev' line has no vhids")
    return found


def _vhid(common: re.Match[str], own: re.Match[str], carp_if: str, line: Line) -> VhidStatus:
    values = {
        "vhid": (int(own["vhid"]), 1, 255),
        "advbase": (int(common["advbase"]), 0, 255),
        "advskew": (int(own["advskew"]), 0, 255),
    }
    for key, (value, low, high) in values.items():
        if not low <= value <= high:
            raise parsing.bad_line(line, f"{key} {value} is outside {low}..{high}")
    return VhidStatus(
        vhid=values["vhid"][0],
        interface=common["dev"],
        state=parsing.state(own["state"], line),
        advbase=values["advbase"][0],
        advskew=values["advskew"][0],
        carp_interface=carp_if,
    )
