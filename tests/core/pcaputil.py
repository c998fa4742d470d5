"""A minimal classic-pcap reader for the codec tests (not the product's reader).

Handles both byte orders and both timestamp resolutions of the classic
libpcap format, Ethernet link type only, and peels the Ethernet (and any
802.1Q) header off IPv4/IPv6 frames.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

LINKTYPE_ETHERNET = 1
ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_IPV6 = 0x86DD
_VLAN_TPIDS = {0x8100, 0x88A8}
_MAGICS = {
    b"\xd4\xc3\xb2\xa1": ("<", 1_000_000),
    b"\xa1\xb2\xc3\xd4": (">", 1_000_000),
    b"\x4d\x3c\xb2\xa1": ("<", 1_000_000_000),
    b"\xa1\xb2\x3c\x4d": (">", 1_000_000_000),
}


@dataclass(frozen=True, slots=True)
class Frame:
    index: int  # 0-based position in the file
    timestamp: float
    data: bytes  # the captured bytes (may be fewer than the original length)

    @property
    def ethertype(self) -> int:
        return _split_ethernet(self.data)[0]

    @property
    def ip(self) -> bytes:
        """The bytes after the Ethernet (and VLAN) header."""
        return _split_ethernet(self.data)[1]

    @property
    def src_mac(self) -> bytes:
        return self.data[6:12]

    @property
    def dst_mac(self) -> bytes:
        return self.data[0:6]


def _split_ethernet(frame: bytes) -> tuple[int, bytes]:
    if len(frame) < 14:
        raise ValueError(f"short Ethernet frame: {len(frame)} bytes")
    offset = 12
    ethertype = int.from_bytes(frame[offset : offset + 2], "big")
    while ethertype in _VLAN_TPIDS:
        offset += 4
        ethertype = int.from_bytes(frame[offset : offset + 2], "big")
    return ethertype, frame[offset + 2 :]


def read_pcap(path: Path) -> list[Frame]:
    """All frames of a classic pcap file with Ethernet link type."""
    data = path.read_bytes()
    if len(data) < 24 or data[:4] not in _MAGICS:
        raise ValueError(f"{path}: not a classic pcap file")
    endian, ticks = _MAGICS[data[:4]]
    _major, _minor, _zone, _sigfigs, _snaplen, linktype = struct.unpack_from(
        endian + "HHiIII", data, 4
    )
    if linktype != LINKTYPE_ETHERNET:
        raise ValueError(f"{path}: link type {linktype}, expected Ethernet")
    record = struct.Struct(endian + "IIII")
    frames: list[Frame] = []
    offset = 24
    while offset < len(data):
        if offset + record.size > len(data):
            raise ValueError(f"{path}: truncated record header at {offset}")
        seconds, fraction, incl_len, _orig_len = record.unpack_from(data, offset)
        offset += record.size
        if offset + incl_len > len(data):
            raise ValueError(f"{path}: truncated record at {offset}")
        frames.append(
            Frame(len(frames), seconds + fraction / ticks, data[offset : offset + incl_len])
        )
        offset += incl_len
    return frames
