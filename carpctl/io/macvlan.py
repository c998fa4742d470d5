"""Virtual MAC addresses: a macvlan child per vhid (protocol reference 1.5).

FreeBSD answers for a vhid's addresses with 00:00:5e:00:01:<vhid>, so a
takeover needs no ARP cache update anywhere. On Linux the same is a macvlan
interface with that MAC on top of the parent: up and holding the virtual
addresses while MASTER, down otherwise. The parent and the child are set
to ``arp_ignore = 1`` so only the interface that holds an address answers
ARP for it (Linux answers for any local address on any interface by default,
which would give the parent's MAC too), and to ``arp_announce = 2`` so the
parent's own ARP requests never name a virtual address as their sender
(which would teach neighbours the parent's MAC for it). keepalived's
``use_vmac`` changes the same settings.
"""

from __future__ import annotations

import errno
from pathlib import Path

from pyroute2.netlink import NLM_F_CREATE, NLM_F_EXCL  # type: ignore[import-untyped]
from pyroute2.netlink.rtnl import RTM_DELLINK, RTM_NEWLINK  # type: ignore[import-untyped]
from pyroute2.netlink.rtnl.ifinfmsg import IFF_UP, ifinfmsg  # type: ignore[import-untyped]

from carpctl.io.rtnl import RtnlClient

MACVLAN_MODE_BRIDGE = 4
SYSCTL_ROOT = Path("/proc/sys/net/ipv4/conf")


def virtual_mac(vhid: int) -> str:
    """The vhid's MAC, as the BSD kernels use it: 00:00:5e:00:01:<vhid>."""
    if not 1 <= vhid <= 255:
        raise ValueError(f"vhid must be 1..255, got {vhid}")
    return f"00:00:5e:00:01:{vhid:02x}"


def child_name(parent_index: int, vhid: int) -> str:
    """A name unique per (parent, vhid) and within Linux's 15 characters."""
    return f"carp{vhid}.{parent_index}"


def _set_sysctl(ifname: str, name: str, value: int) -> None:
    path = SYSCTL_ROOT / ifname / name
    if path.read_text().strip() != str(value):
        path.write_text(f"{value}\n")


class VirtualMacs(RtnlClient):
    """Create, raise, lower and delete the vhids' macvlan children."""

    def ensure(self, parent: str, vhid: int) -> str:
        """The child of ``parent`` for ``vhid``, created (down) if missing."""
        link = self.rtnl.link(parent)
        name = child_name(link["index"], vhid)
        mac = virtual_mac(vhid)
        try:
            existing = self.rtnl.link(name)
        except OSError as error:
            if error.errno != errno.ENODEV:
                raise
            existing = None
        if existing is not None and existing.get("IFLA_ADDRESS") != mac:
            self.delete(name)  # not ours, or a stale one with another MAC
            existing = None
        if existing is None:
            msg = ifinfmsg()
            msg["attrs"] = [
                ("IFLA_IFNAME", name),
                ("IFLA_LINK", link["index"]),
                ("IFLA_ADDRESS", mac),
                (
                    "IFLA_LINKINFO",
                    {
                        "attrs": [
                            ("IFLA_INFO_KIND", "macvlan"),
                            (
                                "IFLA_INFO_DATA",
                                {"attrs": [("IFLA_MACVLAN_MODE", MACVLAN_MODE_BRIDGE)]},
                            ),
                        ]
                    },
                ),
            ]
            self.rtnl.request(msg, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, f"macvlan {name}")
        for ifname in (parent, name):
            _set_sysctl(ifname, "arp_ignore", 1)
            _set_sysctl(ifname, "arp_announce", 2)
        return name

    def set_up(self, name: str, up: bool) -> None:
        link = self.rtnl.link(name)
        msg = ifinfmsg()
        msg["index"] = link["index"]
        msg["flags"] = IFF_UP if up else 0
        msg["change"] = IFF_UP
        self.rtnl.request(msg, RTM_NEWLINK, 0, f"link {name} {'up' if up else 'down'}")

    def delete(self, name: str) -> None:
        """Remove the child; nothing to do if it is already gone."""
        try:
            link = self.rtnl.link(name)
        except OSError as error:
            if error.errno == errno.ENODEV:
                return
            raise
        msg = ifinfmsg()
        msg["index"] = link["index"]
        self.rtnl.request(msg, RTM_DELLINK, 0, f"delete {name}")
