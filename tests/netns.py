"""Throwaway network namespaces joined by veth pairs, for tests (root only).

Safety rules, enforced here rather than trusted to each test:

* everything happens inside namespaces this ``Lab`` created (names start
  with ``cci-<pid>-``); veth pairs are created *inside* a namespace with
  ``ip -n``, so the root namespace never sees them;
* interfaces are named ``lab0``, ``lab1`` ... (never ``eth0``), so a command
  that misses its namespace fails instead of touching a real interface;
* addresses only from 198.51.100.0/24, 203.0.113.0/24 and 2001:db8::/32;
* processes are stopped by PID, and only those started through ``spawn``;
* ``close`` (also run by ``with``) stops the processes and deletes the
  namespaces, whatever state a failed test left them in.

A ``carpctl lab`` command will replace this module.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import IO

Output = int | IO[bytes] | None

ALLOWED_NETWORKS = tuple(
    ipaddress.ip_network(net) for net in ("198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32")
)


def unavailable_reason() -> str | None:
    """Why namespace tests cannot run here, or ``None`` when they can."""
    if os.geteuid() != 0:
        return "network namespace tests need root"
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


class Lab:
    """A set of namespaces and the processes started in them."""

    def __init__(self, tag: str = "") -> None:
        self.prefix = f"cci-{os.getpid()}-{tag}"
        self.namespaces: list[str] = []
        self.processes: list[subprocess.Popen[bytes]] = []

    def __enter__(self) -> Lab:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @staticmethod
    def _ip(*args: str) -> None:
        subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)

    def namespace(self, name: str) -> str:
        """Create namespace ``<prefix><name>`` with its loopback up; return its name."""
        full = self.prefix + name
        self.namespaces.append(full)  # recorded first: close() deletes even a half-made one
        self._ip("netns", "add", full)
        self._ip("-n", full, "link", "set", "lo", "up")
        return full

    def _own(self, namespace: str) -> None:
        if namespace not in self.namespaces:
            raise ValueError(f"namespace {namespace} was not made by this lab")

    def veth(self, ns_a: str, ns_b: str, name_a: str = "lab0", name_b: str = "lab0") -> None:
        """A veth pair between two of our namespaces, created inside them, both up."""
        self._own(ns_a)
        self._own(ns_b)
        for name in (name_a, name_b):
            if not name.startswith("lab"):
                raise ValueError(f"lab interfaces are named lab*, not {name}")
        peer = ("peer", "name", name_b, "netns", ns_b)
        self._ip("-n", ns_a, "link", "add", name_a, "type", "veth", *peer)
        self._ip("-n", ns_a, "link", "set", name_a, "up")
        self._ip("-n", ns_b, "link", "set", name_b, "up")

    def address(self, namespace: str, interface: str, cidr: str) -> None:
        """Add ``cidr`` (e.g. 198.51.100.1/24) to an interface of one of our namespaces."""
        self._own(namespace)
        network = ipaddress.ip_interface(cidr).network
        first, last = network.network_address, network.broadcast_address
        if not any(first in net and last in net for net in ALLOWED_NETWORKS):
            raise ValueError(f"{cidr} is outside the lab's address ranges")
        self._ip("-n", namespace, "address", "add", cidr, "dev", interface)

    def spawn(
        self, namespace: str, argv: Sequence[str], *, stdout: Output = None, stderr: Output = None
    ) -> subprocess.Popen[bytes]:
        """Start ``argv`` inside ``namespace`` (``ip netns exec`` execs it: same PID)."""
        self._own(namespace)
        process = subprocess.Popen(
            ["ip", "netns", "exec", namespace, *argv], stdout=stdout, stderr=stderr
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

    def close(self) -> None:
        """Stop our processes, then delete our namespaces (and so their veths)."""
        for process in reversed(self.processes):
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                self.stop(process)
        self.processes.clear()
        for namespace in reversed(self.namespaces):
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                subprocess.run(
                    ["ip", "netns", "del", namespace], check=False, capture_output=True, timeout=10
                )
        self.namespaces.clear()
