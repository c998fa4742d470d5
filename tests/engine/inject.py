"""Send hand-made protocol-112 packets to 224.0.0.18 from a lab host.

Run inside a namespace: ``python inject.py IFACE SPEC...`` where each SPEC
is ``ttl:hexpayload``. Used by the bad-input tests.
"""

from __future__ import annotations

import socket
import struct
import sys


def main() -> None:
    interface, specs = sys.argv[1], sys.argv[2:]
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, 112)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, interface.encode())
    index = socket.if_nametoindex(interface)
    sock.setsockopt(
        socket.IPPROTO_IP, socket.IP_MULTICAST_IF, struct.pack("=4s4si", bytes(4), bytes(4), index)
    )
    for spec in specs:
        ttl, payload = spec.split(":")
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, int(ttl))
        sock.sendto(bytes.fromhex(payload), ("224.0.0.18", 0))


if __name__ == "__main__":
    main()
