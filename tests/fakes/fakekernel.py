"""Fake FreeBSD/OpenBSD kernels for tests: install the fake tools, poke the state.

``FakeKernel.create(tmp_path, "freebsd")`` writes a kernel state file and a
``bin`` directory holding executable ``sysctl`` and ``ifconfig`` (wrappers
that run ``fake_sysctl``/``fake_ifconfig`` under this interpreter with
``-S``). ``kernel.env`` is an environment whose PATH finds them first.

Tests change the kernel behind carpctl's back with ``adjust`` (the kernel's
own changes: pfsync, a parent interface down), ``sysctl``/``ifconfig`` (an
operator typing a command), ``set_vhid`` and ``reboot``.
``kernel.runner()`` calls the fake programs in-process (same code, no
process start) for the fast property tests.
"""

from __future__ import annotations

import copy
import io
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import fake_ifconfig
import fake_sysctl
import fakestate

from carpctl.backends.command import SubprocessRunner, check_result

FAKES = Path(__file__).resolve().parent
UPTIME = 600  # a fake kernel booted this many seconds before it was created

_FREEBSD_SYSCTLS = {
    "net.inet.carp.allow": 1,
    "net.inet.carp.preempt": 0,
    "net.inet.carp.log": 1,
    "net.inet.carp.dscp": 56,
    "net.inet.carp.demotion": 0,
    "net.inet.carp.senderr_demotion_factor": 240,
    "net.inet.carp.ifdown_demotion_factor": 240,
    "net.pfsync.carp_demotion_factor": 240,
}
_OPENBSD_SYSCTLS = {"net.inet.carp.allow": 1, "net.inet.carp.preempt": 0, "net.inet.carp.log": 2}
_UP = "8843<UP,BROADCAST,RUNNING,SIMPLEX,MULTICAST>"
_LOOPBACK = "8049<UP,LOOPBACK,RUNNING,MULTICAST>"


def freebsd_interfaces() -> list[dict[str, Any]]:
    return [
        {"name": "lo0", "flags": _LOOPBACK, "mtu": 16384, "inet": [["127.0.0.1/8", None]]},
        {
            "name": "em0",
            "flags": _UP,
            "mtu": 1500,
            "ether": "08:00:27:aa:bb:01",
            "inet": [["198.51.100.1/24", None], ["198.51.100.100/24", 1]],
            "inet6": [["2001:db8::100/64", 1]],
            "carp": [{"vhid": 1, "state": "MASTER", "advbase": 1, "advskew": 0}],
            "media": "Ethernet autoselect (1000baseT <full-duplex>)",
            "status": "active",
        },
        {
            "name": "em1",
            "flags": _UP,
            "mtu": 1500,
            "ether": "08:00:27:aa:bb:02",
            "inet": [["203.0.113.1/24", None], ["203.0.113.100/24", 2]],
            "carp": [{"vhid": 2, "state": "BACKUP", "advbase": 1, "advskew": 100}],
            "media": "Ethernet autoselect (1000baseT <full-duplex>)",
            "status": "active",
        },
    ]


def openbsd_interfaces() -> list[dict[str, Any]]:
    em = {"flags": _UP, "mtu": 1500, "groups": ["egress"], "status": "active"}
    return [
        {"name": "lo0", "flags": _LOOPBACK, "mtu": 32768, "inet": [["127.0.0.1/8", None]]},
        {**em, "name": "em0", "lladdr": "08:00:27:aa:bb:01", "inet": [["198.51.100.1/24", None]]},
        {**em, "name": "em1", "lladdr": "08:00:27:aa:bb:02", "inet": [["203.0.113.1/24", None]]},
        {
            "name": "carp0",
            "flags": _UP,
            "mtu": 1500,
            "lladdr": "00:00:5e:00:01:01",
            "index": 5,
            "priority": 15,
            "carpdev": "em0",
            "advbase": 1,
            "carp": [{"vhid": 1, "state": "MASTER", "advskew": 0}],
            "groups": ["carp"],
            "inet": [["198.51.100.100/24", None]],
        },
        {
            "name": "carp1",
            "flags": _UP,
            "mtu": 1500,
            "lladdr": "00:00:5e:00:01:02",
            "index": 6,
            "priority": 15,
            "carpdev": "em1",
            "advbase": 2,
            "balancing": "ip",
            "carp": [
                {"vhid": 2, "state": "MASTER", "advskew": 0},
                {"vhid": 3, "state": "BACKUP", "advskew": 100},
            ],
            "groups": ["carp"],
            "inet": [["203.0.113.100/24", None]],
        },
    ]


class FakeKernel:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.path = directory / "kernel.json"
        self.bin = directory / "bin"

    @classmethod
    def create(
        cls, directory: Path, os_name: str = "freebsd", *, release: int = 14, demotion: int = 0
    ) -> FakeKernel:
        kernel = cls(directory)
        directory.mkdir(parents=True, exist_ok=True)
        freebsd = os_name == "freebsd"
        state: dict[str, Any] = {
            "os": os_name,
            "release": release,
            "boottime": int(time.time()) - UPTIME,
            "sysctl": dict(_FREEBSD_SYSCTLS if freebsd else _OPENBSD_SYSCTLS),
            "groups": {} if freebsd else {"carp": 0, "egress": 0},
            "interfaces": freebsd_interfaces() if freebsd else openbsd_interfaces(),
        }
        fakestate.demotion_adjust(state, demotion)
        kernel.path.write_text(json.dumps(state))
        kernel.bin.mkdir(exist_ok=True)
        for tool, module in (("sysctl", "fake_sysctl"), ("ifconfig", "fake_ifconfig")):
            program = kernel.bin / tool
            program.write_text(
                f"#!{sys.executable} -S\n"
                f"import sys\nsys.path.insert(0, {str(FAKES)!r})\n"
                f"import {module}\nsys.exit({module}.main())\n"
            )
            program.chmod(0o755)
        return kernel

    # -- for the code under test ----------------------------------------------

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "PATH": f"{self.bin}{os.pathsep}{os.environ.get('PATH', '')}",
            fakestate.ENV: str(self.path),
        }

    @property
    def search_path(self) -> str:
        return str(self.bin)

    def subprocess_runner(self, timeout: float = 10.0) -> SubprocessRunner:
        return SubprocessRunner(timeout=timeout, env=self.env)

    def runner(self) -> InProcessRunner:
        return InProcessRunner(self.path)

    # -- looking and poking -----------------------------------------------------

    def state(self) -> dict[str, Any]:
        with fakestate.locked(self.path) as state:
            return copy.deepcopy(state)

    @property
    def demotion(self) -> int:
        """FreeBSD's net.inet.carp.demotion, OpenBSD's group carp count."""
        state = self.state()
        if state["os"] == "freebsd":
            return int(state["sysctl"]["net.inet.carp.demotion"])
        return int(state["groups"]["carp"])

    @property
    def calls(self) -> list[list[str]]:
        """Every program run so far, as argv (program name first)."""
        try:
            text = Path(f"{self.path}.calls").read_text()
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in text.splitlines()]

    def adjust(self, delta: int, group: str = "carp") -> int:
        """The kernel's own change (pfsync, ifdown, send errors); the new value."""
        with fakestate.locked(self.path) as state:
            return fakestate.demotion_adjust(state, delta, group)

    def sysctl(self, *args: str) -> tuple[int, str, str]:
        return self._run("sysctl", args)

    def ifconfig(self, *args: str) -> tuple[int, str, str]:
        return self._run("ifconfig", args)

    def set_vhid(self, vhid: int, **changes: Any) -> None:
        with fakestate.locked(self.path) as state:
            for interface in state["interfaces"]:
                for entry in interface.get("carp", []):
                    if entry["vhid"] == vhid:
                        entry.update(changes)
                        return
        raise KeyError(vhid)

    def step_clock(self, seconds: int) -> None:
        """The wall clock is stepped (NTP): the BSDs move kern.boottime with it."""
        with fakestate.locked(self.path) as state:
            state["boottime"] += seconds

    def reboot(self, *, demotion: int = 0) -> None:
        """A new boot, now: every demotion back to ``demotion``."""
        with fakestate.locked(self.path) as state:
            state["boottime"] = int(time.time())
            if state["os"] == "freebsd":
                state["sysctl"]["net.inet.carp.demotion"] = demotion
            else:
                state["groups"] = {name: 0 for name in state["groups"]}
                state["groups"]["carp"] = demotion

    def _run(self, program: str, args: Sequence[str]) -> tuple[int, str, str]:
        return run_in_process(self.path, [program, *args])


class InProcessRunner:
    """A ``Runner`` that calls the fake programs in this process."""

    PROGRAMS: ClassVar[dict[str, Any]] = {"sysctl": fake_sysctl.run, "ifconfig": fake_ifconfig.run}

    def __init__(self, path: Path) -> None:
        self.path = path

    def __call__(self, argv: Sequence[str]) -> str:
        code, out, err = run_in_process(self.path, [Path(argv[0]).name, *argv[1:]])
        return check_result(argv, code, out, err)


def run_in_process(path: Path, argv: list[str]) -> tuple[int, str, str]:
    """(status, stdout, stderr) of a fake program called in this process."""
    out, err = io.StringIO(), io.StringIO()
    with fakestate.locked(path, argv) as state:
        code = InProcessRunner.PROGRAMS[argv[0]](argv[1:], state, out, err)
    return code, out.getvalue(), err.getvalue()
