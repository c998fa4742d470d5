"""A CARP cluster on one machine: nodes, a client and a switch, as namespaces.

::

        node1 (198.51.100.1)   node2 (.2)   [node3 (.3)]   client (.200)
            lab0                 lab0          lab0            lab0
             |                    |             |               |
            lab1 ------------- labbr0 ------- lab3 ----------- labc
                        switch namespace (a Linux bridge)

Every node runs ``carpctl run`` for vhid 1 (advbase 1, advskew 0/100/200)
with the virtual address 198.51.100.100/24 (and 2001:db8::100/64 with
IPv6). The lab's files live in ``/run/carpctl-lab/<name>/``; ``Cluster.up``
builds a lab, ``Cluster.attach`` re-opens one built by an earlier command,
``Cluster.close`` (or ``teardown(name)``) removes it.
"""

from __future__ import annotations

import contextlib
import importlib
import ipaddress
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field, replace
from enum import StrEnum
from importlib.util import find_spec
from pathlib import Path
from types import TracebackType
from typing import Any

from carpctl.lab import logs
from carpctl.lab.netns import LabError, Namespaces, UnsafeOperation, wait_for
from carpctl.lab.nodeconfig import NodeConfig
from carpctl.lab.probe import probe_argv
from carpctl.lab.process import Liveness, ProcessRef
from carpctl.lab.state import (
    DEFAULT_ROOT,
    HostState,
    LabState,
    ProcessState,
    StateDir,
    prefix_of,
    write_secret,
)
from carpctl.lab.teardown import Teardown, teardown

INTERFACE = "lab0"
BRIDGE = "labbr0"
SWITCH = "switch"
CLIENT = "client"
VIP4 = "198.51.100.100/24"
VIP6 = "2001:db8::100/64"
CLIENT4 = "198.51.100.200/24"
CLIENT6 = "2001:db8::200/64"
SKEWS = (0, 100, 200, 210, 220, 230, 240, 250)
MAX_NODES = len(SKEWS)


def node_name(index: int) -> str:
    return f"node{index}"


def node_addresses(index: int, ipv6: bool) -> list[str]:
    return [f"198.51.100.{index}/24"] + ([f"2001:db8::{index}/64"] if ipv6 else [])


def virtual_mac(vhid: int) -> str:
    return f"00:00:5e:00:01:{vhid:02x}"


def carpctl_command() -> list[str]:
    """How to start carpctl: ``python -m carpctl`` (``-m carpctl.cli`` until that exists)."""
    module = "carpctl" if find_spec("carpctl.__main__") is not None else "carpctl.cli"
    return [sys.executable, "-m", module]


def run_available() -> bool:
    """Whether this carpctl has the ``run`` command the nodes need."""
    # Imported when asked: carpctl.cli.main imports the lab command, which imports this.
    commands = importlib.import_module("carpctl.cli.main").COMMANDS
    return any(command.NAME == "run" for command in commands)


class FailMode(StrEnum):
    KILL = "kill"  # SIGKILL + link down: a crash
    STOP = "stop"  # SIGSTOP: a hung process (the kernel still answers ARP)
    TERM = "term"  # SIGTERM: a graceful stop (bow-out advertisement)
    LINKDOWN = "linkdown"  # ip link set lab0 down in the node


@dataclass(frozen=True)
class LabOptions:
    name: str = "lab"
    nodes: int = 2
    ipv6: bool = False
    preempt: bool = False
    vhid: int = 1
    advbase: int = 1
    start: bool = True  # start carpctl run on every node
    root: Path = DEFAULT_ROOT


@dataclass(frozen=True)
class ClientView:
    """What the client sees for one virtual address."""

    vip: str
    reachable: bool
    mac: str  # "" when the client has no neighbour entry
    neighbour_state: str
    owner: str  # the node that MAC belongs to, "virtual MAC", or ""


@dataclass(frozen=True)
class NodeStatus:
    name: str
    namespace: str
    addresses: list[str]
    mac: str
    advskew: int
    process: str  # running | stopped | gone | none
    pid: int | None
    link_up: bool
    role: str  # the logged role while carpctl runs; "" if none yet or not running
    logged_role: str  # the log's last "state changed", even of a dead process
    reason: str
    holds_vip: bool
    failure: str


@dataclass(frozen=True)
class LabStatus:
    name: str
    vips: list[str]
    nodes: list[NodeStatus]
    client: list[ClientView] = field(default_factory=list)

    @property
    def holders(self) -> list[str]:
        return [n.name for n in self.nodes if n.holds_vip]


class Cluster:
    """A lab: build it with ``up``, re-open it with ``attach``, remove it with ``close``."""

    def __init__(self, state: LabState, store: StateDir) -> None:
        self.state = state
        self.store = store
        self.net = Namespaces(state.prefix, on_change=self._save)
        for namespace in state.namespaces:
            self.net.adopt(namespace)
        self._children: dict[str, subprocess.Popen[bytes]] = {}

    # -- life cycle ---------------------------------------------------------

    @classmethod
    def up(cls, options: LabOptions | None = None, **overrides: Any) -> Cluster:
        """Build a lab (and start carpctl on its nodes); on any failure remove it again."""
        opts = replace(options or LabOptions(), **overrides)
        if not 1 <= opts.nodes <= MAX_NODES:
            raise UnsafeOperation(f"a lab has 1 to {MAX_NODES} nodes, not {opts.nodes}")
        store = StateDir(opts.name, opts.root)
        store.create()
        state = LabState(
            name=opts.name,
            prefix=prefix_of(opts.name),
            nodes=opts.nodes,
            ipv6=opts.ipv6,
            preempt=opts.preempt,
            vhid=opts.vhid,
            advbase=opts.advbase,
            vips=[VIP4, VIP6] if opts.ipv6 else [VIP4],
        )
        owner = ProcessRef.of(os.getpid())
        if owner is not None:
            state.owner_pid, state.owner_starttime = owner.pid, owner.starttime
        cluster = cls(state, store)
        try:
            with store.lock():
                cluster._save()
                cluster._build()
            if opts.start:
                cluster.start_all()
        except BaseException:
            cluster.close()
            raise
        return cluster

    @classmethod
    def attach(cls, name: str, root: Path = DEFAULT_ROOT) -> Cluster:
        """The lab ``name`` built by an earlier command."""
        store = StateDir(name, root)
        state = store.load() if store.exists() else None
        if state is None:
            raise LabError(f"there is no lab named {name} (nothing in {store.path})")
        return cls(state, store)

    def owner_alive(self) -> bool:
        """Whether the process that built this lab still runs."""
        owner = ProcessRef(self.state.owner_pid, self.state.owner_starttime)
        return bool(self.state.owner_pid) and owner.alive()

    def close(self) -> Teardown:
        """Stop every process of the lab, delete its namespaces and its files."""
        for process in self._children.values():
            with contextlib.suppress(OSError):
                process.poll()
        report = teardown(self.state.name, self.store.root)
        for process in self._children.values():
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                process.wait(1)  # reap our own children
        self._children.clear()
        self.net.namespaces.clear()
        return report

    def __enter__(self) -> Cluster:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _save(self) -> None:
        self.state.namespaces = list(self.net.namespaces)
        if self.store.exists():
            self.store.save(self.state)

    # -- building -----------------------------------------------------------

    def _build(self) -> None:
        net, state = self.net, self.state
        switch = net.namespace(SWITCH)
        net.bridge(switch, BRIDGE)
        secret = secrets.token_urlsafe(12)  # 16 characters: within CARP's 19-byte key
        password_file = self.store.path / "password"
        write_secret(password_file, secret)
        state.password_file = str(password_file)
        hosts = [(node_name(i), f"lab{i}", node_addresses(i, state.ipv6)) for i in self._indexes]
        hosts.append((CLIENT, "labc", [CLIENT4] + ([CLIENT6] if state.ipv6 else [])))
        for name, port, addresses in hosts:
            namespace = net.namespace(name)
            net.veth(switch, namespace, port, INTERFACE)
            net.attach(switch, port, BRIDGE)
            for address in addresses:
                net.address(namespace, INTERFACE, address, nodad=True)
            host = HostState(name, namespace, addresses, mac=net.mac(namespace, INTERFACE))
            state.hosts[name] = host
            if name != CLIENT:
                self._write_config(host)
            self._save()

    @property
    def _indexes(self) -> range:
        return range(1, self.state.nodes + 1)

    def _write_config(self, host: HostState) -> None:
        directory = self.store.host_dir(host.name)
        (directory / "state").mkdir(mode=0o700, exist_ok=True)
        host.advskew = SKEWS[int(host.name.removeprefix("node")) - 1]
        config = NodeConfig(
            vhid=self.state.vhid,
            interface=INTERFACE,
            advbase=self.state.advbase,
            advskew=host.advskew,
            preempt=self.state.preempt,
            password_file=Path(self.state.password_file),
            addresses=tuple(self.state.vips),
            state_dir=directory / "state",
            control_socket=directory / "carpctl.sock",
        )
        host.config = str(directory / "carpctl.toml")
        host.log = str(directory / "carpctl.log")
        config.write(Path(host.config))

    # -- names --------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.state.name

    @property
    def nodes(self) -> list[str]:
        return [node_name(i) for i in self._indexes]

    def host(self, name: str) -> HostState:
        try:
            return self.state.hosts[name]
        except KeyError:
            known = ", ".join([*self.nodes, CLIENT])
            raise LabError(f"lab {self.name} has no host {name!r} (it has {known})") from None

    def namespace(self, name: str) -> str:
        """The namespace of ``switch``, ``client`` or a node."""
        if name == SWITCH:
            return self.state.prefix + SWITCH
        return self.host(name).namespace

    def _node(self, name: str) -> HostState:
        if name == CLIENT or name not in self.state.hosts:
            raise LabError(f"lab {self.name} has no node {name!r} (it has {', '.join(self.nodes)})")
        return self.state.hosts[name]

    def log(self, node: str) -> Path:
        return Path(self._node(node).log)

    # -- processes ----------------------------------------------------------

    def spawn(
        self, host: str, argv: list[str], key: str, log: Path | None = None
    ) -> subprocess.Popen[bytes]:
        """Start any program in a host's namespace, recorded (by PID) for teardown.

        Output is appended to ``log`` (default: ``<state dir>/<host>/<key>.log``).
        """
        state = self.host(host)
        log = log or self.store.host_dir(host) / f"{key}.log"
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        with log.open("ab") as out:
            process = self.net.spawn(
                state.namespace,
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                detach=True,
                env=env,
            )
        ref = ProcessRef.of(process.pid)
        self.state.processes[key] = ProcessState(
            pid=process.pid,
            starttime=ref.starttime if ref else 0,
            namespace=state.namespace,
            argv=list(argv),
            log=str(log),
        )
        self._children[key] = process
        self._save()
        return process

    def process(self, key: str) -> ProcessRef | None:
        record = self.state.processes.get(key)
        return ProcessRef(record.pid, record.starttime) if record and record.starttime else None

    def liveness(self, key: str) -> Liveness | None:
        """running / stopped / gone, or None if the lab never started it."""
        self._reap()
        ref = self.process(key)
        return ref.liveness() if ref else None

    def _reap(self) -> None:
        for process in self._children.values():
            process.poll()

    def start(self, node: str, argv: list[str] | None = None) -> None:
        """Start the node's daemon (if not running): ``carpctl run -c <its config>``.

        ``argv`` replaces the daemon for this node from now on (``recover``
        restarts it too): benchmarks run ucarp or keepalived on the same
        topology this way. Its output goes to the node's log.
        """
        host = self._node(node)
        if argv is not None:
            host.command = list(argv)
        if self.liveness(node) in (Liveness.RUNNING, Liveness.STOPPED):
            return
        argv = host.command or [*carpctl_command(), "run", "-c", host.config]
        logs.write_marker(Path(host.log), argv)
        self.spawn(node, argv, node, Path(host.log))

    def start_all(self) -> None:
        for node in self.nodes:  # node1 first: it should win the first election
            self.start(node)

    def signal(self, key: str, sig: int) -> bool:
        ref = self.process(key)
        sent = ref.signal(sig) if ref else False
        self._reap()
        return sent

    # -- failures -----------------------------------------------------------

    def fail(self, node: str, how: FailMode | str) -> float:
        """Fail a node; returns the ``time.monotonic()`` instant the failure took effect.

        kill: carpctl gets SIGKILL, then the link goes down (the host is gone
        from the wire: no reply or advertisement leaves it after the instant
        returned, which is when the link went down). stop: SIGSTOP (the kernel still answers ARP and
        ping). term: the instant SIGTERM is sent (carpctl bows out, then
        exits). linkdown: lab0 down, carpctl keeps running.
        """
        how = FailMode(how)
        host = self._node(node)
        ref = self.process(node)
        if how in (FailMode.KILL, FailMode.LINKDOWN):
            if how is FailMode.KILL and ref is not None and ref.signal(signal.SIGKILL):
                ref.wait_gone(5)  # dead before it could notice the link going down
            self.net.set_link(host.namespace, INTERFACE, up=False)
            instant = time.monotonic()
        elif how is FailMode.STOP:
            if ref is None or not ref.signal(signal.SIGSTOP):
                raise LabError(f"carpctl is not running on {node}")
            instant = time.monotonic()
        else:
            if ref is None or not ref.alive():
                raise LabError(f"carpctl is not running on {node}")
            instant = time.monotonic()
            ref.terminate(timeout=10)
        self._reap()
        host.failure = how.value
        self._save()
        return instant

    def recover(self, node: str) -> list[str]:
        """Undo a failure as appropriate; the steps taken (for a person to read)."""
        host = self._node(node)
        steps: list[str] = []
        live = self.liveness(node)
        if live in (None, Liveness.GONE) and host.failure == FailMode.KILL:
            # A crashed host comes back rebooted: only its own addresses on lab0.
            self.net.flush_addresses(host.namespace, INTERFACE)
            steps.append("cleared lab0's addresses (a rebooted host)")
        if not self.net.link_up(host.namespace, INTERFACE):
            self.net.set_link(host.namespace, INTERFACE, up=True)
            steps.append("link up")
        for address in host.addresses:  # IPv6 addresses go away with the link
            self.net.address(host.namespace, INTERFACE, address, replace=True, nodad=True)
        if live is Liveness.STOPPED:
            self.signal(node, signal.SIGCONT)
            steps.append("SIGCONT")
        elif live in (None, Liveness.GONE):
            self.start(node)
            steps.append(f"started {'carpctl' if not host.command else host.command[0]}")
        host.failure = ""
        self._save()
        return steps

    # -- observation --------------------------------------------------------

    def exec(
        self, host: str, argv: list[str], timeout: float = 10.0
    ) -> subprocess.CompletedProcess[str]:
        """Run a command to completion inside a host's namespace."""
        return self.net.run(self.namespace(host), argv, timeout)

    def ping(self, source: str, target: str, timeout: float = 1.0) -> bool:
        """Whether ``source`` gets an echo reply from ``target`` (an address or a host)."""
        if target in self.state.hosts:
            target = self.state.hosts[target].addresses[0]
        address = str(ipaddress.ip_interface(target).ip)
        argv = probe_argv(address, "--once", "--interval", "0.1", "--timeout", f"{timeout:g}")
        return self.exec(source, argv, timeout=timeout + 10).returncode == 0

    def _has_vip(self, addresses: list[str]) -> bool:
        vips = {ipaddress.ip_interface(v).ip for v in self.state.vips}
        return any(ipaddress.ip_interface(a).ip in vips for a in addresses)

    def holders(self) -> list[str]:
        """The nodes whose lab0 carries a virtual address right now."""
        return [
            node
            for node in self.nodes
            if self._has_vip(self.net.addresses(self.host(node).namespace, INTERFACE))
        ]

    def role(self, node: str) -> str:
        """The node's role from its log ("" before the first state change)."""
        change = logs.last_role(self.log(node))
        return change.new if change else ""

    def roles(self) -> dict[str, str]:
        return {node: self.role(node) for node in self.nodes}

    def wait_role(self, node: str, role: str, timeout: float) -> bool:
        return wait_for(lambda: self.role(node) == role, timeout, 0.02)

    def owner_of(self, mac: str) -> str:
        """Which node a MAC address belongs to ("virtual MAC" for 00:00:5e:00:01:vhid)."""
        mac = mac.lower()
        if mac == virtual_mac(self.state.vhid):
            return "virtual MAC"
        for name, host in self.state.hosts.items():
            if host.mac.lower() == mac:
                return name
        return ""

    def client_view(self, vip: str | None = None, ping: bool = True) -> ClientView:
        """Ping a VIP from the client, then read which MAC the client resolved it to."""
        vip = vip or self.state.vips[0]
        address = str(ipaddress.ip_interface(vip).ip)
        reachable = self.ping(CLIENT, address) if ping else False
        entries = self.net.ip_json(
            self.namespace(CLIENT), "neigh", "show", "to", address, "dev", INTERFACE
        )
        mac = str(entries[0].get("lladdr", "")) if entries else ""
        state = "/".join(entries[0].get("state", [])) if entries else ""
        return ClientView(address, reachable, mac, state, self.owner_of(mac) if mac else "")

    def status(self, client: bool = True) -> LabStatus:
        nodes = []
        for node in self.nodes:
            host = self.host(node)
            live = self.liveness(node)
            change = logs.last_role(host.log)
            record = self.state.processes.get(node)
            nodes.append(
                NodeStatus(
                    name=node,
                    namespace=host.namespace,
                    addresses=host.addresses,
                    mac=host.mac,
                    advskew=host.advskew,
                    process=live.value if live else "none",
                    pid=record.pid if record else None,
                    link_up=self.net.link_up(host.namespace, INTERFACE),
                    role=change.new if change and live is not Liveness.GONE else "",
                    logged_role=change.new if change else "",
                    reason=change.reason if change else "",
                    holds_vip=self._has_vip(self.net.addresses(host.namespace, INTERFACE)),
                    failure=host.failure,
                )
            )
        views = [self.client_view(vip) for vip in self.state.vips] if client else []
        return LabStatus(self.name, list(self.state.vips), nodes, views)
