"""carpctl, ucarp and keepalived, configured equivalently on a lab node.

Every daemon advertises every second; node1 is the preferred master and
node2 the backup whose master-down wait is ``3 + 100/256 s = 3.390625 s``:

* carpctl and ucarp: advbase 1, advskew 0 (node1) / 100 (node2); the
  backup waits ``3·advbase + advskew/256`` (FreeBSD's formula, ucarp's too).
* keepalived (VRRPv2, ``advert_int 1``): priority 250 (node1) / 156 (node2);
  the backup waits ``3·advert_int + (256 - priority)/256`` =
  ``3 + 100/256`` as well (node1's own wait: ``3 + 6/256 = 3.0234 s``).

With several vhids, vhid 1 keeps the lab's address 198.51.100.100/24 and
vhid n > 1 gets 203.0.113.(n - 1)/24. Every process a daemon needs is started
through the lab (so the lab's teardown stops it, by PID).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import time
from dataclasses import dataclass
from ipaddress import ip_interface
from pathlib import Path

import psutil

from carpctl.daemon import config as carpctl_config
from carpctl.lab import Cluster, FailMode, LabError, check_address
from carpctl.lab.topology import INTERFACE, VIP4, carpctl_command

NODES = ("node1", "node2")
ADVBASE = 1
SKEW = {"node1": 0, "node2": 100}
PRIORITY = {"node1": 250, "node2": 156}
MASTER_DOWN = 3 * ADVBASE + SKEW["node2"] / 256  # the backup's wait, all three daemons
PERIOD = ADVBASE + SKEW["node1"] / 256  # the master's advertisement period, all three


@dataclass(frozen=True)
class Vhid:
    number: int
    address: str  # with its prefix length

    @property
    def ip(self) -> str:
        return str(ip_interface(self.address).ip)


def vhid_plan(count: int) -> list[Vhid]:
    """``count`` vhids (1..255), each with its own lab address."""
    if not 1 <= count <= 255:
        raise ValueError(f"1 to 255 vhids, not {count}")
    plan = [Vhid(1, VIP4)] + [Vhid(n, f"203.0.113.{n - 1}/24") for n in range(2, count + 1)]
    for vhid in plan:
        check_address(vhid.address)
    return plan


def _q(value: object) -> str:
    return json.dumps(str(value))  # a TOML basic string is a JSON string


class Daemon:
    """One implementation: how to start it on a node, fail it and bring it back."""

    name = ""

    def argvs(self, lab: Cluster, node: str, vhids: list[Vhid], preempt: bool) -> list[list[str]]:
        """The argv of each process the node runs for ``vhids``."""
        raise NotImplementedError

    def start(self, lab: Cluster, node: str, vhids: list[Vhid], preempt: bool) -> None:
        argvs = self.argvs(lab, node, vhids, preempt)
        if len(argvs) == 1:
            lab.start(node, argvs[0])  # the node's daemon: lab.fail/recover act on it
        else:
            for vhid, argv in zip(vhids, argvs, strict=True):
                lab.spawn(node, argv, f"{node}_v{vhid.number}")

    def processes(self, lab: Cluster, node: str) -> list[psutil.Process]:
        """The node's daemon processes (the lab's records, and their children)."""
        keys = [k for k in lab.state.processes if k == node or k.startswith(f"{node}_v")]
        found: list[psutil.Process] = []
        for key in keys:
            ref = lab.process(key)
            if ref is None or not ref.alive():
                continue
            with contextlib.suppress(psutil.Error):
                process = psutil.Process(ref.pid)
                found += [process, *process.children(recursive=True)]
        return found

    def fail(self, lab: Cluster, node: str, how: FailMode) -> float:
        return lab.fail(node, how)

    def recover(self, lab: Cluster, node: str) -> None:
        lab.recover(node)

    def version(self) -> str:
        raise NotImplementedError


class Carpctl(Daemon):
    name = "carpctl"

    def argvs(self, lab: Cluster, node: str, vhids: list[Vhid], preempt: bool) -> list[list[str]]:
        directory = Path(lab.host(node).config).parent
        lines = [
            "# Written by bench/: the lab's node config with more vhids.",
            "[carpctl]",
            'backend = "embedded"',
            f"control_socket = {_q(directory / 'carpctl.sock')}",
            f"state_dir = {_q(directory / 'state')}",
            'log_format = "json"',
            "",
            "[carp]",
            f"preempt = {'true' if preempt else 'false'}",
            "log = 2",
            "",
        ]
        for vhid in vhids:
            lines += [
                "[[vhid]]",
                f"vhid = {vhid.number}",
                f"interface = {_q(INTERFACE)}",
                f"advbase = {ADVBASE}",
                f"advskew = {SKEW[node]}",
                f"password_file = {_q(lab.state.password_file)}",
                f"addresses = [{_q(vhid.address)}]",
                "",
            ]
        path = directory / f"bench-{len(vhids)}.toml"
        path.write_text("\n".join(lines))
        carpctl_config.load(path)  # refused here rather than by the daemon
        return [[*carpctl_command(), "run", "-c", str(path)]]

    def version(self) -> str:
        from importlib.metadata import version

        return version("carpctl")


UCARP_SCRIPT = """#!/bin/sh
# Written by bench/: ucarp's {verb} script (ucarp passes: interface, address, prefix).
case "$1" in lab*) ;; *) exit 1 ;; esac
case "$2" in 198.51.100.*|203.0.113.*) ;; *) exit 1 ;; esac
exec ip address {verb} "$2/$3" dev "$1"
"""


class Ucarp(Daemon):
    """Debian's ucarp: one process per vhid; scripts add and remove the address."""

    name = "ucarp"

    def argvs(self, lab: Cluster, node: str, vhids: list[Vhid], preempt: bool) -> list[list[str]]:
        host = lab.host(node)
        directory = Path(host.config).parent
        scripts = {}
        for verb in ("add", "del"):
            script = directory / f"ucarp-{verb}.sh"
            script.write_text(UCARP_SCRIPT.format(verb=verb))
            script.chmod(0o755)
            scripts[verb] = str(script)
        real = str(ip_interface(host.addresses[0]).ip)
        binary = shutil.which("ucarp") or "ucarp"
        argvs = []
        for vhid in vhids:
            prefix = str(ip_interface(vhid.address).network.prefixlen)
            argv = [
                binary, "-i", INTERFACE, "-s", real, "-v", str(vhid.number),
                "-o", lab.state.password_file, "-a", vhid.ip,
                "-b", str(ADVBASE), "-k", str(SKEW[node]),
                "-u", scripts["add"], "-d", scripts["del"], "-x", prefix,
                "-n", "-z", "-f", "none",
            ]  # fmt: skip
            argvs.append(argv + (["-P"] if preempt else []))
        return argvs

    def version(self) -> str:
        return _debian_version("ucarp")


class Keepalived(Daemon):
    """Debian's keepalived, VRRP only: a parent process and its VRRP child."""

    name = "keepalived"

    def argvs(self, lab: Cluster, node: str, vhids: list[Vhid], preempt: bool) -> list[list[str]]:
        directory = Path(lab.host(node).config).parent
        lines = ["# Written by bench/.", "global_defs {", f"  router_id {node}", "}"]
        for vhid in vhids:
            lines += [
                f"vrrp_instance v{vhid.number} {{",
                "  state BACKUP",
                f"  interface {INTERFACE}",
                f"  virtual_router_id {vhid.number}",
                f"  priority {PRIORITY[node]}",
                f"  advert_int {ADVBASE}",
                *([] if preempt else ["  nopreempt"]),
                "  virtual_ipaddress {",
                f"    {check_address(vhid.address)} dev {INTERFACE}",
                "  }",
                "}",
            ]
        path = directory / f"keepalived-{len(vhids)}.conf"
        path.write_text("\n".join(lines) + "\n")
        argv = [
            shutil.which("keepalived") or "keepalived", "--dont-fork", "--log-console",
            "--log-detail", "--vrrp", "--use-file", str(path),
            "--pid", str(directory / "keepalived.pid"),
            "--vrrp_pid", str(directory / "keepalived-vrrp.pid"),
            "--checkers_pid", str(directory / "keepalived-checkers.pid"),
        ]  # fmt: skip
        return [argv]

    def _children(self, lab: Cluster, node: str) -> list[psutil.Process]:
        ref = lab.process(node)
        if ref is None or not ref.alive():
            raise LabError(f"keepalived is not running on {node}")
        return list(psutil.Process(ref.pid).children(recursive=True))

    def fail(self, lab: Cluster, node: str, how: FailMode) -> float:
        """The VRRP child is what advertises: crash or stop it, not only the parent."""
        if how is FailMode.KILL:
            ref = lab.process(node)
            if ref is not None:
                ref.signal(signal.SIGSTOP)  # no respawn, no SIGTERM to the child on its death
            children = self._children(lab, node)
            for child in children:
                child.kill()
            for child in children:  # a zombie until the parent dies: not waitable here
                _wait_dead(child)
            return lab.fail(node, how)
        if how is FailMode.STOP:
            children = self._children(lab, node)
            for child in children:
                child.suspend()
            instant = time.monotonic()
            lab.fail(node, how)
            return instant
        return lab.fail(node, how)  # TERM: the parent stops the child, which sends priority 0

    def recover(self, lab: Cluster, node: str) -> None:
        ref = lab.process(node)
        if ref is None or not ref.alive():
            # A rebooted host has a fresh /run: keepalived refuses to start while its
            # pid files name a process that still exists (a zombie nobody reaped).
            for pid_file in Path(lab.host(node).config).parent.glob("keepalived*.pid"):
                pid_file.unlink()
        with contextlib.suppress(LabError, psutil.Error):
            for child in self._children(lab, node):
                if child.status() == psutil.STATUS_STOPPED:
                    child.resume()
        lab.recover(node)

    def version(self) -> str:
        return _debian_version("keepalived")


def _wait_dead(process: psutil.Process, timeout: float = 2.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if process.status() == psutil.STATUS_ZOMBIE:
                return
        except psutil.NoSuchProcess:
            return
        time.sleep(0.002)


def _debian_version(package: str) -> str:
    import subprocess

    done = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Version}", package],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip() or "not installed"


DAEMONS: dict[str, Daemon] = {d.name: d for d in (Carpctl(), Ucarp(), Keepalived())}
