"""The embedded CARP engine: the core's machines driven by one asyncio loop.

Thin on purpose: it feeds packets, link events and timer expiries into the
sans-I/O machines and performs the effects they return. Protocol time is the
loop's monotonic clock; ledger entries carry wall-clock time (they are shown
to people and persisted). All OS work goes through the small interfaces of
``carpctl.daemon.ports``.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from ipaddress import IPv4Address
from typing import Any

from carpctl.core.effects import (
    Announce,
    AssignAddresses,
    Effect,
    IPAddress,
    ReleaseAddresses,
    SendAdvertisement,
    SplitBrainSeen,
    State,
    StateChanged,
)
from carpctl.core.errors import RemoteProtocolError
from carpctl.core.ledger import Entry, Ledger, SendErrorTracker, Source
from carpctl.core.machine import VhidMachine
from carpctl.core.receiver import Receiver
from carpctl.core.vhid import VhidConfig
from carpctl.daemon import logs
from carpctl.daemon.config import Config, VhidSection
from carpctl.daemon.ports import Interfaces, LinkEvents, VirtualAddress, Wire

StateListener = Callable[["VirtualHost", StateChanged], object]


@dataclass(eq=False)
class VirtualHost:
    """One configured vhid at run time."""

    section: VhidSection
    machine: VhidMachine
    senderr: SendErrorTracker = field(default_factory=SendErrorTracker)
    timer: asyncio.TimerHandle | None = None
    split_brain: int = 0  # sightings of a less preferred master while we were MASTER
    last_split_brain: float | None = None  # monotonic time of the last sighting
    virtual_mac_interface: str | None = None  # holds the addresses when virtual_mac

    @property
    def address_interface(self) -> str:
        """Where the virtual addresses go: the vhid's macvlan, or the parent."""
        return self.virtual_mac_interface or self.section.interface

    @property
    def name(self) -> str:
        return self.section.name

    @property
    def addresses(self) -> list[VirtualAddress]:
        return list(self.section.addresses)


def machine_config(section: VhidSection, preempt: bool) -> VhidConfig:
    return VhidConfig(
        vhid=section.vhid,
        addresses=tuple(a.ip for a in section.addresses),
        advbase=section.advbase,
        advskew=section.advskew,
        key=section.key,
        preempt=preempt,
        timing=section.timing,
    )


class Engine:
    def __init__(
        self,
        config: Config,
        interfaces: Interfaces,
        open_wire: Callable[[str, int], Wire],
        link_events: LinkEvents | None = None,
        ledger: Ledger | None = None,
    ) -> None:
        self.config = config
        self.interfaces = interfaces
        self._open_wire = open_wire
        self.link_events = link_events
        self.ledger = ledger if ledger is not None else Ledger()
        self.hosts = [
            VirtualHost(v, VhidMachine(machine_config(v, config.carp.preempt)))
            for v in config.vhids
        ]
        self.receivers: dict[str, Receiver] = {}
        self._by_vhid: dict[str, dict[int, VirtualHost]] = {}
        self._own: dict[str, list[IPAddress]] = {}  # each interface's own addresses, in order
        self._unicast = {h.section.interface for h in self.hosts if h.section.peer is not None}
        self.wires: dict[tuple[str, int], Wire] = {}
        self.sent: Counter[str] = Counter()
        self.send_errors: Counter[str] = Counter()
        self.listeners: list[StateListener] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._log = logs.get()
        self._limiter = logs.RateLimiter()

    # -- life cycle ---------------------------------------------------------

    @property
    def started(self) -> bool:
        return self._loop is not None

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Open sockets, clean up after a previous run, and bring vhids up."""
        self._loop = loop
        for ifname in sorted({h.section.interface for h in self.hosts}):
            # A crashed run may have left our addresses behind: start clean.
            mine = [a for h in self.hosts if h.section.interface == ifname for a in h.addresses]
            self.interfaces.remove_stale(ifname, mine)
        for host in self.hosts:
            self._attach(host)
        if self.link_events is not None:
            loop.add_reader(self.link_events.fileno(), self._on_link_events)
        for host in self.hosts:
            self._link_changed(host, self.interfaces.is_up(host.section.interface))
        self.apply_demotion()

    def _attach(self, host: VirtualHost) -> None:
        """Give a vhid its virtual MAC, source addresses, receiver entry and sockets."""
        assert self._loop is not None
        ifname, vhid = host.section.interface, host.section.vhid
        if host.section.virtual_mac:
            name = self.interfaces.ensure_virtual_mac(ifname, vhid)
            self.interfaces.set_link(name, False)
            self.interfaces.remove_stale(name, host.addresses)
            host.virtual_mac_interface = name
        receiver = self.receivers.get(ifname)
        if receiver is None:
            own = list(self.interfaces.own_addresses(ifname))
            receiver = Receiver((), allow=self.config.carp.allow, own_addresses=own)
            self.receivers[ifname] = receiver
        host.machine.source_addresses = {
            4 if isinstance(a, IPv4Address) else 6: a
            for a in reversed(list(receiver.own_addresses))
        }
        receiver.machines[vhid] = host.machine
        self._by_vhid.setdefault(ifname, {})[vhid] = host
        if host.section.peer is not None:
            self._unicast.add(ifname)
        for family in host.machine.config.families:
            if (ifname, family) not in self.wires:
                wire = self._open_wire(ifname, family)
                self.wires[ifname, family] = wire
                self._loop.add_reader(wire.fileno(), self._on_readable, ifname, wire)

    # -- reload -------------------------------------------------------------

    def add_vhid(self, section: VhidSection) -> None:
        """A vhid added by a reload: it starts in BACKUP like at boot."""
        host = VirtualHost(section, VhidMachine(machine_config(section, self.config.carp.preempt)))
        self.interfaces.remove_addresses(section.interface, host.addresses)  # not remove_stale:
        self.hosts.append(host)  # that would take the other vhids' addresses too
        self._attach(host)
        self._link_changed(host, self.interfaces.is_up(section.interface))
        self.apply_demotion()

    def remove_vhid(self, name: str) -> None:
        """A vhid removed by a reload: a master bows out and releases its addresses."""
        host = next(h for h in self.hosts if h.name == name)
        self._perform(host, host.machine.shutdown(self._now()))
        if host.timer is not None:
            host.timer.cancel()
        if host.virtual_mac_interface is not None:
            self._os_call("delete", host, self.interfaces.delete_link, host.address_interface)
        ifname, vhid = host.section.interface, host.section.vhid
        self.receivers[ifname].machines.pop(vhid, None)
        self._by_vhid[ifname].pop(vhid, None)
        self.hosts.remove(host)
        self.ledger.remove(f"ifdown:{name}")
        self.ledger.remove(f"senderr:{name}")
        self.apply_demotion()

    def set_preempt(self, preempt: bool) -> None:
        for host in self.hosts:
            host.machine.config = replace(host.machine.config, preempt=preempt)

    def shutdown(self) -> None:
        """Graceful stop: masters bow out (255/255), then addresses are released."""
        for host in self.hosts:
            self._perform(host, host.machine.shutdown(self._now()))
            if host.timer is not None:
                host.timer.cancel()
            if host.virtual_mac_interface is not None:
                self._os_call("delete", host, self.interfaces.delete_link, host.address_interface)
        assert self._loop is not None
        for wire in self.wires.values():
            self._loop.remove_reader(wire.fileno())
            wire.close()
        if self.link_events is not None:
            self._loop.remove_reader(self.link_events.fileno())
            self.link_events.close()

    # -- inputs -------------------------------------------------------------

    def now(self) -> float:
        """The loop's monotonic clock: protocol time."""
        return self._now()

    def _now(self) -> float:
        assert self._loop is not None
        return self._loop.time()

    def _on_readable(self, ifname: str, wire: Wire) -> None:
        receiver, by_vhid = self.receivers[ifname], self._by_vhid[ifname]
        check_ttl = ifname not in self._unicast  # FreeBSD skips it for unicast peers
        for packet in wire.receive():
            try:
                effects = receiver.receive(
                    packet.payload,
                    family=packet.family,
                    src=packet.src,
                    ttl=packet.ttl,
                    now=self._now(),
                    check_ttl=check_ttl,
                )
            except RemoteProtocolError as error:
                self._log_drop(ifname, packet.src, error)
                continue
            # No effects: at most a master-down deadline moved later, which the
            # armed timer handles lazily (see _reschedule).
            if effects:
                self._perform(by_vhid[effects[0].vhid], effects)

    def _on_timer(self, host: VirtualHost) -> None:
        host.timer = None
        self._perform(host, host.machine.handle_timer(self._now()))

    def _on_link_events(self) -> None:
        assert self.link_events is not None
        for ifname, up in self.link_events.drain():
            for host in self.hosts:
                if host.section.interface == ifname:
                    self._link_changed(host, up)
        self.apply_demotion()

    def _link_changed(self, host: VirtualHost, up: bool) -> None:
        now = self._now()
        name = f"ifdown:{host.name}"
        usable = up and self.config.carp.allow
        if usable:
            self.ledger.remove(name)
            self._perform(host, host.machine.link_up(now))
        else:
            factor = self.config.carp.ifdown_demotion_factor
            reason = "interface down" if not up else "carp.allow is off"
            self.ledger.set(Entry(name, Source.IFDOWN, factor, time.time(), reason=reason))
            self._perform(host, host.machine.link_down(now))

    def apply_demotion(self) -> None:
        """Give every vhid the ledger's total (a master re-advertises at once)."""
        total = self.ledger.total
        for host in self.hosts:
            if host.machine.demotion != total:
                self._perform(host, host.machine.set_demotion(total, self._now()))

    # -- effects ------------------------------------------------------------

    def _perform(self, host: VirtualHost, effects: list[Effect]) -> None:
        """Packets and addresses first, in order; then logs and listeners."""
        ifname = host.section.interface
        deferred = [e for e in effects if isinstance(e, StateChanged | SplitBrainSeen)]
        for effect in effects:
            if isinstance(effect, SendAdvertisement):
                self._send(host, effect)
            elif isinstance(effect, AssignAddresses):
                self._assign(host, True)
            elif isinstance(effect, ReleaseAddresses):
                self._assign(host, False)
            elif isinstance(effect, Announce):
                self._os_call(
                    "announce",
                    host,
                    self.interfaces.announce,
                    host.address_interface,
                    host.addresses,
                )
        self._reschedule(host)
        for effect in deferred:
            if isinstance(effect, StateChanged):
                self._log.info(
                    "state changed",
                    vhid=host.section.vhid,
                    interface=ifname,
                    old=effect.old.name,
                    new=effect.new.name,
                    reason=str(effect.reason),
                )
                for listener in self.listeners:
                    listener(host, effect)
            elif isinstance(effect, SplitBrainSeen):
                host.split_brain += 1
                host.last_split_brain = self._now()
                self._log.warning(
                    "another master is advertising",
                    vhid=host.section.vhid,
                    interface=ifname,
                    peer=str(effect.peer),
                    advbase=effect.advbase,
                    advskew=effect.advskew,
                )

    def _send(self, host: VirtualHost, ad: SendAdvertisement) -> None:
        wire = self.wires[host.section.interface, ad.family]
        peer = (
            host.section.peer
            if host.section.peer and host.section.peer.version == ad.family
            else None
        )
        try:
            wire.send(ad.payload, peer)
            ok = True
            self.sent[host.name] += 1
        except OSError as error:
            ok = False
            self.send_errors[host.name] += 1
            self._log_limited(
                f"senderr:{host.name}",
                "advertisement not sent",
                vhid=host.section.vhid,
                interface=host.section.interface,
                error=error.strerror or str(error),
            )
        if host.senderr.record(ok):
            name = f"senderr:{host.name}"
            if host.senderr.demoted:
                factor = self.config.carp.senderr_demotion_factor
                self.ledger.set(
                    Entry(name, Source.SENDERR, factor, self._now(), reason="send errors")
                )
            else:
                self.ledger.remove(name)
            assert self._loop is not None
            self._loop.call_soon(self.apply_demotion)

    def _assign(self, host: VirtualHost, assign: bool) -> None:
        """Add or remove the addresses (raising or lowering a virtual MAC around them)."""
        ifname, vmac = host.address_interface, host.virtual_mac_interface is not None
        if assign:
            if vmac:
                self._os_call("raise", host, self.interfaces.set_link, ifname, True)
            self._os_call(
                "add addresses", host, self.interfaces.add_addresses, ifname, host.addresses
            )
        else:
            self._os_call(
                "remove addresses", host, self.interfaces.remove_addresses, ifname, host.addresses
            )
            if vmac:
                self._os_call("lower", host, self.interfaces.set_link, ifname, False)

    def _os_call(
        self, what: str, host: VirtualHost, call: Callable[..., object], *args: Any
    ) -> None:
        try:
            call(*args)
        except OSError as error:
            self._log.error(
                f"cannot {what}",
                vhid=host.section.vhid,
                interface=host.section.interface,
                error=error.strerror or str(error),
            )

    def _reschedule(self, host: VirtualHost) -> None:
        """Arm the host's timer for its machine's next deadline, lazily.

        A timer already armed for an earlier moment is kept: when it fires,
        the machine does nothing if nothing is due and the timer is armed
        again. So the advertisement a backup hears every second costs no
        timer churn (with 255 vhids that churn was most of a backup's CPU).
        """
        deadline = host.machine.get_timer()
        if host.timer is not None:
            if deadline is not None and host.timer.when() <= deadline:
                return
            host.timer.cancel()
            host.timer = None
        if deadline is not None and self._loop is not None:
            host.timer = self._loop.call_at(deadline, self._on_timer, host)

    # -- logging ------------------------------------------------------------

    def _log_drop(self, ifname: str, src: object, error: RemoteProtocolError) -> None:
        if self.config.carp.log >= 2:
            self._log_limited(
                f"drop:{ifname}:{error.reason}",
                "packet dropped",
                interface=ifname,
                src=str(src),
                reason=str(error.reason),
                detail=str(error),
            )

    def _log_limited(self, key: str, event: str, **fields: Any) -> None:
        allowed, suppressed = self._limiter.allow(key, self._now())
        if allowed:
            if suppressed:
                fields["suppressed"] = suppressed
            self._log.warning(event, **fields)

    # -- status -------------------------------------------------------------

    def masters(self) -> list[str]:
        return [h.name for h in self.hosts if h.machine.state is State.MASTER]
