"""An in-memory network of CARP engines under virtual time.

Hosts hold one VhidMachine per vhid and a Receiver; advertisements travel
as real IPv4/IPv6 datagrams (built with carpctl.core.ip) with a fixed
latency, through the same decode/verify path a socket feeds. No sockets,
no sleeps: ``run_until`` jumps from one deadline to the next.
"""

from __future__ import annotations

import heapq
import itertools
import random
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address, ip_address

from carpctl.core import ip
from carpctl.core.effects import (
    AssignAddresses,
    Effect,
    ReleaseAddresses,
    SendAdvertisement,
    SplitBrainSeen,
    State,
    StateChanged,
)
from carpctl.core.errors import RemoteProtocolError
from carpctl.core.machine import VhidMachine
from carpctl.core.receiver import Receiver
from carpctl.core.vhid import VhidConfig

GROUP4 = IPv4Address("224.0.0.18")
GROUP6 = IPv6Address("ff02::12")


@dataclass(frozen=True)
class Change:
    at: float
    host: str
    vhid: int
    old: State
    new: State
    reason: str


@dataclass
class Host:
    name: str
    address4: IPv4Address
    address6: IPv6Address
    machines: dict[int, VhidMachine]
    receiver: Receiver
    alive: bool = False  # running and connected
    holds: set[int] = field(default_factory=set)  # vhids whose addresses we hold
    sent: list[tuple[float, SendAdvertisement]] = field(default_factory=list)
    split_brain: int = 0


class Network:
    def __init__(self, latency: float = 0.001, seed: int = 1) -> None:
        self.now = 0.0
        self.latency = latency
        self.hosts: dict[str, Host] = {}
        self.changes: list[Change] = []
        self.rejected: list[tuple[str, RemoteProtocolError]] = []
        self._queue: list[tuple[float, int, str, bytes]] = []
        self._seq = itertools.count()
        self._partition: dict[str, int] = {}
        self._rng = random.Random(seed)

    # -- building ----------------------------------------------------------

    def add_host(self, name: str, index: int, *configs: VhidConfig) -> Host:
        machines = {
            c.vhid: VhidMachine(c, random_counter=lambda: self._rng.getrandbits(64))
            for c in configs
        }
        host = Host(
            name,
            IPv4Address(f"198.51.100.{index}"),
            IPv6Address(f"fe80::{index}"),
            machines,
            Receiver(machines.values()),
        )
        for m in machines.values():
            m.source_addresses = {4: host.address4, 6: host.address6}
        self.hosts[name] = host
        self._partition[name] = 0
        return host

    # -- faults and operations ---------------------------------------------

    def start(self, name: str) -> None:
        host = self.hosts[name]
        host.alive = True
        for m in host.machines.values():
            self._perform(host, m.link_up(self.now))

    def crash(self, name: str) -> None:
        """kill -9 plus link loss: the host falls silent, holding whatever it held."""
        self.hosts[name].alive = False

    def stop(self, name: str) -> None:
        """Graceful stop: bow-out advertisements go out, then silence."""
        host = self.hosts[name]
        for m in host.machines.values():
            self._perform(host, m.shutdown(self.now))
        host.alive = False

    def restart(self, name: str) -> None:
        """A crashed host comes back with fresh engines (its old state is gone)."""
        host = self.hosts[name]
        configs = [m.config for m in host.machines.values()]
        fresh = self.add_host(name, int(host.address4.packed[3]), *configs)
        fresh.holds.clear()
        self.start(name)

    def demote(self, name: str, vhid: int, demotion: int) -> None:
        host = self.hosts[name]
        self._perform(host, host.machines[vhid].set_demotion(demotion, self.now))

    def partition(self, *groups: list[str]) -> None:
        for number, group in enumerate(groups, start=1):
            for name in group:
                self._partition[name] = number

    def heal(self) -> None:
        self._partition = dict.fromkeys(self._partition, 0)

    def inject(self, name: str, datagram: bytes) -> None:
        """Deliver a hand-made datagram to one host now (bad-input tests)."""
        self._deliver(self.hosts[name], datagram)

    # -- running -----------------------------------------------------------

    def run_until(self, end: float) -> None:
        while True:
            candidates: list[tuple[float, int, str]] = []
            for host in self.hosts.values():
                if not host.alive:
                    continue
                for vhid, m in host.machines.items():
                    timer = m.get_timer()
                    if timer is not None:
                        candidates.append((timer, 1, f"{host.name}/{vhid}"))
            if self._queue:
                candidates.append((self._queue[0][0], 0, ""))
            if not candidates:
                break
            at, kind, what = min(candidates)
            if at > end:
                break
            self.now = max(self.now, at)
            if kind == 0:
                _, _, name, datagram = heapq.heappop(self._queue)
                if self.hosts[name].alive:
                    self._deliver(self.hosts[name], datagram)
            else:
                name, vhid = what.split("/")
                host = self.hosts[name]
                self._perform(host, host.machines[int(vhid)].handle_timer(self.now))
        self.now = end

    def _deliver(self, host: Host, datagram: bytes) -> None:
        try:
            effects = host.receiver.receive_datagram(datagram, self.now)
        except RemoteProtocolError as error:
            self.rejected.append((host.name, error))
            return
        self._perform(host, effects)

    def _perform(self, host: Host, effects: list[Effect]) -> None:
        for effect in effects:
            if isinstance(effect, StateChanged):
                self.changes.append(
                    Change(self.now, host.name, effect.vhid, effect.old, effect.new, effect.reason)
                )
            elif isinstance(effect, SendAdvertisement):
                host.sent.append((self.now, effect))
                self._broadcast(host, effect)
            elif isinstance(effect, AssignAddresses):
                host.holds.add(effect.vhid)
            elif isinstance(effect, ReleaseAddresses):
                host.holds.discard(effect.vhid)
            elif isinstance(effect, SplitBrainSeen):
                host.split_brain += 1

    def _broadcast(self, sender: Host, ad: SendAdvertisement) -> None:
        if ad.family == 4:
            datagram = ip.build_ipv4(sender.address4, GROUP4, ad.payload)
        else:
            datagram = ip.build_ipv6(sender.address6, GROUP6, ad.payload)
        for host in self.hosts.values():
            if host is sender or self._partition[host.name] != self._partition[sender.name]:
                continue
            heapq.heappush(
                self._queue, (self.now + self.latency, next(self._seq), host.name, datagram)
            )

    # -- observing ---------------------------------------------------------

    def masters(self, vhid: int = 1) -> list[str]:
        return sorted(
            h.name
            for h in self.hosts.values()
            if h.alive and h.machines[vhid].state is State.MASTER
        )

    def state(self, name: str, vhid: int = 1) -> State:
        return self.hosts[name].machines[vhid].state

    def changes_of(self, name: str, vhid: int = 1) -> list[Change]:
        return [c for c in self.changes if c.host == name and c.vhid == vhid]


def vhid(
    number: int = 1,
    *,
    advskew: int = 0,
    advbase: int = 1,
    preempt: bool = False,
    password: str = "secret",
    addresses: tuple[str, ...] = ("198.51.100.100",),
    **kwargs: object,
) -> VhidConfig:
    return VhidConfig(
        vhid=number,
        addresses=tuple(ip_address(a) for a in addresses),
        advbase=advbase,
        advskew=advskew,
        key=password.encode()[:19],
        preempt=preempt,
        **kwargs,  # type: ignore[arg-type]
    )
