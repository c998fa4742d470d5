"""The pcap/pcapng reader and the pcap writer."""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from carpctl.capture.pcap import (
    CaptureError,
    CaptureRecord,
    NotACaptureError,
    read_capture,
    write_pcap,
)

VECTORS = Path(__file__).parent.parent / "vectors"
VECTOR_FILES = sorted(VECTORS.glob("*.pcap"))
S1 = VECTORS / "s1_vhid1_secret.pcap"


def records(path: Path) -> list[CaptureRecord]:
    return list(read_capture(path.read_bytes()))


# --- a small pcapng writer, so the reader is tested on files no tool made -------------


def block(kind: int, body: bytes, order: str = "<") -> bytes:
    body += b"\0" * (-len(body) % 4)
    length = 12 + len(body)
    return struct.pack(order + "II", kind, length) + body + struct.pack(order + "I", length)


def shb(order: str = "<") -> bytes:
    return block(0x0A0D0D0A, struct.pack(order + "IHHq", 0x1A2B3C4D, 1, 0, -1), order)


def option(code: int, value: bytes, order: str = "<") -> bytes:
    return struct.pack(order + "HH", code, len(value)) + value + b"\0" * (-len(value) % 4)


def idb(
    linktype: int = 1, tsresol: int | None = None, order: str = "<", tsoffset: int = 0
) -> bytes:
    options = b""
    if tsresol is not None:
        options += option(9, bytes([tsresol]), order)
    if tsoffset:
        options += option(14, struct.pack(order + "q", tsoffset), order)
    if options:
        options += option(0, b"", order)
    return block(1, struct.pack(order + "HHI", linktype, 0, 262144) + options, order)


def epb(
    if_id: int, ticks: int, data: bytes, order: str = "<", orig_len: int | None = None
) -> bytes:
    fields = (if_id, ticks >> 32, ticks & 0xFFFFFFFF, len(data), orig_len or len(data))
    return block(6, struct.pack(order + "IIIII", *fields) + data, order)


def to_pcapng(path: Path, order: str = "<") -> bytes:
    """The records of a classic capture as nanosecond pcapng with a few unknown blocks."""
    out = [shb(order), idb(1, tsresol=9, order=order), block(0x0BAD, b"skip me", order)]
    for record in records(path):
        assert record.time is not None
        out.append(epb(0, round(record.time * 1e9), record.data, order, record.orig_len))
    return b"".join(out)


# --- classic pcap ---------------------------------------------------------------------


def test_vectors_read_as_frames(vector_captures: list[dict[str, object]]) -> None:
    for capture in vector_captures:
        frames = capture["frames"]
        assert isinstance(frames, dict)
        got = records(VECTORS / str(capture["file"]))
        assert len(got) == frames["carp"] + frames["arp"]
        assert all(r.linktype == 1 and not r.cut for r in got)


def test_first_record_of_s1() -> None:
    first, second = records(S1)[:2]
    assert first.time == pytest.approx(1795270261.006497, abs=1e-6)
    assert len(first.data) == first.orig_len == 42  # the gratuitous ARP
    assert second.data.hex().startswith("01005e00001200005e0000010800451000")


def swap_byte_order(data: bytes) -> bytes:
    """A little-endian classic pcap rewritten big-endian."""
    out = [struct.pack(">IHHiIII", *struct.unpack_from("<IHHiIII", data))]
    offset = 24
    while offset < len(data):
        header = struct.unpack_from("<IIII", data, offset)
        out.append(struct.pack(">IIII", *header) + data[offset + 16 : offset + 16 + header[2]])
        offset += 16 + header[2]
    return b"".join(out)


def test_big_endian_pcap_equals_little_endian() -> None:
    assert list(read_capture(swap_byte_order(S1.read_bytes()))) == records(S1)


def test_nanosecond_pcap_by_editcap(tmp_path: Path) -> None:
    if shutil.which("editcap") is None:
        pytest.skip("editcap is not installed")
    out = tmp_path / "ns.pcap"
    subprocess.run(
        ["editcap", "-F", "nsecpcap", str(S1), str(out)], check=True, capture_output=True
    )
    assert out.read_bytes()[:4] == bytes.fromhex("4d3cb2a1")
    got, want = records(out), records(S1)
    assert [r.data for r in got] == [r.data for r in want]
    assert [r.time for r in got] == pytest.approx([r.time for r in want], abs=1e-6)


def test_write_pcap_round_trip_and_snaplen() -> None:
    frames = [(1.5, b"\x45" + bytes(39)), (2.000001, b"abc")]
    got = list(read_capture(write_pcap(frames, 101)))
    assert [(r.linktype, r.data) for r in got] == [(101, frames[0][1]), (101, b"abc")]
    assert [r.time for r in got] == pytest.approx([1.5, 2.000001], abs=1e-7)
    cut = list(read_capture(write_pcap([(0.0, bytes(100))], snaplen=60)))
    assert (len(cut[0].data), cut[0].orig_len, cut[0].cut) == (60, 100, True)


@pytest.mark.parametrize("time", [-1.0, float("nan"), 2.0**32])
def test_write_pcap_refuses_times_it_cannot_store(time: float) -> None:
    with pytest.raises(ValueError, match="timestamp"):
        write_pcap([(time, b"")])


# --- pcapng ---------------------------------------------------------------------------


@pytest.mark.parametrize("order", ["<", ">"])
def test_pcapng_written_here_equals_classic(order: str) -> None:
    got, want = list(read_capture(to_pcapng(S1, order))), records(S1)
    assert [(r.linktype, r.data, r.orig_len) for r in got] == [
        (r.linktype, r.data, r.orig_len) for r in want
    ]
    assert [r.time for r in got] == pytest.approx([r.time for r in want], abs=1e-6)


@pytest.mark.parametrize("path", VECTOR_FILES, ids=lambda p: p.name)
def test_pcapng_from_tshark_equals_classic(path: Path, tmp_path: Path) -> None:
    if shutil.which("tshark") is None:
        pytest.skip("tshark is not installed")
    out = tmp_path / "out.pcapng"
    subprocess.run(
        ["tshark", "-r", str(path), "-w", str(out), "-F", "pcapng"], check=True, capture_output=True
    )
    assert out.read_bytes()[:4] == bytes.fromhex("0a0d0d0a")
    got, want = records(out), records(path)
    assert [(r.linktype, r.data) for r in got] == [(r.linktype, r.data) for r in want]
    assert [r.time for r in got] == pytest.approx([r.time for r in want], abs=1e-6)


def test_pcapng_timestamp_resolutions_offset_and_interfaces() -> None:
    data = b"".join(
        [
            shb(),
            idb(1),  # default: microseconds
            idb(101, tsresol=0x80 | 10, tsoffset=1000),  # 2^-10 s, +1000 s
            epb(0, 1_500_000, b"a"),
            epb(1, 3 * 1024, b"b"),
            block(3, struct.pack("<I", 5) + b"hello"),  # simple packet: interface 0, no time
            block(2, struct.pack("<HHIIII", 1, 0, 0, 2048, 1, 1) + b"c"),  # obsolete packet
            shb(">"),  # a new section resets the interfaces and the byte order
            idb(228, tsresol=3, order=">"),
            epb(0, 2500, b"d", ">"),
        ]
    )
    got = [(r.time, r.linktype, r.data, r.orig_len) for r in read_capture(data)]
    assert got == [
        (1.5, 1, b"a", 1),
        (1003.0, 101, b"b", 1),
        (None, 1, b"hello", 5),
        (1002.0, 101, b"c", 1),
        (2.5, 228, b"d", 1),
    ]


# --- damage ---------------------------------------------------------------------------


def read_until_error(data: bytes) -> tuple[int, str]:
    got: list[CaptureRecord] = []
    with pytest.raises(CaptureError) as caught:
        got.extend(read_capture(data))  # keeps the records yielded before the error
    return len(got), str(caught.value)


def test_truncated_classic_capture_yields_the_records_before_the_damage() -> None:
    data = S1.read_bytes()
    assert read_until_error(data[:-10]) == (
        6,
        "truncated record at byte 484: 70 bytes announced, 60 present",
    )
    assert read_until_error(data[:90]) == (1, "truncated record header at byte 82")


def test_truncated_pcapng_reports_the_block() -> None:
    data = to_pcapng(S1)
    count, message = read_until_error(data[:-3])
    assert count == 6
    assert message.startswith("truncated block at byte ")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "not a pcap or pcapng capture: the file is empty"),
        (b"\xd4\xc3", "not a pcap or pcapng capture: only 2 bytes"),
        (b"GIF89a...", "not a pcap or pcapng capture: unknown magic number 0x47494638"),
        (bytes.fromhex("d4c3b2a1") + bytes(10), "truncated pcap file header: 14 of 24 bytes"),
        (shb()[:8] + b"XXXX" + shb()[12:], "bad pcapng byte-order magic at byte 8"),
    ],
)
def test_not_a_capture(data: bytes, message: str) -> None:
    with pytest.raises(NotACaptureError) as caught:
        list(read_capture(data))
    assert str(caught.value) == message
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (shb() + struct.pack("<II", 6, 13) + bytes(8), "bad pcapng block length 13 at byte 28"),
        (shb() + struct.pack("<III", 6, 12, 16), "pcapng block lengths disagree at byte 28"),
        (shb() + epb(0, 0, b"x"), "packet block for unknown interface 0 at byte 28"),
        (shb() + block(3, b"\1\0\0\0"), "packet block before any interface at byte 28"),
        (shb() + idb() + block(6, bytes(8)), "truncated enhanced packet block at byte 48"),
    ],
)
def test_damaged_pcapng(data: bytes, message: str) -> None:
    assert read_until_error(data) == (0, message)


# --- fuzzing: CaptureError and nothing else -------------------------------------------


def drain(data: bytes) -> None:
    try:
        for record in read_capture(data):
            assert isinstance(record.data, bytes)
            assert record.time is None or record.time >= -(2**63)
    except CaptureError as error:
        assert str(error)
        assert "\n" not in str(error)


PREFIXES = [
    b"",
    bytes.fromhex("d4c3b2a1020004000000000000000000ffff000001000000"),
    shb(),
    shb() + idb(),
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(PREFIXES), st.binary(max_size=300))
def test_arbitrary_bytes_raise_only_capture_error(prefix: bytes, tail: bytes) -> None:
    drain(prefix + tail)


REAL = [p.read_bytes() for p in VECTOR_FILES] + [to_pcapng(S1), to_pcapng(S1, ">")]


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(REAL),
    st.integers(min_value=0, max_value=2000),
    st.lists(st.tuples(st.integers(0, 2000), st.integers(0, 7)), max_size=4),
)
def test_truncated_and_bit_flipped_captures_raise_only_capture_error(
    data: bytes, cut: int, flips: list[tuple[int, int]]
) -> None:
    buffer = bytearray(data[: len(data) - cut % (len(data) + 1)])
    for position, bit in flips:
        if buffer:
            buffer[position % len(buffer)] ^= 1 << bit
    drain(bytes(buffer))
