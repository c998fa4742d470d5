"""The 36-byte CARP header: encode, parse, decode and its typed drop reasons."""

from __future__ import annotations

import struct
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carpctl.core import wire
from carpctl.core.checksum import internet_checksum
from carpctl.core.errors import DropReason, LocalProtocolError, RemoteProtocolError

FAST = settings(max_examples=200, deadline=None)

# Reference 3.6: vhid 5, advbase 1, advskew 0, counter 0102030405060708.
REF_3_6 = bytes.fromhex(
    "21050007000169c8 0102030405060708 e61db8e5bc612c2139f46db7a9590cc79ee3e0df"
)
REF_3_6_HEADER = wire.CarpHeader(
    vhid=5,
    advbase=1,
    advskew=0,
    counter=0x0102030405060708,
    digest=bytes.fromhex("e61db8e5bc612c2139f46db7a9590cc79ee3e0df"),
)

headers = st.builds(
    wire.CarpHeader,
    vhid=st.integers(1, 255),
    advbase=st.integers(0, 255),
    advskew=st.integers(0, 255),
    counter=st.integers(0, 2**64 - 1),
    digest=st.binary(min_size=20, max_size=20),
    demote=st.integers(0, 255),
)


def _with_checksum(unsummed: bytes) -> bytes:
    """Fill in a valid CARP checksum over the first 36 bytes (bytes 6-7)."""
    raw = bytearray(unsummed)
    raw[6:8] = b"\x00\x00"
    raw[6:8] = internet_checksum(bytes(raw[:36])).to_bytes(2, "big")
    return bytes(raw)


def _reason(payload: bytes) -> RemoteProtocolError:
    with pytest.raises(RemoteProtocolError) as info:
        wire.decode(payload)
    return info.value


# --- constants and layout -------------------------------------------------


def test_constants() -> None:
    assert wire.CARP_HEADER_LEN == 36
    assert wire.CARP_VERSION == 2
    assert wire.CARP_TYPE_ADVERTISEMENT == 1
    assert wire.CARP_AUTHLEN == 7 == (8 + 20) // 4
    assert wire.DIGEST_LEN == 20
    assert wire.IPPROTO_CARP == 112
    assert wire.CARP_IPV4_GROUP == "224.0.0.18"
    assert wire.CARP_IPV6_GROUP == "ff02::12"
    assert wire.CARP_TTL == 255


def test_encode_reference_3_6() -> None:
    encoded = wire.encode(REF_3_6_HEADER)
    assert encoded == REF_3_6
    assert encoded[6:8] == b"\x69\xc8"
    assert wire.decode(encoded) == replace(REF_3_6_HEADER, checksum=0x69C8)


def test_encode_layout() -> None:
    header = wire.CarpHeader(
        vhid=0xAB,
        advbase=0xCD,
        advskew=0xEF,
        counter=0x1122334455667788,
        digest=bytes(range(20)),
        demote=0x99,
    )
    data = wire.encode(header)
    assert len(data) == 36
    assert data[0] == 0x21
    assert data[1:6] == bytes([0xAB, 0xEF, 7, 0x99, 0xCD])  # vhid advskew authlen demote advbase
    assert data[8:16] == bytes.fromhex("1122334455667788")  # high word first
    assert data[16:] == bytes(range(20))
    assert internet_checksum(data) == 0


def test_encode_ignores_the_checksum_field() -> None:
    assert wire.encode(replace(REF_3_6_HEADER, checksum=0x1234)) == REF_3_6


def test_reference_3_5_headers_decode() -> None:
    s2 = bytes.fromhex(
        "212a640700 02bb36 78c984c5071efe7c f8bcaa4f2ca3333d860bd268e19c40f15840e63b"
    )
    s3 = bytes.fromhex(
        "21fff00700 01b445 8118f64cc9d23d3c b2394b577d460846f9fe9062c91b431e2baf75d5"
    )
    h2, h3 = wire.decode(s2), wire.decode(s3)
    assert (h2.vhid, h2.advskew, h2.advbase, h2.checksum) == (42, 100, 2, 0xBB36)
    assert (h3.vhid, h3.advskew, h3.advbase, h3.checksum) == (255, 240, 1, 0xB445)
    assert h2.counter == 0x78C984C5071EFE7C
    assert h3.counter == 0x8118F64CC9D23D3C
    assert wire.encode(h2) == s2
    assert wire.encode(h3) == s3


def test_bow_out() -> None:
    assert replace(REF_3_6_HEADER, advbase=255, advskew=255).is_bow_out
    assert not replace(REF_3_6_HEADER, advbase=255, advskew=254).is_bow_out
    assert not replace(REF_3_6_HEADER, advbase=254, advskew=255).is_bow_out
    assert not REF_3_6_HEADER.is_bow_out


# --- round trip -----------------------------------------------------------


@FAST
@given(headers)
def test_round_trip(header: wire.CarpHeader) -> None:
    data = wire.encode(header)
    assert len(data) == 36
    assert wire.checksum_ok(data)
    decoded = wire.decode(data)
    assert decoded == replace(header, checksum=int.from_bytes(data[6:8], "big"))
    assert wire.parse(data) == decoded
    assert wire.encode(decoded) == data


@FAST
@given(headers, st.binary(min_size=1, max_size=40))
def test_trailing_bytes_are_ignored(header: wire.CarpHeader, trailer: bytes) -> None:
    # The kernels sum and read exactly 36 bytes (reference 2.1).
    data = wire.encode(header)
    assert wire.decode(data + trailer) == wire.decode(data)
    assert wire.checksum_ok(data + trailer)


@FAST
@given(
    headers,
    st.sampled_from(["version", "type", "authlen"]),
    st.integers(0, 255),
)
def test_parse_reports_fields_without_judging(
    header: wire.CarpHeader, field: str, value: int
) -> None:
    if field in {"version", "type"}:
        value &= 0x0F
    odd = replace(header, **{field: value})  # type: ignore[arg-type]
    parsed = wire.parse(wire.encode(odd))
    assert getattr(parsed, field) == value
    assert replace(parsed, checksum=0) == odd


# --- encode refuses what the wire cannot carry ----------------------------


@pytest.mark.parametrize(
    "changes",
    [
        {"vhid": 0},  # 1..255 (reference 2 and 4.12)
        {"vhid": 256},
        {"vhid": -1},
        {"advbase": 256},
        {"advbase": -1},
        {"advskew": 256},
        {"advskew": -1},
        {"demote": 256},
        {"demote": -1},
        {"authlen": 256},
        {"version": 16},
        {"version": -1},
        {"type": 16},
        {"type": -1},
        {"counter": -1},
        {"counter": 2**64},
        {"digest": b""},
        {"digest": bytes(19)},
        {"digest": bytes(21)},
    ],
    ids=repr,
)
def test_encode_rejects_out_of_range(changes: dict[str, object]) -> None:
    with pytest.raises(LocalProtocolError):
        wire.encode(replace(REF_3_6_HEADER, **changes))  # type: ignore[arg-type]


def test_encode_accepts_the_extremes() -> None:
    for changes in (
        {"vhid": 1},
        {"vhid": 255, "advbase": 255, "advskew": 255, "demote": 255, "counter": 2**64 - 1},
        {"advbase": 0, "advskew": 0, "counter": 0},
    ):
        header = replace(REF_3_6_HEADER, **changes)  # type: ignore[arg-type]
        assert replace(wire.decode(wire.encode(header)), checksum=0) == header


# --- decode's typed drop reasons ------------------------------------------


@pytest.mark.parametrize("length", [0, 1, 7, 8, 20, 35])
def test_short_is_badlen(length: int) -> None:
    error = _reason(REF_3_6[:length])
    assert error.reason is DropReason.BADLEN
    assert str(length) in str(error)
    with pytest.raises(RemoteProtocolError) as info:
        wire.parse(REF_3_6[:length])
    assert info.value.reason is DropReason.BADLEN
    assert not wire.checksum_ok(REF_3_6[:length])


def test_bad_checksum_is_badsum() -> None:
    corrupted = REF_3_6[:6] + b"\x69\xc9" + REF_3_6[8:]
    error = _reason(corrupted)
    assert error.reason is DropReason.BADSUM
    assert "0x69c9" in str(error)
    assert not wire.checksum_ok(corrupted)


@FAST
@given(headers, st.integers(0, 36 * 8 - 1))
def test_any_single_bit_flip_is_badsum(header: wire.CarpHeader, bit: int) -> None:
    data = bytearray(wire.encode(header))
    data[bit // 8] ^= 0x80 >> (bit % 8)
    assert not wire.checksum_ok(bytes(data))
    assert _reason(bytes(data)).reason is DropReason.BADSUM


def test_version_3_is_badver() -> None:
    # VRRPv3-like: version nibble 3, type 1, with a checksum that verifies
    # over the 36 bytes (a real VRRPv3 packet's pseudo-header sum would not).
    vrrp3 = wire.encode(replace(REF_3_6_HEADER, version=3))
    assert vrrp3[0] == 0x31
    assert wire.checksum_ok(vrrp3)
    error = _reason(vrrp3)
    assert error.reason is DropReason.BADVER
    assert "VRRPv3" in str(error)
    assert wire.not_carp_hint(vrrp3) == "VRRPv3"


@pytest.mark.parametrize("version", [0, 1, 3, 4, 15])
def test_other_versions_are_badver(version: int) -> None:
    data = wire.encode(replace(REF_3_6_HEADER, version=version))
    assert _reason(data).reason is DropReason.BADVER


@pytest.mark.parametrize("type_", [0, 2, 3, 15])
def test_other_types_are_badtype(type_: int) -> None:
    data = wire.encode(replace(REF_3_6_HEADER, type=type_))
    assert data[0] == 0x20 | type_
    error = _reason(data)
    assert error.reason is DropReason.BADTYPE
    assert str(type_) in str(error)


def _vrrp2(vrid: int, addresses: list[bytes], auth: bytes = bytes(8)) -> bytes:
    """A VRRPv2 advertisement (RFC 3768): 8-byte header, addresses, 8 bytes auth."""
    body = struct.pack("!BBBBBBH", 0x21, vrid, 100, len(addresses), 0, 1, 0)
    raw = body + b"".join(addresses) + auth
    checksum = internet_checksum(raw)  # VRRPv2 sums the whole packet, no pseudo-header
    return raw[:6] + checksum.to_bytes(2, "big") + raw[8:]


def test_real_looking_vrrp2_advert_is_badlen() -> None:
    vrrp = _vrrp2(51, [bytes([192, 0, 2, 51])])
    assert len(vrrp) == 20
    assert internet_checksum(vrrp) == 0
    error = _reason(vrrp)
    assert error.reason is DropReason.BADLEN
    assert "VRRPv2" in str(error)


@pytest.mark.parametrize("count", [5, 4, 6, 0, 8, 255])
def test_vrrp2_that_passes_the_checksum_is_notcarp(count: int) -> None:
    # With five addresses a VRRPv2 packet is exactly 36 bytes, and its own
    # checksum then is a valid CARP checksum: only authlen tells it apart.
    # Other counts: give the first 36 bytes a valid CARP checksum by hand.
    addresses = [bytes([192, 0, 2, 10 + i]) for i in range(min(count, 7))]
    vrrp = _vrrp2(51, addresses)
    vrrp = (vrrp + bytes(36))[: max(36, len(vrrp))]
    vrrp = vrrp[:3] + bytes([count]) + vrrp[4:]
    if count != 5:
        vrrp = _with_checksum(vrrp)
    assert wire.checksum_ok(vrrp)
    error = _reason(vrrp)
    assert error.reason is DropReason.NOTCARP
    assert "VRRPv2" in str(error)
    assert "authlen" in str(error)


def test_vrrp2_with_five_addresses_is_named_exactly() -> None:
    vrrp = _vrrp2(51, [bytes([192, 0, 2, 10 + i]) for i in range(5)])
    assert len(vrrp) == 36
    assert wire.checksum_ok(vrrp)
    assert wire.not_carp_hint(vrrp) == "VRRPv2 (vrid 51, 5 address(es))"
    assert "vrid 51" in str(_reason(vrrp))


def test_vrrp2_with_a_bad_carp_checksum_is_badsum_with_hint() -> None:
    addresses = [bytes([192, 0, 2, 10 + i]) for i in range(6)]
    vrrp = _vrrp2(51, addresses, auth=b"\x00\x00\x00\x00pass")  # 40 bytes
    assert not wire.checksum_ok(vrrp)
    error = _reason(vrrp)
    assert error.reason is DropReason.BADSUM
    assert "VRRPv2" in str(error)


def test_not_carp_hint() -> None:
    assert wire.not_carp_hint(b"") is None
    assert wire.not_carp_hint(REF_3_6) is None
    assert wire.not_carp_hint(b"\x21\x01") is None  # too short to see byte 3
    assert wire.not_carp_hint(b"\x31") == "VRRPv3"
    assert wire.not_carp_hint(_vrrp2(9, [bytes(4)])) == "VRRPv2 (vrid 9, 1 address(es))"
    assert "VRRPv2" in (wire.not_carp_hint(b"\x21\x01\x00\x03") or "")


def test_checks_run_in_kernel_order() -> None:
    # Short beats everything; a bad checksum beats version and type.
    assert _reason(b"\x31" + bytes(10)).reason is DropReason.BADLEN
    bad_everything = bytearray(wire.encode(replace(REF_3_6_HEADER, version=3, type=2)))
    bad_everything[7] ^= 1
    assert _reason(bytes(bad_everything)).reason is DropReason.BADSUM
    assert (
        _reason(wire.encode(replace(REF_3_6_HEADER, version=3, type=2, authlen=1))).reason
        is DropReason.BADVER
    )
    assert (
        _reason(wire.encode(replace(REF_3_6_HEADER, type=2, authlen=1))).reason
        is DropReason.BADTYPE
    )


# --- arbitrary input: decoded, or a RemoteProtocolError, nothing else -----


@FAST
@given(st.binary(max_size=80))
def test_arbitrary_bytes_decode(data: bytes) -> None:
    try:
        header = wire.decode(data)
    except RemoteProtocolError as error:
        assert isinstance(error.reason, DropReason)
        return
    assert wire.encode(header) == data[:36]


@FAST
@given(st.binary(max_size=80))
def test_arbitrary_bytes_parse(data: bytes) -> None:
    try:
        header = wire.parse(data)
    except RemoteProtocolError as error:
        assert error.reason is DropReason.BADLEN
        assert len(data) < 36
        return
    assert header.checksum == int.from_bytes(data[6:8], "big")
    # parse keeps every field, so re-encoding gives the bytes back whenever
    # the checksum in them was right.
    assert (wire.encode(header) == data[:36]) == wire.checksum_ok(data)


@FAST
@given(headers.map(wire.encode), st.integers(0, 35), st.integers(0, 255))
def test_nearly_valid_bytes_decode(data: bytes, index: int, value: int) -> None:
    # Arbitrary bytes rarely get past the checksum: mutate a valid header
    # and fix the checksum up, so the later checks see variety too.
    mutated = bytearray(data)
    mutated[index] = value
    candidate = _with_checksum(bytes(mutated)) if index not in (6, 7) else bytes(mutated)
    try:
        header = wire.decode(candidate)
    except RemoteProtocolError as error:
        assert isinstance(error.reason, DropReason)
        return
    assert (header.version, header.type, header.authlen) == (2, 1, 7)
