"""Add and remove a vhid's virtual addresses via netlink, idempotently.

Tagging: every address carpctl adds carries ``IFA_PROTO`` = ``CARPCTL_PROTO``
(112, CARP's IP protocol number), the "address protocol" field Linux 5.18
added for exactly this purpose (the kernel's own addresses carry 1-3, other
programs' 0). Unlike the IPv4-only ``IFA_LABEL``, it works for IPv4 and IPv6
alike and needs no naming convention. After a crash, ``remove_stale``
deletes every tagged address on the interface, plus the configured virtual
addresses the caller passes in: at start-up every vhid is INIT, so none of
them may be present, and passing them also covers kernels older than 5.18
(which ignore the tag) and addresses a crashed pre-tag run left behind.

IPv6 addresses are added with ``IFA_F_NODAD``: usable at once, never
tentative (they are ours by election, not by duplicate detection).

Each call is a sub-millisecond synchronous netlink exchange (see ``rtnl``),
cheap enough to make inline from the asyncio driver.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Iterable
from ipaddress import IPv4Interface, IPv6Interface

from pyroute2.netlink import NLM_F_CREATE, NLM_F_EXCL  # type: ignore[import-untyped]
from pyroute2.netlink.rtnl import RTM_DELADDR, RTM_NEWADDR  # type: ignore[import-untyped]
from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg  # type: ignore[import-untyped]

from carpctl.io.rtnl import IPInterface, RtnlClient

CARPCTL_PROTO = 112  # IFA_PROTO value marking carpctl's virtual addresses
IFA_F_NODAD = 0x02
IFA_F_TENTATIVE = 0x40
IFA_F_DADFAILED = 0x08

__all__ = [
    "CARPCTL_PROTO",
    "AddressTable",
    "IPInterface",
    "add",
    "present",
    "remove",
    "remove_stale",
    "tagged",
]


def _message(index: int, address: IPInterface, *, tag: bool) -> object:
    msg = ifaddrmsg()
    is_v6 = isinstance(address, IPv6Interface)
    flags = IFA_F_NODAD if is_v6 and tag else 0
    msg["family"] = socket.AF_INET6 if is_v6 else socket.AF_INET
    msg["prefixlen"] = address.network.prefixlen
    msg["index"] = index
    msg["flags"] = flags
    attrs: list[tuple[str, object]] = [("IFA_LOCAL", str(address.ip))]
    attrs.append(("IFA_ADDRESS", str(address.ip)))
    if tag:
        attrs += [("IFA_FLAGS", flags), ("IFA_PROTO", CARPCTL_PROTO)]
    msg["attrs"] = attrs
    return msg


def _checked(addresses: Iterable[IPInterface]) -> list[IPInterface]:
    result = list(addresses)
    for address in result:
        if not isinstance(address, IPv4Interface | IPv6Interface):
            raise TypeError(f"expected IPv4Interface or IPv6Interface, got {address!r}")
    return result


class AddressTable(RtnlClient):
    """Address changes on the interfaces of one network namespace."""

    def _index(self, ifname: str) -> int:
        return int(self.rtnl.link(ifname)["index"])

    def add(self, ifname: str, addresses: Iterable[IPInterface]) -> list[IPInterface]:
        """Add ``addresses`` to ``ifname``, tagged; return those that were not there.

        An address already present (ours or not) is left as it is. Raises
        ``OSError`` for anything else (ENODEV: no such interface ...).
        """
        wanted = _checked(addresses)
        index = self._index(ifname)
        added = []
        for address in wanted:
            try:
                self.rtnl.request(
                    _message(index, address, tag=True),
                    RTM_NEWADDR,
                    NLM_F_CREATE | NLM_F_EXCL,
                    what=f"add {address} to {ifname}",
                )
            except OSError as error:
                if error.errno != errno.EEXIST:
                    raise
            else:
                added.append(address)
        return added

    def remove(self, ifname: str, addresses: Iterable[IPInterface]) -> list[IPInterface]:
        """Remove ``addresses`` from ``ifname``; return those that were there.

        An absent address (or interface) is not an error: the goal is reached.
        """
        unwanted = _checked(addresses)
        try:
            index = self._index(ifname)
        except OSError as error:
            if error.errno == errno.ENODEV:
                return []
            raise
        removed = []
        for address in unwanted:
            try:
                self.rtnl.request(
                    _message(index, address, tag=False),
                    RTM_DELADDR,
                    what=f"remove {address} from {ifname}",
                )
            except OSError as error:
                if error.errno not in (errno.EADDRNOTAVAIL, errno.ENODEV, errno.ENOENT):
                    raise
            else:
                removed.append(address)
        return removed

    def present(self, ifname: str) -> set[IPInterface]:
        """Every address on ``ifname`` (ours and the interface's own)."""
        return {entry.interface for entry in self.rtnl.addresses(self._index(ifname))}

    def tagged(self, ifname: str) -> set[IPInterface]:
        """The addresses on ``ifname`` that carry carpctl's tag."""
        entries = self.rtnl.addresses(self._index(ifname))
        return {entry.interface for entry in entries if entry.proto == CARPCTL_PROTO}

    def usable(self, ifname: str, address: IPInterface) -> bool:
        """``address`` is on ``ifname`` and neither tentative nor failed DAD."""
        for entry in self.rtnl.addresses(self._index(ifname)):
            if entry.interface == address:
                return not entry.flags & (IFA_F_TENTATIVE | IFA_F_DADFAILED)
        return False

    def remove_stale(
        self, ifname: str, configured: Iterable[IPInterface] = ()
    ) -> list[IPInterface]:
        """Start-up clean-up: remove tagged and configured virtual addresses.

        Returns what was removed (for the log).
        """
        try:
            entries = self.rtnl.addresses(self._index(ifname))
        except OSError as error:
            if error.errno == errno.ENODEV:
                return []
            raise
        wanted = {e.interface for e in entries if e.proto == CARPCTL_PROTO}
        # A configured address counts whatever its prefix length on the interface.
        configured_ips = {a.ip for a in _checked(configured)}
        wanted |= {e.interface for e in entries if e.interface.ip in configured_ips}
        ordered = [e.interface for e in entries if e.interface in wanted]
        return self.remove(ifname, ordered)


def add(ifname: str, addresses: Iterable[IPInterface]) -> list[IPInterface]:
    """``AddressTable.add`` with a short-lived netlink socket."""
    with AddressTable() as table:
        return table.add(ifname, addresses)


def remove(ifname: str, addresses: Iterable[IPInterface]) -> list[IPInterface]:
    """``AddressTable.remove`` with a short-lived netlink socket."""
    with AddressTable() as table:
        return table.remove(ifname, addresses)


def present(ifname: str) -> set[IPInterface]:
    """``AddressTable.present`` with a short-lived netlink socket."""
    with AddressTable() as table:
        return table.present(ifname)


def tagged(ifname: str) -> set[IPInterface]:
    """``AddressTable.tagged`` with a short-lived netlink socket."""
    with AddressTable() as table:
        return table.tagged(ifname)


def remove_stale(ifname: str, configured: Iterable[IPInterface] = ()) -> list[IPInterface]:
    """``AddressTable.remove_stale`` with a short-lived netlink socket."""
    with AddressTable() as table:
        return table.remove_stale(ifname, configured)
