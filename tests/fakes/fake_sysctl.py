"""A fake ``sysctl`` for FreeBSD and OpenBSD (carp-protocol.md section 6).

FreeBSD: ``name: value`` (``-n``: the value), writes print ``name: old -> new``;
``net.inet.carp.demotion=N`` *adds* N; an unknown name is ``sysctl: unknown
oid 'name'``, exit 1. OpenBSD prints ``name=value`` and has no demotion
sysctl. ``kern.boottime`` is read-only on both (FreeBSD
``{ sec = N, usec = 0 } date``, OpenBSD ``-n`` prints N).
"""

from __future__ import annotations

import sys
import time

from fakestate import Program, State, kernel_path, locked

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import TextIO

RELATIVE = "net.inet.carp.demotion"  # the one sysctl whose writes add
ORDINALS = ("top", "second", "third", "fourth")


class Sysctl(Program):
    name = "sysctl"

    def run(self, argv: Sequence[str]) -> int:
        args = list(argv)
        flags = ""
        while args and args[0].startswith("-") and len(args[0]) > 1:
            flags += args.pop(0)[1:]
        for flag in flags:
            if flag not in "nq":
                print(f"sysctl: illegal option -- {flag}", file=self.err)
                return self.usage()
        if not args:
            return self.usage()
        status = 0
        for arg in args:
            status |= self.one(arg, quiet="q" in flags, bare="n" in flags)
        return status

    def usage(self) -> int:
        print("usage: sysctl [-nq] name[=value] ...", file=self.err)
        return 1

    @property
    def freebsd(self) -> bool:
        return bool(self.state["os"] == "freebsd")

    def one(self, arg: str, *, quiet: bool, bare: bool) -> int:
        name, assign, text = arg.partition("=")
        known = self.state["sysctl"]
        if name != "kern.boottime" and name not in known:
            return 1 if quiet else self.unknown(name)
        if not assign:
            value = self.boottime(bare) if name == "kern.boottime" else str(known[name])
            if bare:
                print(value, file=self.out)
            else:
                print(f"{name}: {value}" if self.freebsd else f"{name}={value}", file=self.out)
            return 0
        if name == "kern.boottime":
            return self.fail(f"oid '{name}' is read only")
        try:
            number = int(text, 0)
        except ValueError:
            return self.fail(f"invalid integer '{text}'")
        old = int(known[name])
        known[name] = old + number if name == RELATIVE else number
        if not quiet:
            prefix = "" if bare else f"{name}: "
            print(f"{prefix}{old} -> {known[name]}", file=self.out)
        return 0

    def boottime(self, bare: bool) -> str:
        sec = int(self.state["boottime"])
        if self.freebsd:
            return f"{{ sec = {sec}, usec = 0 }} {time.ctime(sec)}"
        return str(sec) if bare else time.ctime(sec)

    def unknown(self, name: str) -> int:
        if self.freebsd:
            return self.fail(f"unknown oid '{name}'")
        levels = name.split(".")
        ordinal = ORDINALS[min(len(levels), len(ORDINALS)) - 1]
        where = ".".join(levels[:-1])
        return self.fail(f"{ordinal} level name {levels[-1]} in {where} is invalid")


def run(argv: Sequence[str], state: State, out: TextIO, err: TextIO) -> int:
    return Sysctl(state, out, err).run(argv)


def main() -> int:
    with locked(kernel_path(), ["sysctl", *sys.argv[1:]]) as state:
        return run(sys.argv[1:], state, sys.stdout, sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
