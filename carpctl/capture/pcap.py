"""Read classic pcap and pcapng captures from bytes; write classic pcap.

Sans-I/O: ``read_capture`` takes the whole file as ``bytes`` and yields
``CaptureRecord`` values. Damage (a truncated record, a bad block length,
an unknown interface) stops the iteration with one ``CaptureError`` after the
records before it were yielded; no other exception escapes on any input.

Formats: classic pcap in both byte orders with micro- or nanosecond
timestamps; pcapng sections in both byte orders with Interface Description
(``if_tsresol``, ``if_tsoffset``), Enhanced, Simple and obsolete Packet
blocks. Other pcapng blocks are skipped.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101

_PCAP_MAGIC_US = 0xA1B2C3D4
_PCAP_MAGIC_NS = 0xA1B23C4D
_PCAPNG_SHB = 0x0A0D0D0A
_PCAPNG_BOM = 0x1A2B3C4D
_PCAPNG_IDB = 1
_PCAPNG_OPB = 2  # obsolete Packet Block
_PCAPNG_SPB = 3
_PCAPNG_EPB = 6
_OPT_IF_TSRESOL = 9
_OPT_IF_TSOFFSET = 14
_DEFAULT_SNAPLEN = 262144


class CaptureError(ValueError):
    """The capture is not a pcap/pcapng file, or it is damaged at ``offset``."""

    def __init__(self, message: str, offset: int = 0) -> None:
        super().__init__(message)
        self.offset = offset


class NotACaptureError(CaptureError):
    """The data does not start like a pcap or pcapng file at all."""


@dataclass(frozen=True, slots=True)
class CaptureRecord:
    """One captured frame."""

    time: float | None  # seconds since the epoch; None for pcapng Simple Packet Blocks
    linktype: int
    data: bytes  # the captured bytes (may be shorter than the frame: snap length)
    orig_len: int  # the frame's length on the wire

    @property
    def cut(self) -> bool:
        """True when the capture kept fewer bytes than the frame had."""
        return self.orig_len > len(self.data)


def read_capture(data: bytes) -> Iterator[CaptureRecord]:
    """Yield the records of a classic pcap or pcapng capture, in file order."""
    if len(data) < 4:
        raise NotACaptureError(
            "not a pcap or pcapng capture: the file is empty"
            if not data
            else f"not a pcap or pcapng capture: only {len(data)} bytes"
        )
    magic_le = int.from_bytes(data[:4], "little")
    if magic_le == _PCAPNG_SHB:
        yield from _read_pcapng(data)
        return
    for order in ("<", ">"):
        (magic,) = struct.unpack_from(order + "I", data)
        if magic in (_PCAP_MAGIC_US, _PCAP_MAGIC_NS):
            yield from _read_pcap(data, order, 1e-9 if magic == _PCAP_MAGIC_NS else 1e-6)
            return
    raise NotACaptureError(f"not a pcap or pcapng capture: unknown magic number 0x{data[:4].hex()}")


def _read_pcap(data: bytes, order: str, tick: float) -> Iterator[CaptureRecord]:
    if len(data) < 24:
        raise NotACaptureError(f"truncated pcap file header: {len(data)} of 24 bytes")
    major, _minor, _zone, _sigfigs, _snaplen, network = struct.unpack_from(
        order + "HHiIII", data, 4
    )
    if major != 2:
        raise NotACaptureError(f"unsupported pcap format version {major}")
    linktype = network & 0xFFFF  # the upper bits carry FCS information
    record = struct.Struct(order + "IIII")
    offset = 24
    while offset < len(data):
        if len(data) - offset < record.size:
            raise CaptureError(f"truncated record header at byte {offset}", offset)
        seconds, fraction, incl_len, orig_len = record.unpack_from(data, offset)
        start = offset + record.size
        if incl_len > len(data) - start:
            raise CaptureError(
                f"truncated record at byte {offset}: {incl_len} bytes announced, "
                f"{len(data) - start} present",
                offset,
            )
        yield CaptureRecord(
            time=seconds + fraction * tick,
            linktype=linktype,
            data=data[start : start + incl_len],
            orig_len=orig_len,
        )
        offset = start + incl_len


@dataclass(slots=True)
class _Interface:
    linktype: int
    snaplen: int
    divisor: int = 1_000_000  # ticks per second
    offset: int = 0  # if_tsoffset, seconds


def _read_pcapng(data: bytes) -> Iterator[CaptureRecord]:
    order = "<"
    interfaces: list[_Interface] = []
    offset = 0
    while offset < len(data):
        if len(data) - offset < 12:
            raise CaptureError(f"truncated block header at byte {offset}", offset)
        block_type = int.from_bytes(data[offset : offset + 4], "little")
        if block_type == _PCAPNG_SHB:
            bom = data[offset + 8 : offset + 12]
            if bom == _PCAPNG_BOM.to_bytes(4, "little"):
                order = "<"
            elif bom == _PCAPNG_BOM.to_bytes(4, "big"):
                order = ">"
            else:
                error = NotACaptureError if offset == 0 else CaptureError
                raise error(f"bad pcapng byte-order magic at byte {offset + 8}", offset)
            interfaces = []
        else:
            (block_type,) = struct.unpack_from(order + "I", data, offset)
        (length,) = struct.unpack_from(order + "I", data, offset + 4)
        if length < 12 or length % 4:
            raise CaptureError(f"bad pcapng block length {length} at byte {offset}", offset)
        if length > len(data) - offset:
            raise CaptureError(
                f"truncated block at byte {offset}: {length} bytes announced, "
                f"{len(data) - offset} present",
                offset,
            )
        (trailer,) = struct.unpack_from(order + "I", data, offset + length - 4)
        if trailer != length:
            raise CaptureError(f"pcapng block lengths disagree at byte {offset}", offset)
        body = data[offset + 8 : offset + length - 4]
        if block_type == _PCAPNG_SHB:
            major = struct.unpack_from(order + "H", body, 4)[0] if len(body) >= 6 else 0
            if major != 1:
                raise CaptureError(f"unsupported pcapng version {major} at byte {offset}", offset)
        elif block_type == _PCAPNG_IDB:
            interfaces.append(_interface(body, order, offset))
        elif block_type in (_PCAPNG_EPB, _PCAPNG_OPB, _PCAPNG_SPB):
            yield _packet(block_type, body, order, interfaces, offset)
        offset += length


def _interface(body: bytes, order: str, offset: int) -> _Interface:
    if len(body) < 8:
        raise CaptureError(f"truncated interface description at byte {offset}", offset)
    linktype, _reserved, snaplen = struct.unpack_from(order + "HHI", body)
    interface = _Interface(linktype=linktype, snaplen=snaplen)
    position = 8
    while len(body) - position >= 4:
        code, size = struct.unpack_from(order + "HH", body, position)
        value = body[position + 4 : position + 4 + size]
        if code == 0 or len(value) < size:  # opt_endofopt, or a damaged option list
            break
        if code == _OPT_IF_TSRESOL and size >= 1:
            exponent = value[0] & 0x7F
            interface.divisor = 2**exponent if value[0] & 0x80 else 10**exponent
        elif code == _OPT_IF_TSOFFSET and size >= 8:
            interface.offset = struct.unpack_from(order + "q", value)[0]
        position += 4 + (size + 3) // 4 * 4
    return interface


def _packet(
    block_type: int, body: bytes, order: str, interfaces: list[_Interface], offset: int
) -> CaptureRecord:
    if block_type == _PCAPNG_SPB:
        if not interfaces:
            raise CaptureError(f"packet block before any interface at byte {offset}", offset)
        if len(body) < 4:
            raise CaptureError(f"truncated simple packet block at byte {offset}", offset)
        (orig_len,) = struct.unpack_from(order + "I", body)
        size = min(orig_len, len(body) - 4)
        if interfaces[0].snaplen:
            size = min(size, interfaces[0].snaplen)
        return CaptureRecord(None, interfaces[0].linktype, body[4 : 4 + size], orig_len)
    if block_type == _PCAPNG_EPB:
        fields = struct.Struct(order + "IIIII")
        name = "enhanced"
    else:
        fields = struct.Struct(order + "HHIIII")
        name = "obsolete"
    if len(body) < fields.size:
        raise CaptureError(f"truncated {name} packet block at byte {offset}", offset)
    if_id, *rest = fields.unpack_from(body)
    ts_high, ts_low, captured, orig_len = rest[-4:]
    if if_id >= len(interfaces):
        raise CaptureError(f"packet block for unknown interface {if_id} at byte {offset}", offset)
    if captured > len(body) - fields.size:
        raise CaptureError(f"packet block overruns its block at byte {offset}", offset)
    interface = interfaces[if_id]
    ticks = ts_high << 32 | ts_low
    return CaptureRecord(
        time=interface.offset + ticks / interface.divisor,
        linktype=interface.linktype,
        data=body[fields.size : fields.size + captured],
        orig_len=orig_len,
    )


def write_pcap(
    records: Iterable[tuple[float, bytes]],
    linktype: int = LINKTYPE_ETHERNET,
    *,
    snaplen: int = _DEFAULT_SNAPLEN,
) -> bytes:
    """A classic little-endian, microsecond pcap file of ``(time, frame)`` records.

    Frames longer than ``snaplen`` are cut, keeping their original length.
    """
    if not 0 <= linktype <= 0xFFFF:
        raise ValueError(f"link type must be 0..65535, got {linktype}")
    if snaplen < 1:
        raise ValueError(f"snap length must be positive, got {snaplen}")
    out = [struct.pack("<IHHiIII", _PCAP_MAGIC_US, 2, 4, 0, 0, snaplen, linktype)]
    for time, frame in records:
        if not 0 <= time < 1 << 32:  # also refuses NaN
            raise ValueError(f"time {time} does not fit a pcap timestamp")
        micros = round(time * 1_000_000)
        kept = frame[:snaplen]
        out.append(
            struct.pack("<IIII", micros // 1_000_000, micros % 1_000_000, len(kept), len(frame))
        )
        out.append(kept)
    return b"".join(out)
