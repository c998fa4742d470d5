"""The fake BSD kernel's state: one JSON file, locked for every access.

The fake programs (``fake_sysctl``, ``fake_ifconfig``) and the tests share
it. It is named by ``CARPCTL_FAKE_KERNEL``; every access holds an exclusive
``flock`` on ``<file>.lock`` while it reads, changes and (atomically)
rewrites the file, so concurrent calls behave like system calls on one
kernel. Standard library only: the programs run under ``python -S``.

Shape::

    {"os": "freebsd" | "openbsd", "release": 14, "boottime": 1712345678,
     "sysctl": {"net.inet.carp.demotion": 0, ...},
     "groups": {"carp": 0, ...},            # OpenBSD: group -> demote count
     "interfaces": [{"name": "em0", ...}]}  # see the renderers in the programs

Every program run is appended to ``<file>.calls``.
"""

from __future__ import annotations

import fcntl
import json
import os

# Imports kept to the cheapest modules: every fake call starts a Python.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, TextIO

ENV = "CARPCTL_FAKE_KERNEL"
CARP_STATES = ("INIT", "BACKUP", "MASTER")

State = dict[str, "Any"]


class locked:  # used like a function: ``with locked(path, argv) as state``
    """The state, locked; written back (if changed) when the block ends without an exception.

    ``call``, when given, is appended to ``<file>.calls`` (one JSON list a
    line): the record of every program run, in order.
    """

    def __init__(self, path: os.PathLike[str] | str, call: list[str] | None = None) -> None:
        self.path = os.fspath(path)
        self.call = call

    def __enter__(self) -> State:
        self.lock = os.open(f"{self.path}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(self.lock, fcntl.LOCK_EX)
        with open(self.path) as handle:
            self.text = handle.read()
        if self.call is not None:
            with open(f"{self.path}.calls", "a") as calls:
                calls.write(json.dumps(self.call) + "\n")
        self.state: State = json.loads(self.text)
        return self.state

    def __exit__(self, kind: object, error: object, traceback: object) -> None:
        try:
            text = json.dumps(self.state, indent=1)
            if kind is None and text != self.text:
                temporary = f"{self.path}.{os.getpid()}.tmp"
                with open(temporary, "w") as handle:
                    handle.write(text)
                os.replace(temporary, self.path)
        finally:
            os.close(self.lock)


def kernel_path() -> str:
    value = os.environ.get(ENV)
    if not value:
        raise SystemExit(f"fake BSD tool: {ENV} is not set")
    return value


def demotion_adjust(state: State, delta: int, group: str = "carp") -> int:
    """A kernel-internal change (ifdown, send errors, pfsync); the new value.

    FreeBSD adds without limits; OpenBSD clamps at 0 (and not at 255: only
    ifconfig's writes are refused outside 0..255).
    """
    if state["os"] == "freebsd":
        state["sysctl"]["net.inet.carp.demotion"] += delta
        return int(state["sysctl"]["net.inet.carp.demotion"])
    groups = state["groups"]
    groups[group] = max(0, groups[group] + delta)
    return int(groups[group])


def netmask(prefixlen: int) -> str:
    return f"0x{(0xFFFFFFFF << (32 - prefixlen)) & 0xFFFFFFFF:08x}"


def broadcast(address: str, prefixlen: int) -> str:
    octets = [int(o) for o in address.split(".")]
    value = int.from_bytes(bytes(octets), "big") | (0xFFFFFFFF >> prefixlen)
    return ".".join(str(b) for b in value.to_bytes(4, "big"))


class Program:
    """Common shape of a fake program: argv in, exit status out."""

    name = ""

    def __init__(self, state: State, out: TextIO, err: TextIO) -> None:
        self.state, self.out, self.err = state, out, err

    def fail(self, message: str) -> int:
        print(f"{self.name}: {message}", file=self.err)
        return 1
