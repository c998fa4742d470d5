"""What a node puts on the wire, captured by tcpdump on its switch port.

tcpdump runs in the lab's switch namespace on the node's bridge port
(``lab1`` for node1), inbound only (``-Q in``): exactly the frames the node
sent, time-stamped by the kernel when the veth hands them over (veth ports
offer only the ``host`` time stamp type, so no ``-j adapter_unsynced``).
Time stamps are the real-time clock; they are moved onto ``time.monotonic()``
(the prober's and the lab's clock) with the offset between the two clocks
measured when the capture starts and again when it stops.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass
from ipaddress import IPv4Address
from pathlib import Path

from carpctl.capture.pcap import LINKTYPE_ETHERNET, CaptureError, read_capture
from carpctl.lab import Cluster, LabError
from carpctl.lab.topology import SWITCH

IPPROTO_CARP = 112  # VRRP uses the same protocol number and group
ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_ARP = 0x0806


@dataclass(frozen=True)
class Frame:
    time: float  # time.monotonic() of the capture
    kind: str  # "advert" (CARP or VRRP) or "garp" (ARP announcing an address)
    src: str  # the IPv4 source, or the announced address for a GARP
    vhid: int  # CARP vhid / VRRP VRID (0 for a GARP)
    byte2: int  # CARP advskew / VRRP priority
    byte5: int  # CARP advbase / VRRP advertisement interval


def clock_offset() -> float:
    """``time.time() - time.monotonic()``, from the tightest of a few readings."""
    best: tuple[float, float] | None = None
    for _ in range(5):
        before = time.monotonic()
        real = time.time()
        after = time.monotonic()
        if best is None or after - before < best[0]:
            best = (after - before, real - (before + after) / 2)
    assert best is not None
    return best[1]


def parse(data: bytes, offset: float) -> list[Frame]:
    """Adverts and gratuitous ARPs of a pcap file; ``offset`` as ``clock_offset``."""
    frames: list[Frame] = []
    try:
        for record in read_capture(data):
            if record.linktype != LINKTYPE_ETHERNET or record.time is None:
                continue
            frame = _frame(record.data, record.time - offset)
            if frame is not None:
                frames.append(frame)
    except CaptureError:
        pass  # a record cut short by the stop: everything before it was read
    return frames


def _frame(data: bytes, when: float) -> Frame | None:
    ethertype = int.from_bytes(data[12:14], "big") if len(data) >= 14 else 0
    if ethertype == ETHERTYPE_IPV4 and len(data) >= 34:
        ip = data[14:]
        header = (ip[0] & 0x0F) * 4
        payload = ip[header:]
        if ip[9] != IPPROTO_CARP or len(payload) < 8:
            return None
        src = str(IPv4Address(ip[12:16]))
        return Frame(when, "advert", src, payload[1], payload[2], payload[5])
    if ethertype == ETHERTYPE_ARP and len(data) >= 42:
        arp = data[14:42]
        sender, target = arp[14:18], arp[24:28]
        if sender == target:
            return Frame(when, "garp", str(IPv4Address(sender)), 0, 0, 0)
    return None


class Capture:
    """tcpdump on one node's switch port while the ``with`` block runs."""

    def __init__(self, lab: Cluster, host: str, directory: Path, everything: bool = False) -> None:
        """``everything``: both directions and ICMP too (a diagnostic record)."""
        port = "labc" if host == "client" else f"lab{lab.nodes.index(host) + 1}"
        self.lab, self.host, self.port = lab, host, port  # the lab's port names
        self.everything = everything
        self.path = directory / f"{host}.pcap"
        self.log = directory / f"{host}.tcpdump.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._offsets: list[float] = []
        self.frames: list[Frame] = []

    def start(self) -> Capture:
        direction, expression = ("inout", "ip") if self.everything else ("in", "ip proto 112")
        argv = [
            shutil.which("tcpdump") or "tcpdump", "-i", self.port, "-Q", direction, "-n", "-U",
            "--immediate-mode", "-s", "128", "-Z", "root", "-w", str(self.path),
            f"{expression} or arp",
        ]  # fmt: skip
        with self.log.open("wb") as log:
            self._process = self.lab.net.spawn(
                self.lab.namespace(SWITCH), argv, stdout=log, stderr=log, detach=True
            )
        deadline = time.monotonic() + 10
        while "listening on" not in self.log.read_text(errors="replace"):
            if self._process.poll() is not None or time.monotonic() > deadline:
                raise LabError(f"tcpdump on {self.port}: {self.log.read_text().strip()}")
            time.sleep(0.02)
        self._offsets.append(clock_offset())
        return self

    def stop(self) -> list[Frame]:
        if self._process is not None:
            self._offsets.append(clock_offset())
            time.sleep(0.2)  # --immediate-mode, -U: the last packets are written by now
            self.lab.net.stop(self._process, timeout=5)
            self._process = None
            offset = sum(self._offsets) / len(self._offsets)
            data = self.path.read_bytes() if self.path.exists() else b""
            self.frames = parse(data, offset)
        return self.frames

    @property
    def drift_ms(self) -> float:
        """How far the two clocks moved apart while capturing."""
        return (max(self._offsets) - min(self._offsets)) * 1000 if self._offsets else 0.0

    def __enter__(self) -> Capture:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def adverts(frames: list[Frame], src: str, vhid: int | None = None) -> list[float]:
    return [
        f.time for f in frames if f.kind == "advert" and f.src == src and vhid in (None, f.vhid)
    ]


def garps(frames: list[Frame], address: str) -> list[float]:
    return [f.time for f in frames if f.kind == "garp" and f.src == address]
