"""Interface state, identity and own addresses; a watcher for link up/down.

"Up" means what the kernels require before a vhid leaves INIT: the
interface is administratively up (IFF_UP) *and* running (IFF_RUNNING, which
Linux sets when the operational state is UP or UNKNOWN, i.e. the carrier
is there).

The watcher is a netlink socket subscribed to RTMGRP_LINK: hand its
``fileno()`` to ``loop.add_reader`` and call ``drain()`` when it is
readable; ``drain`` never blocks and reports only changes.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address
from types import TracebackType
from typing import Any

from pyroute2 import IPRSocket  # type: ignore[import-untyped]
from pyroute2.netlink.rtnl import (  # type: ignore[import-untyped]
    RTM_DELLINK,
    RTM_NEWLINK,
    RTMGRP_LINK,
)

from carpctl.io.addresses import CARPCTL_PROTO, IFA_F_DADFAILED, IFA_F_TENTATIVE
from carpctl.io.rtnl import IPInterface, RtnlClient

IPAddress = IPv4Address | IPv6Address

IFF_UP = 0x1
IFF_RUNNING = 0x40


@dataclass(frozen=True, slots=True)
class LinkInfo:
    ifname: str
    index: int
    mac: bytes  # b"" for interfaces without a link-layer address
    admin_up: bool  # IFF_UP
    running: bool  # IFF_RUNNING: operationally up (carrier)
    operstate: str  # UP, DOWN, LOWERLAYERDOWN, UNKNOWN ...

    @property
    def up(self) -> bool:
        return self.admin_up and self.running


def _link_info(msg: Any) -> LinkInfo:
    flags = int(msg["flags"])
    mac = msg.get("IFLA_ADDRESS")
    return LinkInfo(
        ifname=str(msg.get("IFLA_IFNAME")),
        index=int(msg["index"]),
        mac=bytes.fromhex(mac.replace(":", "")) if mac else b"",
        admin_up=bool(flags & IFF_UP),
        running=bool(flags & IFF_RUNNING),
        operstate=str(msg.get("IFLA_OPERSTATE") or "UNKNOWN"),
    )


class Links(RtnlClient):
    """Queries about the interfaces of one network namespace."""

    def info(self, ifname: str) -> LinkInfo:
        """Raises ``OSError`` (ENODEV) when there is no such interface."""
        return _link_info(self.rtnl.link(ifname))

    def is_up(self, ifname: str) -> bool:
        """Administratively up and running; False also when it does not exist."""
        try:
            return self.info(ifname).up
        except OSError as error:
            if error.errno == errno.ENODEV:
                return False
            raise

    def ifindex(self, ifname: str) -> int:
        return self.info(ifname).index

    def mac(self, ifname: str) -> bytes:
        return self.info(ifname).mac

    def own_addresses(
        self, ifname: str, family: int | None = None, *, exclude: Iterable[IPAddress] = ()
    ) -> list[IPInterface]:
        """The interface's own addresses in the kernel's order.

        Leaves out carpctl's tagged virtual addresses, ``exclude`` (the
        configured virtual addresses), and addresses that cannot be used
        as a source (tentative or failed duplicate detection).
        """
        excluded = set(exclude)
        result = []
        for entry in self.rtnl.addresses(self.info(ifname).index):
            if family is not None and entry.interface.version != family:
                continue
            if entry.proto == CARPCTL_PROTO or entry.interface.ip in excluded:
                continue
            if entry.flags & (IFA_F_TENTATIVE | IFA_F_DADFAILED):
                continue
            result.append(entry.interface)
        return result

    def source_address(
        self,
        ifname: str,
        family: int,
        *,
        exclude: Iterable[IPAddress] = (),
        peer: IPAddress | None = None,
    ) -> IPAddress | None:
        """The address advertisements should come from, or None if there is none.

        IPv4: the first own address (FreeBSD's and OpenBSD's "first
        non-CARP address of the parent"). IPv6: the first own link-local
        address (in practice what both kernels pick, and the right scope for
        ff02::12), unless a non-link-local unicast ``peer`` asks for a global one.
        """
        candidates = [i.ip for i in self.own_addresses(ifname, family, exclude=exclude)]
        if family == 6:
            want_link_local = peer is None or peer.is_link_local
            candidates.sort(key=lambda a: a.is_link_local != want_link_local)  # stable
        return candidates[0] if candidates else None


def info(ifname: str) -> LinkInfo:
    with Links() as links:
        return links.info(ifname)


def is_up(ifname: str) -> bool:
    with Links() as links:
        return links.is_up(ifname)


def ifindex(ifname: str) -> int:
    with Links() as links:
        return links.ifindex(ifname)


def mac(ifname: str) -> bytes:
    with Links() as links:
        return links.mac(ifname)


def own_addresses(
    ifname: str, family: int | None = None, *, exclude: Iterable[IPAddress] = ()
) -> list[IPInterface]:
    with Links() as links:
        return links.own_addresses(ifname, family, exclude=exclude)


class LinkWatcher:
    """Link up/down changes of the named interfaces, for ``loop.add_reader``.

    The current state is read when the watcher is made (``state``); ``drain``
    reports each later change once, as ``(ifname, up)``. A deleted
    interface reports down; a re-created one reports up when it is. If the
    kernel drops notifications (the socket's buffer overflowed, ENOBUFS),
    the state is re-read and the differences reported, so nothing is missed.
    """

    def __init__(self, ifnames: Iterable[str]) -> None:
        self._names = set(ifnames)
        self._sock: Any = IPRSocket(groups=RTMGRP_LINK)
        try:
            self._sock.bind(groups=RTMGRP_LINK)
            os.set_blocking(self.fileno(), False)
            self.state: dict[str, bool] = self._read_state()
        except BaseException:
            self._sock.close()
            raise

    def __enter__(self) -> LinkWatcher:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def fileno(self) -> int:
        return int(self._sock.fileno())

    def close(self) -> None:
        self._sock.close()

    def _read_state(self) -> dict[str, bool]:
        with Links() as links:
            return {name: links.is_up(name) for name in self._names}

    def _changes(self, new: dict[str, bool]) -> list[tuple[str, bool]]:
        changes = [(n, up) for n, up in new.items() if self.state.get(n) is not up]
        self.state.update(new)
        return changes

    def drain(self) -> list[tuple[str, bool]]:
        """Read every pending notification without blocking; return the changes."""
        changes: list[tuple[str, bool]] = []
        while True:
            try:
                messages = self._sock.get()
            except BlockingIOError:
                return changes
            except OSError as error:
                if error.errno != errno.ENOBUFS:
                    raise
                changes += self._changes(self._read_state())
                continue
            for msg in messages:
                event = msg["header"]["type"]
                name = msg.get("IFLA_IFNAME")
                if name not in self._names or event not in (RTM_NEWLINK, RTM_DELLINK):
                    continue
                up = event == RTM_NEWLINK and _link_info(msg).up
                changes += self._changes({name: up})
