"""A small wrapper around ``tests/netns.py`` for the I/O adapter tests.

Adds what ``netns.Lab`` lacks, without relaxing its rules:

* a worker thread per namespace that has entered it with setns(2), so the
  adapters (sockets, netlink) run *inside* the namespace while the pytest
  thread stays in the root namespace; the thread refuses to run anything
  if it could not enter its namespace;
* ``ip -n NS ...`` for namespaces of this lab only;
* duplicate address detection switched off per namespace on request, so
  fresh link-local addresses are usable at once;
* tcpdump capture (``Capture``) and tshark decoding of the result;
* an ICMP echo ("ping"), as the lab machines have no ping binary.
"""

from __future__ import annotations

import concurrent.futures
import ctypes
import os
import select
import shutil
import socket
import struct
import subprocess
import time
from collections.abc import Callable, Iterator
from ipaddress import IPv4Address, IPv6Address, ip_address
from pathlib import Path
from typing import IO, Any, ParamSpec, TypeVar

import netns
import pytest

from carpctl.core.checksum import internet_checksum

P = ParamSpec("P")
T = TypeVar("T")

CLONE_NEWNET = 0x40000000
NETNS_RUN_DIR = Path("/var/run/netns")
CALL_TIMEOUT = 30.0

_libc = ctypes.CDLL(None, use_errno=True)


def _enter(namespace: str) -> None:
    """Thread initializer: setns(2) into ``namespace``, and prove it worked."""
    path = NETNS_RUN_DIR / namespace
    fd = os.open(path, os.O_RDONLY)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            error = ctypes.get_errno()
            raise OSError(error, f"setns({namespace}): {os.strerror(error)}")
    finally:
        os.close(fd)
    if os.stat("/proc/thread-self/ns/net").st_ino != os.stat(path).st_ino:
        raise RuntimeError(f"thread did not enter namespace {namespace}")


class NsThread:
    """One thread living in one namespace; ``run`` executes callables there.

    If the thread cannot enter the namespace the pool is broken and every
    ``run`` raises: nothing ever runs in the root namespace by mistake.
    """

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        self._pool = concurrent.futures.ThreadPoolExecutor(
            1, thread_name_prefix=f"ns-{namespace}", initializer=_enter, initargs=(namespace,)
        )

    def run(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        return self._pool.submit(fn, *args, **kwargs).result(timeout=CALL_TIMEOUT)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


class IoLab:
    """``netns.Lab`` plus a worker thread per namespace."""

    def __init__(self, lab: netns.Lab) -> None:
        self.lab = lab
        self.threads: dict[str, NsThread] = {}

    def namespace(self, name: str, *, dad: bool = False) -> str:
        """A new namespace; IPv6 duplicate address detection off unless ``dad``."""
        full = self.lab.namespace(name)
        if not dad:
            self.exec(
                full,
                "sysctl",
                "-q",
                "-w",
                "net.ipv6.conf.all.accept_dad=0",
                "net.ipv6.conf.default.accept_dad=0",
            )
        self.threads[full] = NsThread(full)
        return full

    def veth(self, ns_a: str, ns_b: str, name_a: str = "lab0", name_b: str = "lab0") -> None:
        self.lab.veth(ns_a, ns_b, name_a, name_b)

    def address(self, namespace: str, interface: str, cidr: str) -> None:
        self.lab.address(namespace, interface, cidr)

    def run(self, namespace: str, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Call ``fn(*args, **kwargs)`` in ``namespace``'s thread; return its result."""
        return self.threads[namespace].run(fn, *args, **kwargs)

    def _own(self, namespace: str) -> None:
        if namespace not in self.threads:
            raise ValueError(f"namespace {namespace} was not made by this lab")

    def ip(self, namespace: str, *args: str) -> str:
        """``ip -n NAMESPACE ARGS``; returns stdout."""
        self._own(namespace)
        return subprocess.run(
            ["ip", "-n", namespace, *args], check=True, capture_output=True, text=True, timeout=10
        ).stdout

    def exec(self, namespace: str, *argv: str) -> str:
        """Run a short command inside the namespace (``ip netns exec``); returns stdout."""
        if namespace not in self.lab.namespaces:
            raise ValueError(f"namespace {namespace} was not made by this lab")
        return subprocess.run(
            ["ip", "netns", "exec", namespace, *argv],
            check=True,
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout

    def spawn(
        self, namespace: str, argv: list[str], *, stdout: Any = None, stderr: Any = None
    ) -> subprocess.Popen[bytes]:
        return self.lab.spawn(namespace, argv, stdout=stdout, stderr=stderr)

    def close(self) -> None:
        for thread in self.threads.values():
            thread.close()
        self.threads.clear()
        self.lab.close()


def make_lab(tag: str) -> Iterator[IoLab]:
    """Body of a ``lab`` fixture: skip without root/ip netns; always tear down."""
    reason = netns.unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    lab = IoLab(netns.Lab(tag))
    try:
        yield lab
    finally:
        lab.close()


def wait_readable(fd: int, timeout: float) -> bool:
    readable: list[int]
    readable, _, _ = select.select([fd], [], [], timeout)
    return bool(readable)


wait_for = netns.wait_for


# -- capture and decode -------------------------------------------------------


class Capture:
    """tcpdump writing a pcap inside a namespace, started and ready on return."""

    def __init__(
        self, lab: IoLab, namespace: str, path: Path, bpf: str, *, count: int | None = None
    ) -> None:
        for tool in ("tcpdump", "tshark"):
            assert shutil.which(tool), f"{tool} is not installed (tools/test.sh installs it)"
        self.lab, self.path = lab, path
        self.log = path.with_suffix(".log")
        argv = [
            "tcpdump",
            "-i",
            "lab0",
            "-w",
            str(path),
            "-U",
            "--immediate-mode",
            "-n",
            "-Z",
            "root",
        ]
        if count is not None:
            argv += ["-c", str(count)]
        self._log: IO[bytes] = self.log.open("wb")
        self.process = lab.spawn(namespace, [*argv, bpf], stdout=self._log, stderr=self._log)
        ready = wait_for(
            lambda: b"listening on" in self.log.read_bytes() or self.process.poll() is not None,
            10,
            0.02,
        )
        assert ready, self.log.read_text()
        assert self.process.poll() is None, self.log.read_text()

    def stop(self) -> None:
        """Stop tcpdump (by PID) once it has written everything it saw."""
        time.sleep(0.05)  # let the last packets reach the ring buffer
        netns.Lab.stop(self.process)
        self._log.close()

    def wait(self, timeout: float = 10) -> None:
        """Wait for a ``count``-limited tcpdump to exit by itself."""
        self.process.wait(timeout)
        self._log.close()


# Protocol 112 is VRRP's too: let CARP's heuristic (authlen 7 ...) decide first.
HEURISTICS_FIRST = ["-o", "ip.try_heuristic_first:TRUE", "-o", "ipv6.try_heuristic_first:TRUE"]
CHECKSUM_GOOD = "1"  # Wireshark's PROTO_CHECKSUM_E_GOOD


def tshark_fields(path: Path, fields: list[str], display_filter: str = "") -> list[list[str]]:
    """Decode a capture with tshark; one row of field values per packet."""
    argv = ["tshark", "-r", str(path), "-n", *HEURISTICS_FIRST, "-T", "fields", "-E", "separator=|"]
    for field in fields:
        argv += ["-e", field]
    if display_filter:
        argv += ["-Y", display_filter]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=True)
    return [line.split("|") for line in result.stdout.splitlines() if line]


# -- ICMP echo ------------------------------------------------------------------


def ping(destination: str, timeout: float = 1.0) -> bool:
    """One ICMP(v6) echo to ``destination``; True if the reply came in time.

    Run it inside a namespace (``IoLab.run``).
    """
    address = ip_address(destination)
    ident, payload = os.getpid() & 0xFFFF, b"carpctl-io-test"
    if isinstance(address, IPv4Address):
        sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        request, reply_type = 8, 0
    else:
        assert isinstance(address, IPv6Address)
        sock = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
        request, reply_type = 128, 129
    with sock:
        header = struct.pack("!BBHHH", request, 0, 0, ident, 1)
        checksum = internet_checksum(header + payload) if address.version == 4 else 0  # v6: kernel
        packet = header[:2] + checksum.to_bytes(2, "big") + header[4:] + payload
        sock.sendto(packet, (destination, 0))
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            if not wait_readable(sock.fileno(), left):
                break
            data, source = sock.recvfrom(65535)
            if address.version == 4:
                data = data[(data[0] & 0x0F) * 4 :]
            if ip_address(source[0].split("%")[0]) != address or len(data) < 8:
                continue
            kind, _, _, reply_ident, _ = struct.unpack("!BBHHH", data[:8])
            if kind == reply_type and reply_ident == ident:
                return True
    return False
