"""Linux implementations of the engine's ports, built from carpctl.io."""

from __future__ import annotations

from collections.abc import Sequence

from carpctl.core.effects import IPAddress
from carpctl.core.ledger import Ledger
from carpctl.daemon.config import Config, VhidSection
from carpctl.daemon.engine import Engine
from carpctl.daemon.ports import Packet, VirtualAddress
from carpctl.io.addresses import AddressTable
from carpctl.io.announce import Announcer
from carpctl.io.carp_socket import CarpSocket
from carpctl.io.links import Links, LinkWatcher
from carpctl.io.macvlan import VirtualMacs
from carpctl.io.rtnl import Rtnl


class LinuxInterfaces:
    """Addresses via netlink, announcements via AF_PACKET / ICMPv6."""

    def __init__(self, virtual: Sequence[VirtualAddress]) -> None:
        self._rtnl = Rtnl()  # one netlink socket for addresses, links and macvlans
        self._table = AddressTable(self._rtnl)
        self._links = Links(self._rtnl)
        self._virtual = [a.ip for a in virtual]
        self._announcers: dict[str, Announcer] = {}
        self._macs = VirtualMacs(self._rtnl)

    def is_up(self, ifname: str) -> bool:
        try:
            return self._links.is_up(ifname)
        except OSError:
            return False  # no such interface (yet): INIT until it appears

    def own_addresses(self, ifname: str) -> Sequence[IPAddress]:
        try:
            return [i.ip for i in self._links.own_addresses(ifname, exclude=self._virtual)]
        except OSError:
            return []

    def add_addresses(self, ifname: str, addresses: Sequence[VirtualAddress]) -> None:
        self._table.add(ifname, addresses)

    def remove_addresses(self, ifname: str, addresses: Sequence[VirtualAddress]) -> None:
        self._table.remove(ifname, addresses)

    def remove_stale(self, ifname: str, addresses: Sequence[VirtualAddress]) -> None:
        self._table.remove_stale(ifname, addresses)

    def ensure_virtual_mac(self, parent: str, vhid: int) -> str:
        return self._macs.ensure(parent, vhid)

    def set_link(self, ifname: str, up: bool) -> None:
        self._macs.set_up(ifname, up)

    def delete_link(self, ifname: str) -> None:
        announcer = self._announcers.pop(ifname, None)
        if announcer is not None:
            announcer.close()
        self._macs.delete(ifname)

    def announce(self, ifname: str, addresses: Sequence[VirtualAddress]) -> None:
        announcer = self._announcers.setdefault(ifname, Announcer(ifname))
        announcer.announce([a.ip for a in addresses], mac=self._links.mac(ifname))


class LinuxWire:
    """A CarpSocket seen through the engine's ``Wire`` port."""

    def __init__(self, sock: CarpSocket) -> None:
        self._sock = sock

    def fileno(self) -> int:
        return self._sock.fileno()

    def receive(self) -> list[Packet]:
        return [Packet(r.payload, r.family, r.src, r.ttl) for r in self._sock.receive()]

    def send(self, payload: bytes, peer: IPAddress | None = None) -> None:
        self._sock.send(payload)  # a unicast peer is fixed when the socket is opened

    def close(self) -> None:
        self._sock.close()


def shared_peer(vhids: Sequence[VhidSection], ifname: str, family: int) -> IPAddress | None:
    """The unicast peer of an interface's vhids for one family (one socket each)."""
    peers = {v.peer for v in vhids if v.interface == ifname and v.peer and v.peer.version == family}
    if len(peers) > 1:
        raise ValueError(
            f"vhids on {ifname} name different IPv{family} peers: one peer per interface"
        )
    return peers.pop() if peers else None


def open_engine(config: Config, ledger: Ledger | None = None) -> Engine:
    virtual = [a for v in config.vhids for a in v.addresses]
    vips = [a.ip for a in virtual]

    def open_wire(ifname: str, family: int) -> LinuxWire:
        peer = shared_peer(config.vhids, ifname, family)
        return LinuxWire(CarpSocket.open(ifname, family, peer=peer, exclude=vips))

    watcher = LinkWatcher({v.interface for v in config.vhids})
    return Engine(config, LinuxInterfaces(virtual), open_wire, watcher, ledger)
