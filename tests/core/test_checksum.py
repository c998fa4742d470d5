"""The Internet checksum (RFC 1071) shared by CARP and the IPv4 header."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from carpctl.core.checksum import internet_checksum

FAST = settings(max_examples=200, deadline=None)


def _reference(data: bytes) -> int:
    """RFC 1071 the slow, obvious way: end-around carry after every add."""
    if len(data) % 2:
        data = data + b"\x00"
    total = 0
    for i in range(0, len(data), 2):
        total += (data[i] << 8) | data[i + 1]
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def test_rfc1071_example() -> None:
    # RFC 1071 section 3: the words 0001 f203 f4f5 f6f7 sum to 0xddf2.
    assert internet_checksum(bytes.fromhex("0001f203f4f5f6f7")) == ~0xDDF2 & 0xFFFF == 0x220D


def test_edge_values() -> None:
    assert internet_checksum(b"") == 0xFFFF
    assert internet_checksum(b"\x00\x00") == 0xFFFF
    assert internet_checksum(b"\xff\xff") == 0x0000
    assert internet_checksum(b"\xff\xff" * 1000) == 0x0000
    # Carries are folded back in: 0xffff + 0x0001 = 0x1_0000 -> 0x0001.
    assert internet_checksum(b"\xff\xff\x00\x01") == 0xFFFE


def test_odd_length_is_zero_padded() -> None:
    assert internet_checksum(b"\x12") == internet_checksum(b"\x12\x00") == 0xEDFF
    assert internet_checksum(b"\x01\x02\x03") == internet_checksum(b"\x01\x02\x03\x00")


def test_ipv4_header_from_capture() -> None:
    # The IPv4 header of reference 3.4's frame, checksum 0x2d0a included.
    header = bytes.fromhex("45100038ac274000ff702d0ac0000201e0000012")
    assert internet_checksum(header) == 0
    assert internet_checksum(header[:10] + b"\x00\x00" + header[12:]) == 0x2D0A


def test_carp_header_from_reference_3_6() -> None:
    carp = bytes.fromhex("21050007000169c80102030405060708e61db8e5bc612c2139f46db7a9590cc79ee3e0df")
    assert internet_checksum(carp) == 0
    assert internet_checksum(carp[:6] + b"\x00\x00" + carp[8:]) == 0x69C8


def test_does_not_modify_a_mutable_argument() -> None:
    buffer = bytearray(b"\x01\x02\x03")
    assert internet_checksum(buffer) == internet_checksum(b"\x01\x02\x03")  # type: ignore[arg-type]
    assert buffer == bytearray(b"\x01\x02\x03")


@FAST
@given(st.binary(max_size=300))
def test_matches_reference(data: bytes) -> None:
    assert internet_checksum(data) == _reference(data)


@FAST
@given(st.binary(max_size=50), st.binary(max_size=50))
def test_inserting_the_checksum_makes_the_sum_verify(head: bytes, tail: bytes) -> None:
    # A zeroed, word-aligned checksum field anywhere in the buffer.
    if len(head) % 2:
        head += b"\x00"
    checksum = internet_checksum(head + b"\x00\x00" + tail)
    assert internet_checksum(head + checksum.to_bytes(2, "big") + tail) == 0


@FAST
@given(st.binary(min_size=2, max_size=64), st.data())
def test_any_single_bit_flip_is_detected(data: bytes, draw: st.DataObject) -> None:
    even = data[: len(data) - len(data) % 2]
    filled = even + internet_checksum(even).to_bytes(2, "big")
    bit = draw.draw(st.integers(0, len(filled) * 8 - 1))
    flipped = bytearray(filled)
    flipped[bit // 8] ^= 0x80 >> (bit % 8)
    assert internet_checksum(filled) == 0
    assert internet_checksum(bytes(flipped)) != 0


@FAST
@given(st.binary(max_size=64), st.binary(max_size=64))
def test_word_aligned_concatenation_is_additive(a: bytes, b: bytes) -> None:
    # ucarp checks the IPv4 header and the CARP bytes in one sum (reference 2.1).
    if len(a) % 2:
        a += b"\x00"
    ones_sum = (~internet_checksum(a) & 0xFFFF) + (~internet_checksum(b) & 0xFFFF)
    ones_sum = (ones_sum & 0xFFFF) + (ones_sum >> 16)
    assert internet_checksum(a + b) in {~ones_sum & 0xFFFF, (~ones_sum & 0xFFFF) ^ 0xFFFF}
