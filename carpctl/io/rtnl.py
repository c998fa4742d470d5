"""Synchronous rtnetlink requests over pyroute2's select-compatible socket.

pyroute2 0.9's ``IPRoute`` drives a private asyncio loop with
``run_until_complete``, so it cannot be called while the daemon's loop is
running ("Cannot run the event loop while another loop is running").
``IPRSocket`` is pyroute2's plain socket with its message (de)serializers and
no loop; this module adds request/acknowledge/dump on top of it. The kernel
answers rtnetlink requests synchronously, so one call costs well under a
millisecond and never waits on the network.
"""

from __future__ import annotations

import errno
import os
import socket
from dataclasses import dataclass
from ipaddress import IPv4Interface, IPv6Interface, ip_interface
from types import TracebackType
from typing import Any, Self

from pyroute2 import IPRSocket  # type: ignore[import-untyped]
from pyroute2.netlink import (  # type: ignore[import-untyped]
    NLM_F_ACK,
    NLM_F_DUMP,
    NLM_F_DUMP_INTR,
    NLM_F_REQUEST,
    NLMSG_DONE,
    NLMSG_ERROR,
)
from pyroute2.netlink.rtnl import RTM_GETADDR, RTM_GETLINK  # type: ignore[import-untyped]
from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg  # type: ignore[import-untyped]
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg  # type: ignore[import-untyped]

IPInterface = IPv4Interface | IPv6Interface

_DUMP_RETRIES = 5


def _error(code: int, what: str) -> OSError:
    return OSError(code, f"{os.strerror(code)}: {what}")


class Rtnl:
    """One NETLINK_ROUTE socket for requests (subscribed to no group).

    Bound to the network namespace of the thread that creates it.
    """

    def __init__(self) -> None:
        self._sock: Any = IPRSocket(groups=0)
        self._seq = 0

    def __enter__(self) -> Rtnl:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._sock.close()

    def _exchange(self, msg: Any, msg_type: int, flags: int, what: str) -> tuple[list[Any], bool]:
        """Send one request; collect its replies up to the ack or the end of the dump."""
        self._seq = self._seq % 0x7FFFFFFF + 1
        seq = self._seq
        self._sock.put(msg, msg_type, msg_flags=NLM_F_REQUEST | flags, msg_seq=seq)
        replies: list[Any] = []
        interrupted = False
        while True:
            for reply in self._sock.get():
                header = reply["header"]
                if header["sequence_number"] != seq:
                    continue  # a late answer to an earlier, abandoned request
                interrupted |= bool(header["flags"] & NLM_F_DUMP_INTR)
                if header["type"] == NLMSG_ERROR:
                    code = -int(reply["error"] or 0)
                    if code:
                        raise _error(code, what)
                    return replies, interrupted
                if header["type"] == NLMSG_DONE:
                    return replies, interrupted
                replies.append(reply)
                if not flags & NLM_F_DUMP and not flags & NLM_F_ACK:
                    return replies, interrupted  # a plain get: one answer

    def request(self, msg: Any, msg_type: int, flags: int = 0, what: str = "") -> None:
        """A change (RTM_NEW*/RTM_DEL*): wait for the kernel's acknowledgement.

        Raises ``OSError`` with the kernel's errno (EEXIST, EADDRNOTAVAIL ...).
        """
        self._exchange(msg, msg_type, flags | NLM_F_ACK, what)

    def get(self, msg: Any, msg_type: int, what: str = "") -> Any:
        """A single-object get (e.g. RTM_GETLINK by name)."""
        replies, _ = self._exchange(msg, msg_type, 0, what)
        if not replies:
            raise _error(errno.ENOENT, what)
        return replies[0]

    def dump(self, msg: Any, msg_type: int, what: str = "") -> list[Any]:
        """A dump, retried when the kernel says it was interrupted by a change."""
        for _ in range(_DUMP_RETRIES):
            replies, interrupted = self._exchange(msg, msg_type, NLM_F_DUMP, what)
            if not interrupted:
                return replies
        return replies

    # -- the two queries the other modules share -----------------------------

    def link(self, ifname: str) -> Any:
        """The RTM_NEWLINK message describing ``ifname``; OSError(ENODEV) if absent."""
        msg = ifinfmsg()
        msg["attrs"] = [("IFLA_IFNAME", ifname)]
        return self.get(msg, RTM_GETLINK, what=f"interface {ifname}")

    def addresses(self, index: int) -> list[AddressEntry]:
        """Every address of interface ``index``, in the kernel's order."""
        entries = []
        for reply in self.dump(ifaddrmsg(), RTM_GETADDR, what=f"addresses of ifindex {index}"):
            if reply["index"] != index:
                continue
            family = reply["family"]
            if family not in (socket.AF_INET, socket.AF_INET6):
                continue
            # IPv4: IFA_LOCAL is the address (IFA_ADDRESS is the peer on p2p links).
            address = reply.get("IFA_LOCAL") or reply.get("IFA_ADDRESS")
            if address is None:
                continue
            flags = reply.get("IFA_FLAGS")
            entries.append(
                AddressEntry(
                    interface=ip_interface(f"{address}/{reply['prefixlen']}"),
                    flags=int(reply["flags"] if flags is None else flags),
                    proto=int(reply.get("IFA_PROTO") or 0),
                )
            )
        return entries


@dataclass(frozen=True, slots=True)
class AddressEntry:
    """One address as the kernel lists it."""

    interface: IPInterface
    flags: int  # IFA_F_* (IFA_FLAGS when present: it holds the bits above 0xff)
    proto: int  # IFA_PROTO: who added it (0 unspecified; kernel: 1 lo, 2 RA, 3 LL)


class RtnlClient:
    """A user of one netlink socket: its own (closed with it) or a borrowed one
    (several users in one namespace can share a socket; its owner closes it)."""

    def __init__(self, rtnl: Rtnl | None = None) -> None:
        self._own_rtnl = rtnl is None
        self.rtnl = Rtnl() if rtnl is None else rtnl

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._own_rtnl:
            self.rtnl.close()
