"""Live capture of CARP traffic on a Linux interface, for ``carpctl sniff``.

``Capture(interface)`` is an ``AF_PACKET`` datagram socket bound to one
interface for every protocol (``ETH_P_ALL``: also what this host sends),
with a classic BPF program attached (``carp_filter``) so the kernel only
queues IP protocol 112 to it: an idle CARP segment costs one wake-up per
advertisement whatever else the link carries. The filter is attached before
the socket is bound, so no unfiltered frame is ever queued. The interface is
never put in promiscuous mode unless asked; the socket joins CARP's two
link-layer groups (``01:00:5e:00:00:12``, ``33:33:00:00:00:12``) so a NIC's
multicast filter lets advertisements through. Both are undone when the
socket closes.

Each frame becomes a ``CaptureRecord`` of link type Linux cooked v1 (the
socket address gives the sender's MAC, whatever the link), so the decoder is
exactly ``inspect``'s: ``report.inspect_record``.

The rest is pure: ``watch`` (the frame loop over any ``PacketSource``),
``Sightings`` (per vhid and source: counts, last seen, rate), the filter
program and its Python twin ``passes``.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import socket
import struct
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from carpctl.capture.frames import ETHERTYPE_IPV4, ETHERTYPE_IPV6, LINKTYPE_LINUX_SLL
from carpctl.capture.pcap import CaptureRecord
from carpctl.capture.report import Credentials, Inspection, inspect_record
from carpctl.capture.summary import Tally
from carpctl.core import wire

# Linux constants the socket module (3.11) does not all name.
ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_ADD_MEMBERSHIP = 1
PACKET_STATISTICS = 6
PACKET_MR_MULTICAST = 0
PACKET_MR_PROMISC = 1
SO_ATTACH_FILTER = 26
SO_TIMESTAMPNS = 35  # also SCM_TIMESTAMPNS (asm-generic; x86, arm, riscv ...)
ARPHRD_ETHER = 1

CARP_GROUP_MACS = (bytes.fromhex("01005e000012"), bytes.fromhex("333300000012"))
SNAPLEN = 0xFFFF + 40  # the largest IPv4 datagram, or IPv6 payload + its header
_TIMESPEC = struct.Struct("@ll")
_COOKED = struct.Struct("!HHH8sH")
_IPV6_EXTENSIONS = (0, 43, 60)  # hop-by-hop, routing, destination options: the decoder skips them


class NoSuchInterface(LookupError):
    """The interface does not exist (in this network namespace)."""

    def __init__(self, interface: str) -> None:
        super().__init__(f"there is no interface named {interface!r} in this network namespace")
        self.interface = interface


# -- the kernel filter ---------------------------------------------------------


class Instruction(NamedTuple):
    """One classic BPF instruction (``struct sock_filter``)."""

    code: int
    jt: int
    jf: int
    k: int


BPF_LDH_ABS = 0x28  # A = 16 bits at k
BPF_LDB_ABS = 0x30  # A = 8 bits at k
BPF_JEQ_K = 0x15  # A == k ? skip jt : skip jf
BPF_RET_K = 0x06
SKF_AD_PROTOCOL = 0xFFFFF000  # SKF_AD_OFF + SKF_AD_PROTOCOL: the frame's EtherType
SKF_NET_OFF = 0xFFF00000  # offsets from here count from the IP header, whatever the link


def carp_filter(snaplen: int = SNAPLEN) -> tuple[Instruction, ...]:
    """Accept IPv4 protocol 112, IPv6 next header 112 (or an extension header
    the decoder looks past); drop everything else. Link-layer independent."""
    accept, drop = Instruction(BPF_RET_K, 0, 0, snaplen), Instruction(BPF_RET_K, 0, 0, 0)
    return (
        Instruction(BPF_LDH_ABS, 0, 0, SKF_AD_PROTOCOL),  # 0
        Instruction(BPF_JEQ_K, 0, 2, ETHERTYPE_IPV4),  # 1: -> 2, else -> 4
        Instruction(BPF_LDB_ABS, 0, 0, SKF_NET_OFF + 9),  # 2: IPv4 protocol
        Instruction(BPF_JEQ_K, 6, 7, wire.IPPROTO_CARP),  # 3: -> 10, else -> 11
        Instruction(BPF_JEQ_K, 0, 6, ETHERTYPE_IPV6),  # 4: -> 5, else -> 11
        Instruction(BPF_LDB_ABS, 0, 0, SKF_NET_OFF + 6),  # 5: IPv6 next header
        Instruction(BPF_JEQ_K, 3, 0, wire.IPPROTO_CARP),  # 6: -> 10
        Instruction(BPF_JEQ_K, 2, 0, _IPV6_EXTENSIONS[0]),  # 7: -> 10
        Instruction(BPF_JEQ_K, 1, 0, _IPV6_EXTENSIONS[1]),  # 8: -> 10
        Instruction(BPF_JEQ_K, 0, 1, _IPV6_EXTENSIONS[2]),  # 9: -> 10, else -> 11
        accept,  # 10
        drop,  # 11
    )


def assemble(program: Sequence[Instruction]) -> bytes:
    """The program as an array of ``struct sock_filter``."""
    return b"".join(struct.pack("=HBBI", *instruction) for instruction in program)


def passes(ethertype: int, packet: bytes | memoryview) -> bool:
    """What ``carp_filter`` accepts, in Python (used when it cannot be attached)."""
    if ethertype == ETHERTYPE_IPV4:
        return len(packet) > 9 and packet[9] == wire.IPPROTO_CARP
    if ethertype == ETHERTYPE_IPV6:
        return len(packet) > 6 and packet[6] in (wire.IPPROTO_CARP, *_IPV6_EXTENSIONS)
    return False


def attach_filter(sock: socket.socket, program: Sequence[Instruction]) -> None:
    """``SO_ATTACH_FILTER``: the kernel copies the program; the buffer may go after."""
    code = ctypes.create_string_buffer(assemble(program))
    fprog = struct.pack("@HP", len(program), ctypes.addressof(code))  # struct sock_fprog
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)


# -- frames to records (pure) --------------------------------------------------


def cooked_frame(address: tuple[Any, ...], packet: bytes) -> bytes:
    """``packet`` behind a Linux cooked (SLL v1) header made from its socket address.

    ``address`` is what ``recvmsg`` gives on an ``AF_PACKET`` socket:
    ``(ifname, protocol, pkttype, hatype, hwaddr)``.
    """
    _, protocol, pkttype, hatype, hwaddr = address
    return _COOKED.pack(pkttype, hatype, len(hwaddr), bytes(hwaddr[:8]), protocol) + packet


def timestamp_of(ancdata: Sequence[tuple[int, int, bytes]]) -> float | None:
    """The kernel's receive time from ``SCM_TIMESTAMPNS`` ancillary data."""
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(data) >= _TIMESPEC.size:
            seconds, nanoseconds = _TIMESPEC.unpack_from(data)
            return float(seconds + nanoseconds / 1e9)
    return None


def record_of(
    address: tuple[Any, ...],
    packet: bytes,
    ancdata: Sequence[tuple[int, int, bytes]] = (),
    now: Callable[[], float] = time.time,
) -> CaptureRecord:
    """One received datagram as the capture record ``inspect`` reads."""
    frame = cooked_frame(address, packet)
    stamp = timestamp_of(ancdata)
    return CaptureRecord(now() if stamp is None else stamp, LINKTYPE_LINUX_SLL, frame, len(frame))


# -- the socket ----------------------------------------------------------------


def interface_index(interface: str) -> int:
    try:
        return socket.if_nametoindex(interface)
    except (OSError, ValueError):
        raise NoSuchInterface(interface) from None


def _membership(index: int, kind: int, address: bytes = b"") -> bytes:
    return struct.pack("@iHH8s", index, kind, len(address), address)  # struct packet_mreq


class Capture:
    """An ``AF_PACKET`` socket on one interface that yields protocol-112 frames.

    Raises ``NoSuchInterface``, ``PermissionError`` (not root: no
    ``CAP_NET_RAW``) or another ``OSError``.
    """

    def __init__(self, interface: str, *, promisc: bool = False, kernel_filter: bool = True):
        self.interface = interface
        index = interface_index(interface)
        # Protocol 0: the socket receives nothing until bound, after the filter is in place.
        self._sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, 0)
        try:
            self.kernel_filter = False
            if kernel_filter:
                with contextlib.suppress(OSError):  # then ``passes`` filters in Python
                    attach_filter(self._sock, carp_filter())
                    self.kernel_filter = True
            with contextlib.suppress(OSError):  # then the time of reading
                self._sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            for group in CARP_GROUP_MACS:
                with contextlib.suppress(OSError):  # a link without Ethernet addresses
                    self._sock.setsockopt(
                        SOL_PACKET,
                        PACKET_ADD_MEMBERSHIP,
                        _membership(index, PACKET_MR_MULTICAST, group),
                    )
            if promisc:
                self._sock.setsockopt(
                    SOL_PACKET, PACKET_ADD_MEMBERSHIP, _membership(index, PACKET_MR_PROMISC)
                )
            try:
                self._sock.bind((interface, ETH_P_ALL))
            except OSError as error:
                if error.errno == errno.ENODEV:
                    raise NoSuchInterface(interface) from None
                raise
        except BaseException:
            self._sock.close()
            raise
        self._buffer = bytearray(SNAPLEN)
        self._ancillary = socket.CMSG_SPACE(_TIMESPEC.size)
        self.frames = 0  # frames the kernel handed over (past its filter)
        self.drops = 0  # frames the kernel dropped: the socket's queue was full

    def receive(self, timeout: float | None) -> CaptureRecord | None:
        """The next protocol-112 frame, or ``None`` when ``timeout`` passes first."""
        self._sock.settimeout(timeout)
        try:
            size, ancdata, _, address = self._sock.recvmsg_into([self._buffer], self._ancillary)
        except TimeoutError:
            return None
        self.frames += 1
        packet = bytes(memoryview(self._buffer)[:size])
        if not self.kernel_filter and not passes(address[1], packet):
            return None
        return record_of(address, packet, ancdata)

    def statistics(self) -> tuple[int, int]:
        """(packets, drops) the kernel counted since the last call (``PACKET_STATISTICS``)."""
        with contextlib.suppress(OSError):
            packets, drops = struct.unpack(
                "@II", self._sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8)
            )
            self.drops += drops
            return packets, drops
        return 0, 0

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> Capture:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


# -- the frame loop (pure: any PacketSource, any clock) ------------------------


class PacketSource(Protocol):
    def receive(self, timeout: float | None) -> CaptureRecord | None: ...


@dataclass(frozen=True, slots=True)
class Tick:
    """A periodic summary is due."""

    at: float  # on the loop's clock


def watch(
    source: PacketSource,
    sightings: Sightings,
    *,
    credentials: Credentials | None = None,
    count: int | None = None,
    timeout: float | None = None,
    every: float | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Iterator[Inspection | Tick]:
    """Inspect what ``source`` receives, recording it in ``sightings``.

    Yields each protocol-112 packet's ``Inspection`` and, with ``every``, a
    ``Tick`` every that many seconds; ends after ``count`` packets or when
    ``timeout`` seconds have passed.
    """
    start = clock()
    deadline = None if timeout is None else start + timeout
    next_tick = None if every is None else start + every
    shown = 0
    while count is None or shown < count:
        now = clock()
        if deadline is not None and now >= deadline:
            return
        if next_tick is not None and every is not None and now >= next_tick:
            while next_tick <= now:  # a slow reader skips ticks rather than bunching them
                next_tick += every
            yield Tick(now)
            continue
        waits = [t - now for t in (deadline, next_tick) if t is not None]
        record = source.receive(min(waits) if waits else None)
        if record is None:
            continue
        inspection = inspect_record(record, credentials)
        if inspection is None:
            continue
        sightings.add(inspection)
        shown += 1
        yield inspection


# -- what was seen (pure) ------------------------------------------------------


@dataclass(slots=True)
class SourceSeen:
    """One sender of one vhid: its last advertisement's fields and its timing."""

    src: str
    first: float
    last: float
    packets: int = 0
    src_mac: str | None = None
    ttl: int | None = None
    advbase: int | None = None
    advskew: int | None = None
    demote: int | None = None
    hmac: str = "unchecked"  # the last packet's verdict
    hmac_ok: int = 0
    hmac_bad: int = 0
    problems: int = 0  # packets a receiver would drop

    @property
    def interval(self) -> float | None:
        """Mean seconds between its advertisements (``None`` before the second)."""
        if self.packets < 2 or self.last <= self.first:
            return None
        return (self.last - self.first) / (self.packets - 1)

    @property
    def rate(self) -> float | None:
        """Advertisements per second."""
        interval = self.interval
        return None if interval is None else 1 / interval

    @property
    def expected_interval(self) -> float | None:
        """What advbase and advskew announce: advbase + advskew / 256 seconds."""
        if self.advbase is None or self.advskew is None:
            return None
        return self.advbase + self.advskew / 256

    def as_json(self) -> dict[str, object]:
        interval, rate = self.interval, self.rate
        return {
            "src": self.src,
            "src_mac": self.src_mac,
            "packets": self.packets,
            "advbase": self.advbase,
            "advskew": self.advskew,
            "demote": self.demote,
            "ttl": self.ttl,
            "hmac": self.hmac,
            "hmac_ok": self.hmac_ok,
            "hmac_bad": self.hmac_bad,
            "problems": self.problems,
            "first_seen": self.first,
            "last_seen": self.last,
            "interval": None if interval is None else round(interval, 6),
            "expected_interval": self.expected_interval,
            "rate": None if rate is None else round(rate, 6),
        }


@dataclass(slots=True)
class Sightings:
    """Everything ``watch`` saw: the totals (``Tally``) and, per vhid, each source."""

    started: float  # wall clock
    tally: Tally = field(default_factory=Tally)
    vhids: dict[int, dict[str, SourceSeen]] = field(default_factory=dict)

    def add(self, inspection: Inspection) -> None:
        self.tally.add(inspection)
        i = inspection
        if not i.carp or i.vhid is None or i.src is None:
            return
        at = self.started if i.time is None else i.time
        sources = self.vhids.setdefault(i.vhid, {})
        seen = sources.get(i.src)
        if seen is None:
            seen = sources[i.src] = SourceSeen(i.src, first=at, last=at)
        seen.packets += 1
        seen.last = max(seen.last, at)
        seen.src_mac, seen.ttl, seen.hmac = i.src_mac, i.ttl, i.hmac
        seen.advbase, seen.advskew, seen.demote = i.advbase, i.advskew, i.demote
        seen.hmac_ok += i.hmac == "ok"
        seen.hmac_bad += i.hmac == "bad"
        seen.problems += not i.ok

    def latest(self, vhid: int) -> SourceSeen:
        """The source that advertised ``vhid`` last (normally its master)."""
        return max(self.vhids[vhid].values(), key=lambda seen: seen.last)

    def as_json(self, now: float) -> dict[str, object]:
        t = self.tally
        return {
            "started": self.started,
            "duration": round(max(0.0, now - self.started), 6),
            "packets": t.packets,
            "carp": t.carp,
            "ok": t.ok,
            "bad_checksum": t.bad_checksum,
            "hmac_failures": t.hmac_failures,
            "truncated": t.truncated,
            "not_carp": t.not_carp,
            "vhids": [
                {
                    "vhid": vhid,
                    "latest": self.latest(vhid).src,
                    "sources": [seen.as_json() for seen in self.vhids[vhid].values()],
                }
                for vhid in sorted(self.vhids)
            ],
        }
