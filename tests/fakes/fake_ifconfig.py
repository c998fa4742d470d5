"""A fake ``ifconfig`` for FreeBSD and OpenBSD (carp-protocol.md sections 4.7, 6, 7).

FreeBSD: ``ifconfig`` / ``-a`` / ``IF`` print interfaces with ``vhid N`` on
addresses and ``carp: STATE vhid N advbase B advskew S`` (plus the
``peer ... peer6 ...`` line from release 14); ``-g GROUP`` lists members;
``IF vhid N [state S] [advskew A]`` changes a vhid.

OpenBSD: carpN interfaces print ``carp: STATE carpdev IF vhid N advbase B
advskew S`` or, with several vhids, ``carp: carpdev IF advbase B balancing
M`` and one ``state S vhid N advskew A`` line each, then ``status:
master|backup|invalid``. ``-g GROUP`` prints ``GROUP: carp demote count N``;
``-g GROUP [-]carpdemote [N]`` adds or subtracts N (default 1, at most
128); the kernel refuses a count outside 0..255.
"""

from __future__ import annotations

import sys

from fakestate import CARP_STATES, Program, State, broadcast, kernel_path, locked, netmask

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any, TextIO

MAX_STEP = 128
MAX_COUNT = 255


class Ifconfig(Program):
    name = "ifconfig"

    def run(self, argv: Sequence[str]) -> int:
        args = list(argv)
        if args[:1] == ["-a"]:
            args = args[1:]
        if not args:
            return self.show(self.state["interfaces"])
        if args[0] == "-g":
            if len(args) < 2:
                return self.fail("usage: ifconfig -g group [[-]carpdemote [n]]")
            return self.group(args[1], args[2:])
        wanted = args[0]
        if len(args) > 1:
            return self.configure(wanted, args[1:])
        if self.state["os"] == "openbsd" and not wanted[-1].isdigit():
            members = [i for i in self.state["interfaces"] if wanted in i.get("groups", [])]
            if members:
                return self.show(members)
        found = [i for i in self.state["interfaces"] if i["name"] == wanted]
        if not found:
            if self.state["os"] == "freebsd":
                return self.fail(f"interface {wanted} does not exist")
            print(f"{wanted}: no such interface", file=self.err)
            return 1
        return self.show(found)

    def show(self, interfaces: list[dict[str, Any]]) -> int:
        render = self.freebsd_block if self.state["os"] == "freebsd" else self.openbsd_block
        for interface in interfaces:
            print("\n".join(render(interface)), file=self.out)
        return 0

    # -- groups and demotion ------------------------------------------------

    def group(self, group: str, rest: list[str]) -> int:
        if self.state["os"] == "freebsd":
            if rest:  # FreeBSD takes what follows for an interface name
                return self.fail(f"interface {rest[0]} does not exist")
            for interface in self.state["interfaces"]:
                if group in interface.get("groups", []):
                    print(interface["name"], file=self.out)
            return 0
        counts = self.state["groups"]
        if not rest:
            if group not in counts:
                return self.fail(f"{group}: SIOCGIFGATTR: No such file or directory")
            print(f"{group}: carp demote count {counts[group]}", file=self.out)
            return 0
        verb, amount = rest[0], 1
        if len(rest) > 1:
            try:
                amount = int(rest[1])
            except ValueError:
                return self.fail(f"{group}: invalid carp demotion: invalid")
            if amount < 0:
                return self.fail(f"{group}: invalid carp demotion: too small")
            if amount > MAX_STEP:
                return self.fail(f"{group}: invalid carp demotion: too large")
        if verb.startswith("-"):
            verb, amount = verb[1:], -amount
        if verb != "carpdemote":
            return self.fail("usage: ifconfig -g group [[-]carpdemote [n]]")
        if group not in counts:
            return self.fail(f"{group}: SIOCSIFGATTR: No such file or directory")
        if not 0 <= counts[group] + amount <= MAX_COUNT:
            return self.fail(f"{group}: SIOCSIFGATTR: Invalid argument")
        counts[group] += amount
        return 0

    def configure(self, name: str, args: list[str]) -> int:
        """FreeBSD ``IF vhid N [state S] [advskew A]``; nothing else is configurable."""
        if self.state["os"] != "freebsd" or args[0] != "vhid" or len(args) % 2:
            return self.fail(f"{name}: the fake only changes vhids: IF vhid N [state S]")
        for interface in self.state["interfaces"]:
            for vhid in interface.get("carp", []) if interface["name"] == name else []:
                if str(vhid["vhid"]) == args[1]:
                    for key, value in zip(args[2::2], args[3::2], strict=True):
                        if key == "state" and value.upper() in ("BACKUP", "MASTER"):
                            vhid["state"] = value.upper()
                        elif key == "advskew" and value.isdigit() and int(value) <= 254:
                            vhid["advskew"] = int(value)
                        else:
                            return self.fail(f"{key} {value}: not supported by the fake")
                    return 0
        return self.fail(f"{name}: no vhid {args[1]}")

    # -- display --------------------------------------------------------------

    def freebsd_block(self, i: dict[str, Any]) -> list[str]:
        lines = [f"{i['name']}: flags={i['flags']} metric 0 mtu {i['mtu']}"]
        if "ether" in i:
            lines.append(f"\tether {i['ether']}")
        lines += self.addresses(i, lambda v: f" vhid {v}")
        for vhid in i.get("carp", []):
            lines.append(
                f"\tcarp: {vhid['state']} vhid {vhid['vhid']} advbase {vhid['advbase']}"
                f" advskew {vhid['advskew']}"
            )
            if self.state["release"] >= 14:
                peer, peer6 = vhid.get("peer", "224.0.0.18"), vhid.get("peer6", "ff02::12")
                lines.append(f"\t      peer {peer} peer6 {peer6}")
        if i.get("groups"):
            lines.append(f"\tgroups: {' '.join(i['groups'])}")
        if "media" in i:
            lines.append(f"\tmedia: {i['media']}")
        if "status" in i:
            lines.append(f"\tstatus: {i['status']}")
        return lines

    def openbsd_block(self, i: dict[str, Any]) -> list[str]:
        lines = [f"{i['name']}: flags={i['flags']} mtu {i['mtu']}"]
        if "lladdr" in i:
            lines.append(f"\tlladdr {i['lladdr']}")
        lines.append(f"\tindex {i.get('index', 1)} priority {i.get('priority', 0)} llprio 3")
        vhids = i.get("carp", [])
        peer = f" carppeer {i['carppeer']}" if i.get("carppeer") else ""
        dev = i.get("carpdev") or "none"
        if len(vhids) == 1:
            v = vhids[0]
            lines.append(
                f"\tcarp: {v['state']} carpdev {dev} vhid {v['vhid']} advbase {i['advbase']}"
                f" advskew {v['advskew']}{peer}"
            )
        elif vhids:
            balancing = i.get("balancing", "ip")
            lines.append(
                f"\tcarp: carpdev {dev} advbase {i['advbase']} balancing {balancing}{peer}"
            )
            lines += [
                f"\t\tstate {v['state']} vhid {v['vhid']} advskew {v['advskew']}" for v in vhids
            ]
        if i.get("groups"):
            lines.append(f"\tgroups: {' '.join(i['groups'])}")
        if "media" in i:
            lines.append(f"\tmedia: {i['media']}")
        if vhids:
            states = {v["state"] for v in vhids}
            status = (
                "master" if "MASTER" in states else "backup" if "BACKUP" in states else "invalid"
            )
            lines.append(f"\tstatus: {status}")
        elif "status" in i:
            lines.append(f"\tstatus: {i['status']}")
        return lines + self.addresses(i, lambda v: "")

    def addresses(self, i: dict[str, Any], suffix: Any) -> list[str]:
        lines = []
        for cidr, vhid in i.get("inet", []):
            address, prefixlen = cidr.split("/")
            line = f"\tinet {address} netmask {netmask(int(prefixlen))}"
            if "LOOPBACK" not in i["flags"]:
                line += f" broadcast {broadcast(address, int(prefixlen))}"
            lines.append(line + (suffix(vhid) if vhid else ""))
        for cidr, vhid in i.get("inet6", []):
            address, prefixlen = cidr.split("/")
            lines.append(
                f"\tinet6 {address} prefixlen {prefixlen}" + (suffix(vhid) if vhid else "")
            )
        return lines


def run(argv: Sequence[str], state: State, out: TextIO, err: TextIO) -> int:
    for interface in state["interfaces"]:
        for vhid in interface.get("carp", []):
            assert vhid["state"] in CARP_STATES, vhid
    return Ifconfig(state, out, err).run(argv)


def main() -> int:
    with locked(kernel_path(), ["ifconfig", *sys.argv[1:]]) as state:
        return run(sys.argv[1:], state, sys.stdout, sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
