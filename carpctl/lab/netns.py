"""Network namespace primitives for the lab, with the safety rules in code.

Rules enforced here rather than trusted to callers:

* everything happens inside namespaces this object created or adopted, all
  named with its prefix; veth pairs are created *inside* a namespace with
  ``ip -n``, so the root namespace never sees them;
* interfaces are named ``lab*`` (``lab0``, ``labbr0`` ...), never ``eth0``,
  so a command that misses its namespace fails instead of touching a real
  interface;
* addresses only from 198.51.100.0/24, 203.0.113.0/24 and 2001:db8::/32
  (never 192.0.2.0/24: the machine's own network uses it);
* every command is an argv list; nothing goes through a shell;
* processes are stopped by PID, and only those started through ``spawn``.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from ipaddress import IPv4Interface, IPv6Interface
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from carpctl.lab.process import ProcessRef, in_namespace, terminate_all

Output = int | IO[bytes] | None

ALLOWED_NETWORKS = tuple(
    ipaddress.ip_network(net) for net in ("198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32")
)
ALLOWED_TEXT = "198.51.100.0/24, 203.0.113.0/24 or 2001:db8::/32"
# The root namespace of the machines running this lab lives in 192.0.2.0/24.
HOST_NETWORK = ipaddress.ip_network("192.0.2.0/24")

NETNS_DIR = Path("/run/netns")
INTERFACE = re.compile(r"lab[a-z0-9]{0,12}")
NAMESPACE = re.compile(r"[A-Za-z0-9_.-]{1,200}")
COMMAND_TIMEOUT = 10.0


class LabError(Exception):
    """A lab operation failed; the message is one sentence for a person."""


class UnsafeOperation(LabError, ValueError):
    """Refused by one of the lab's safety rules."""


def check_address(cidr: str) -> IPv4Interface | IPv6Interface:
    """``cidr`` as an interface address, if its whole network is a lab range.

    Raises ``UnsafeOperation`` for anything else (192.0.2.0/24, 10.0.0.0/8 ...).
    """
    try:
        address = ipaddress.ip_interface(cidr)
    except ValueError:
        raise UnsafeOperation(f"{cidr!r} is not an address with a prefix length") from None
    network = address.network
    if network.version == 4 and network.overlaps(HOST_NETWORK):
        raise UnsafeOperation(
            f"refusing {cidr}: 192.0.2.0/24 is the machine's own network; "
            f"lab addresses come from {ALLOWED_TEXT}"
        )
    first, last = network.network_address, network.broadcast_address
    if not any(first in net and last in net for net in ALLOWED_NETWORKS):
        raise UnsafeOperation(f"refusing {cidr}: lab addresses come from {ALLOWED_TEXT} only")
    return address


def check_interface(name: str) -> str:
    """``name`` if it is a lab interface name (``lab`` + up to 12 of [a-z0-9])."""
    if not INTERFACE.fullmatch(name):
        raise UnsafeOperation(f"refusing interface {name!r}: lab interfaces are named lab*")
    return name


def unavailable_reason() -> str | None:
    """Why namespaces cannot be made here, or ``None`` when they can."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "the ip command (iproute2) is not installed"
    try:
        subprocess.run(["ip", "netns", "list"], check=True, capture_output=True, timeout=10)
    except (OSError, subprocess.SubprocessError) as error:
        return f"ip netns is unavailable: {error}"
    return None


def wait_for(condition: Callable[[], bool], timeout: float, interval: float = 0.1) -> bool:
    """Poll ``condition`` until it is true or ``timeout`` seconds have passed."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def _run(argv: Sequence[str], timeout: float = COMMAND_TIMEOUT) -> str:
    """Run ``argv`` (no shell); its stdout, or ``LabError`` naming the command."""
    try:
        done = subprocess.run(
            list(argv), check=False, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        raise LabError(f"{' '.join(argv)} did not finish within {timeout:g} s") from None
    except OSError as error:
        raise LabError(f"cannot run {argv[0]}: {error.strerror or error}") from None
    if done.returncode != 0:
        detail = done.stderr.strip().splitlines()[-1:] or [f"exit {done.returncode}"]
        raise LabError(f"{' '.join(argv)} failed: {detail[0]}")
    return done.stdout


def list_namespaces() -> list[str]:
    """Names of every named network namespace (``ip netns list``)."""
    out = _run(["ip", "-j", "netns", "list"]).strip()
    if not out:
        return []
    entries: list[dict[str, Any]] = json.loads(out)
    return [str(e["name"]) for e in entries]


def namespace_pids(namespace: str) -> list[int]:
    """PIDs of the processes whose network namespace is ``namespace``."""
    if not (NETNS_DIR / namespace).exists():
        return []
    try:
        out = _run(["ip", "netns", "pids", namespace])
    except LabError:
        return []
    return [int(word) for word in out.split() if word.isdigit()]


def stop_processes_in(namespace: str, timeout: float = 5.0) -> list[int]:
    """Stop, by PID, every process living in ``namespace``; the PIDs it found."""
    spared = {os.getpid(), os.getppid()}  # a test that setns'd its own thread in there
    refs = [
        ref
        for pid in namespace_pids(namespace)
        if pid not in spared
        and in_namespace(pid, NETNS_DIR / namespace)
        and (ref := ProcessRef.of(pid)) is not None
    ]
    terminate_all(refs, timeout)
    return [ref.pid for ref in refs]


def delete_namespace(namespace: str) -> bool:
    """``ip netns del``; True when it existed and is gone."""
    if not NAMESPACE.fullmatch(namespace) or not (NETNS_DIR / namespace).exists():
        return False
    try:
        _run(["ip", "netns", "del", namespace])
    except LabError:
        return False
    return True


class Namespaces:
    """Namespaces sharing a name prefix, their links, and processes started in them.

    ``namespace()`` creates one; ``adopt()`` takes over one recorded earlier
    (a lab re-attached from its state file). Everything else refuses a
    namespace that is not ours. ``on_change`` is called after every change to
    the list of namespaces, *before* the namespace is created, so a state
    file can record it first and a crash never leaves an unrecorded one.
    """

    def __init__(self, prefix: str, on_change: Callable[[], None] | None = None) -> None:
        if not NAMESPACE.fullmatch(prefix):
            raise UnsafeOperation(f"refusing namespace prefix {prefix!r}")
        self.prefix = prefix
        self.namespaces: list[str] = []
        self.processes: list[subprocess.Popen[bytes]] = []
        self._on_change = on_change

    def __enter__(self) -> Namespaces:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- namespaces ---------------------------------------------------------

    def namespace(self, name: str) -> str:
        """Create namespace ``<prefix><name>`` with its loopback up; return its name."""
        full = self.prefix + name
        if not NAMESPACE.fullmatch(full):
            raise UnsafeOperation(f"refusing namespace name {full!r}")
        if (NETNS_DIR / full).exists():
            raise LabError(f"namespace {full} already exists (a lab left behind?)")
        self.namespaces.append(full)  # recorded first: close() deletes even a half-made one
        if self._on_change is not None:
            self._on_change()
        _run(["ip", "netns", "add", full])
        self.ip(full, "link", "set", "lo", "up")
        return full

    def adopt(self, full: str) -> None:
        """Treat an existing namespace with our prefix as ours (re-attaching a lab)."""
        if not full.startswith(self.prefix) or not NAMESPACE.fullmatch(full):
            raise UnsafeOperation(f"namespace {full} does not belong to {self.prefix}*")
        if full not in self.namespaces:
            self.namespaces.append(full)

    def own(self, namespace: str) -> str:
        if namespace not in self.namespaces:
            raise UnsafeOperation(f"namespace {namespace} was not made by this lab")
        return namespace

    def ip(self, namespace: str, *args: str) -> str:
        """``ip -n NAMESPACE ARGS...`` in one of our namespaces; its stdout."""
        return _run(["ip", "-n", self.own(namespace), *args])

    def ip_json(self, namespace: str, *args: str) -> list[dict[str, Any]]:
        """``ip -j -n NAMESPACE ARGS...`` parsed."""
        out = _run(["ip", "-j", "-n", self.own(namespace), *args]).strip()
        result: list[dict[str, Any]] = json.loads(out) if out else []
        return result

    def run(
        self, namespace: str, argv: Sequence[str], timeout: float = COMMAND_TIMEOUT
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` inside a namespace to completion (exit status not checked)."""
        command = ["ip", "netns", "exec", self.own(namespace), *argv]
        try:
            return subprocess.run(
                command, check=False, capture_output=True, text=True, timeout=timeout
            )
        except subprocess.TimeoutExpired:
            raise LabError(f"{' '.join(command)} did not finish within {timeout:g} s") from None

    def sysctl(self, namespace: str, key: str, value: str) -> None:
        """Set a ``net.*`` sysctl inside one of our namespaces."""
        if not key.startswith("net."):
            raise UnsafeOperation(f"refusing sysctl {key}: only net.* inside a lab namespace")
        done = self.run(namespace, ["sysctl", "-q", "-w", f"{key}={value}"])
        if done.returncode != 0:
            raise LabError(f"sysctl {key}={value} in {namespace} failed: {done.stderr.strip()}")

    # -- links and addresses -----------------------------------------------

    def bridge(self, namespace: str, name: str = "labbr0") -> None:
        """A bridge that forwards at once (no STP delay) and floods all multicast."""
        self.ip(
            namespace, "link", "add", check_interface(name), "type", "bridge",
            "forward_delay", "0", "stp_state", "0", "mcast_snooping", "0",
        )  # fmt: skip
        self.ip(namespace, "link", "set", name, "up")

    def attach(self, namespace: str, port: str, bridge: str = "labbr0") -> None:
        """Make ``port`` a port of ``bridge`` (both in ``namespace``)."""
        self.ip(namespace, "link", "set", check_interface(port), "master", check_interface(bridge))

    def veth(self, ns_a: str, ns_b: str, name_a: str = "lab0", name_b: str = "lab0") -> None:
        """A veth pair between two of our namespaces, created inside them, both up."""
        self.own(ns_a)
        self.own(ns_b)
        check_interface(name_a)
        check_interface(name_b)
        peer = ("peer", "name", name_b, "netns", ns_b)
        self.ip(ns_a, "link", "add", name_a, "type", "veth", *peer)
        self.ip(ns_a, "link", "set", name_a, "up")
        self.ip(ns_b, "link", "set", name_b, "up")

    def address(
        self, namespace: str, interface: str, cidr: str, replace: bool = False, nodad: bool = False
    ) -> None:
        """Add (or with ``replace`` ensure) ``cidr`` on a lab interface of ours.

        ``nodad``: an IPv6 address usable at once (no duplicate address detection).
        """
        address = check_address(cidr)
        extra = ("nodad",) if nodad and address.version == 6 else ()
        verb = "replace" if replace else "add"
        self.ip(namespace, "address", verb, str(address), "dev", check_interface(interface), *extra)

    def flush_addresses(self, namespace: str, interface: str) -> None:
        """Remove every global address from a lab interface (a rebooted host's state)."""
        self.ip(namespace, "address", "flush", "dev", check_interface(interface), "scope", "global")

    def set_link(self, namespace: str, interface: str, up: bool) -> None:
        self.ip(namespace, "link", "set", check_interface(interface), "up" if up else "down")

    def link(self, namespace: str, interface: str) -> dict[str, Any]:
        """``ip -j link show`` of one lab interface."""
        entries = self.ip_json(namespace, "link", "show", check_interface(interface))
        return entries[0] if entries else {}

    def mac(self, namespace: str, interface: str) -> str:
        return str(self.link(namespace, interface).get("address", ""))

    def link_up(self, namespace: str, interface: str) -> bool:
        return "UP" in self.link(namespace, interface).get("flags", [])

    def addresses(self, namespace: str, interface: str) -> list[str]:
        """Global addresses on a lab interface, as ``ADDRESS/PREFIX`` strings."""
        entries = self.ip_json(namespace, "address", "show", "dev", check_interface(interface))
        return [
            f"{info['local']}/{info['prefixlen']}"
            for entry in entries
            for info in entry.get("addr_info", [])
            if info.get("scope") == "global"
        ]

    # -- processes ----------------------------------------------------------

    def spawn(
        self,
        namespace: str,
        argv: Sequence[str],
        *,
        stdout: Output = None,
        stderr: Output = None,
        stdin: Output = None,
        detach: bool = False,
        env: dict[str, str] | None = None,
    ) -> subprocess.Popen[bytes]:
        """Start ``argv`` inside ``namespace`` (``ip netns exec`` execs it: same PID).

        ``detach`` puts it in its own session, so it outlives this process and
        a Ctrl-C in the terminal does not reach it.
        """
        process = subprocess.Popen(
            ["ip", "netns", "exec", self.own(namespace), *argv],
            stdin=stdin,
            stdout=stdout,
            stderr=stderr,
            start_new_session=detach,
            env=env,
        )
        self.processes.append(process)
        return process

    @staticmethod
    def stop(process: subprocess.Popen[bytes], timeout: float = 5.0) -> None:
        """SIGTERM the process by its PID, SIGKILL it if it does not exit in time."""
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout)

    def reap(self) -> None:
        """Collect exited children (so they do not linger as zombies)."""
        for process in self.processes:
            process.poll()

    def close(self) -> None:
        """Stop our processes, then delete our namespaces (and so their veths)."""
        for process in reversed(self.processes):
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                self.stop(process)
        self.processes.clear()
        for namespace in reversed(self.namespaces):
            # Anything else still in there (started by hand, or by an earlier
            # command) would keep the namespace and its links alive.
            with contextlib.suppress(LabError):
                stop_processes_in(namespace)
            delete_namespace(namespace)
        self.namespaces.clear()
        if self._on_change is not None:
            self._on_change()
