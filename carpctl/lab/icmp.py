"""ICMP echo every few milliseconds, run inside a lab namespace.

``python -m carpctl.lab.icmp TARGET [--interval S] [--timeout S] [--once]``
prints one JSON line per reply::

    {"event": "reply", "seq": 7, "sent": T, "received": T, "rtt_ms": 0.2,
     "from": "198.51.100.100", "mac": "aa:bb:..."}

Times are CLOCK_MONOTONIC (``time.monotonic()``, the same clock in every
process of the machine), so the lab can compare them with the moment it
failed a node. ``mac`` is the Ethernet source of the reply, read from an
AF_PACKET socket: it tells which node answered. ``--once`` stops at the
first reply (exit 0) or after ``--timeout`` (exit 1): the lab's ``ping``.
IPv4 and IPv6; targets outside the lab's address ranges are refused.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import selectors
import signal
import socket
import struct
import sys
import time
from collections.abc import Sequence
from types import FrameType
from typing import Any

from carpctl.lab.netns import LabError, check_address

ETH_P_IP = 0x0800
ETH_P_IPV6 = 0x86DD
PACKET_OUTGOING = 4
MAGIC = b"carplab!"
ECHO = {4: (8, 0), 6: (128, 129)}  # family: (request type, reply type)

Reply = tuple[int, float, str]  # seq, sent time, source address


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def echo_request(family: int, ident: int, seq: int, sent: float) -> bytes:
    payload = MAGIC + struct.pack("!d", sent)
    kind, seq = ECHO[family][0], seq & 0xFFFF
    header = struct.pack("!BBHHH", kind, 0, 0, ident, seq)
    if family == 6:
        return header + payload  # the kernel fills in the ICMPv6 checksum
    return struct.pack("!BBHHH", kind, 0, checksum(header + payload), ident, seq) + payload


def parse_reply(family: int, packet: bytes, ident: int) -> Reply | None:
    """(seq, sent time, source) of one of our echo replies in an IP packet, else None."""
    if family == 4:
        if len(packet) < 20 or packet[0] >> 4 != 4 or packet[9] != 1:
            return None
        start, source = (packet[0] & 0x0F) * 4, str(ipaddress.IPv4Address(packet[12:16]))
    else:
        if len(packet) < 40 or packet[0] >> 4 != 6 or packet[6] != 58:
            return None
        start, source = 40, str(ipaddress.IPv6Address(packet[8:24]))
    icmp = packet[start:]
    if len(icmp) < 8 + len(MAGIC) + 8 or icmp[0] != ECHO[family][1]:
        return None
    got_ident, seq = struct.unpack("!HH", icmp[4:8])
    if got_ident != ident or icmp[8 : 8 + len(MAGIC)] != MAGIC:
        return None
    (sent,) = struct.unpack("!d", icmp[8 + len(MAGIC) : 16 + len(MAGIC)])
    return seq, sent, source


def emit(event: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


class Echo:
    """One target: a raw ICMP socket to send, an AF_PACKET socket to see who replied."""

    def __init__(self, target: str, interface: str) -> None:
        self.address = ipaddress.ip_address(target)
        check_address(f"{self.address}/{self.address.max_prefixlen}")  # never outside the lab
        self.family = self.address.version
        self.ident = os.getpid() & 0xFFFF
        self.seq = self.sent = self.send_errors = 0
        self.seen: set[tuple[int, float]] = set()  # (seq, sent): seq wraps at 65536
        self.selector = selectors.DefaultSelector()
        if self.family == 4:
            raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
            ethertype = ETH_P_IP
        else:
            raw = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
            ethertype = ETH_P_IPV6
        raw.setblocking(False)
        self.raw = raw
        self.selector.register(raw, selectors.EVENT_READ, "raw")
        self.sniffer: socket.socket | None = None
        try:
            sniffer = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ethertype))
            sniffer.bind((interface, ethertype))
            sniffer.setblocking(False)
            self.selector.register(sniffer, selectors.EVENT_READ, "packet")
            self.sniffer = sniffer
        except OSError:
            pass  # replies are still seen on the raw socket, without their MAC

    def send(self) -> None:
        self.seq += 1
        packet = echo_request(self.family, self.ident, self.seq, time.monotonic())
        try:
            self.raw.sendto(packet, (str(self.address), 0))
            self.sent += 1
        except OSError:  # no neighbour, link down ...: this request is lost
            self.send_errors += 1

    def receive(self, wait: float) -> None:
        """Wait up to ``wait`` seconds and emit every new reply."""
        for key, _ in self.selector.select(max(0.0, wait)):
            sock: socket.socket = key.fileobj  # type: ignore[assignment]
            while True:
                try:
                    data, peer = sock.recvfrom(65535)
                except (BlockingIOError, InterruptedError):
                    break
                self._handle(key.data, data, peer, time.monotonic())

    def _handle(self, kind: str, data: bytes, peer: Any, received: float) -> None:
        mac = ""
        if kind == "raw":
            if self.sniffer is not None:
                return  # the sniffer reports the replies, with their MAC
            if self.family == 4:
                reply = parse_reply(4, data, self.ident)
            else:  # a raw ICMPv6 socket delivers no IP header: fake one
                fake = bytes([0x60]) + bytes(5) + bytes([58]) + bytes(33)
                reply = parse_reply(6, fake + data, self.ident)
                if reply is not None:
                    reply = (reply[0], reply[1], str(peer[0]).split("%")[0])
        else:
            if peer[2] == PACKET_OUTGOING:
                return
            reply = parse_reply(self.family, data, self.ident)
            mac = ":".join(f"{b:02x}" for b in peer[4][:6])
        if reply is None or reply[:2] in self.seen:
            return
        self.seen.add(reply[:2])
        emit(
            {
                "event": "reply",
                "seq": reply[0],
                "sent": reply[1],
                "received": received,
                "rtt_ms": round((received - reply[1]) * 1000, 3),
                "from": reply[2],
                "mac": mac,
            }
        )


def run(target: str, interval: float, timeout: float, once: bool, interface: str) -> int:
    echo = Echo(target, interface)
    stopping = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    now = time.monotonic()
    deadline = now + timeout if timeout > 0 else float("inf")
    next_send = now
    while not stopping and now < deadline and not (once and echo.seen):
        if now >= next_send:
            echo.send()
            next_send = max(next_send + interval, now)
        echo.receive(min(next_send, deadline) - time.monotonic())
        now = time.monotonic()
    emit(
        {"event": "done", "sent": echo.sent, "replies": len(echo.seen), "errors": echo.send_errors}
    )
    return 0 if echo.seen else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m carpctl.lab.icmp", description=__doc__)
    parser.add_argument("target", help="an address in the lab's ranges")
    parser.add_argument("--interval", type=float, default=0.01, help="seconds between requests")
    parser.add_argument("--timeout", type=float, default=0.0, help="stop after this (0: never)")
    parser.add_argument("--once", action="store_true", help="stop at the first reply")
    parser.add_argument("--interface", default="lab0", help="where the replies arrive")
    args = parser.parse_args(argv)
    try:
        return run(args.target, args.interval, args.timeout, args.once, args.interface)
    except (LabError, ValueError, OSError) as error:
        print(f"icmp: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
