"""Inspection of protocol-112 packets: the golden vectors, and everything that can be wrong."""

from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv4Address, ip_address
from pathlib import Path
from typing import Any

import pytest
from conftest import AdvertBuilder

from carpctl.capture.pcap import CaptureRecord, read_capture, write_pcap
from carpctl.capture.report import HMAC_ADVICE, Credentials, Inspection, inspect_record
from carpctl.capture.summary import Tally
from carpctl.core import ip

VECTORS = Path(__file__).parent.parent / "vectors"


def inspect_file(data: bytes, credentials: Credentials | None = None) -> list[Inspection]:
    found = (inspect_record(r, credentials) for r in read_capture(data))
    return [i for i in found if i is not None]


def credentials_of(capture: dict[str, Any], password: str | None = None) -> Credentials:
    node = capture["nodes"][0]
    vips = [ip_address(a) for a in node["vips"]]
    return Credentials.of(node["password"] if password is None else password, vips)


def frame(packet: bytes) -> CaptureRecord:
    data = bytes.fromhex("01005e000012 00005e000001 0800") + packet
    return CaptureRecord(1.0, 1, data, len(data))


def ipv4(payload: bytes, ttl: int = 255) -> bytes:
    return ip.build_ipv4(IPv4Address("198.51.100.1"), IPv4Address("224.0.0.18"), payload, ttl=ttl)


def one(record: CaptureRecord, credentials: Credentials | None = None) -> Inspection:
    inspection = inspect_record(record, credentials)
    assert inspection is not None
    return inspection


def test_all_47_vector_packets_verify(vector_captures: list[dict[str, Any]]) -> None:
    total = 0
    for capture in vector_captures:
        data = (VECTORS / capture["file"]).read_bytes()
        for node in capture["nodes"]:  # s4/s6: two nodes, same vhid, password and VIP
            inspections = inspect_file(data, credentials_of(capture | {"nodes": [node]}))
            assert len(inspections) == capture["frames"]["carp"]
            for i in inspections:
                assert (i.checksum, i.hmac, i.problems, i.ok) == ("ok", "ok", (), True)
                assert (i.vhid, i.ttl, i.dst) == (node["vhid"], 255, "224.0.0.18")
                assert i.src_mac == f"00:00:5e:00:00:{node['vhid']:02x}"
            assert {i.src for i in inspections} <= {n["src_ip"] for n in capture["nodes"]}
        total += len(inspections)
    assert total == 47


def test_first_packet_of_s1_field_by_field(vector_captures: list[dict[str, Any]]) -> None:
    data = (VECTORS / "s1_vhid1_secret.pcap").read_bytes()
    first = inspect_file(data, credentials_of(vector_captures[0]))[0]
    assert first.as_json() == {
        "time": pytest.approx(1795270261.006519, abs=1e-6),
        "src": "192.0.2.1",
        "dst": "224.0.0.18",
        "ttl": 255,
        "vhid": 1,
        "version": 2,
        "type": 1,
        "advbase": 1,
        "advskew": 0,
        "demote": 0,
        "counter": 0x323C5908329A6934,
        "checksum": "ok",
        "hmac": "ok",
        "src_mac": "00:00:5e:00:00:01",
        "vlans": [],
        "authlen": 7,
        "checksum_value": 0xC611,
        "digest": "d6ee44a9b504cd7edff3a2e3c1b7ae67c8fd97c1",
        "carp": True,
        "truncated": False,
        "ok": True,
        "problems": [],
        "notes": [],
    }


def test_wrong_password_or_addresses_fail_the_hmac(vector_captures: list[dict[str, Any]]) -> None:
    s1 = vector_captures[0]
    data = (VECTORS / s1["file"]).read_bytes()
    wrong = [
        credentials_of(s1, password="secreT"),
        Credentials.of("secret", [ip_address("192.0.2.101")]),
        Credentials.of("secret", [ip_address("192.0.2.100"), ip_address("2001:db8::100")]),
    ]
    for credentials in wrong:
        for i in inspect_file(data, credentials):
            assert (i.checksum, i.hmac, i.ok) == ("ok", "bad", False)
            assert i.problems[0].startswith("HMAC does not verify: ")


@pytest.mark.parametrize(
    ("password", "addrs", "hint"),
    [
        ("wrong", ["198.51.100.100"], HMAC_ADVICE),
        ("", ["198.51.100.100"], HMAC_ADVICE),
        ("secret ", ["198.51.100.100"], "without the password's leading/trailing whitespace"),
        ("secret", ["198.51.100.100", "198.51.100.101"], "with only 198.51.100.100 hashed"),
        ("secret", ["198.51.100.100", "2001:db8::1"], "with only 198.51.100.100 hashed"),
    ],
)
def test_hmac_hints(advert: AdvertBuilder, password: str, addrs: list[str], hint: str) -> None:
    credentials = Credentials.of(password, [ip_address(a) for a in addrs])
    inspection = one(frame(advert()[14:]), credentials)
    assert inspection.hmac == "bad"
    assert hint in inspection.problems[0]


def test_hint_for_a_sender_without_password(advert: AdvertBuilder) -> None:
    inspection = one(
        frame(advert(password="")[14:]), Credentials.of("secret", [ip_address("198.51.100.100")])
    )
    assert "it verifies with no password: the sender has none set" in inspection.problems[0]


def test_hint_for_ipv4_only_digest(advert: AdvertBuilder) -> None:
    addrs = ["198.51.100.100", "198.51.100.101"]
    packet = advert(addrs=addrs)[14:]
    everything = [ip_address(a) for a in [*addrs, "2001:db8::7"]]
    inspection = one(frame(packet), Credentials.of("secret", everything))
    assert inspection.problems == (
        "HMAC does not verify: it verifies with the IPv4 addresses only",
    )


def test_ipv6_advert_with_link_local_address(advert: AdvertBuilder) -> None:
    addrs = ["2001:db8::100", "198.51.100.100"]
    data = advert(src="fe80::1", addrs=addrs, vhid=5, advskew=100)
    record = CaptureRecord(2.0, 1, data, len(data))
    with_link_local = [ip_address(a) for a in [*addrs, "fe80::100"]]
    i = one(record, Credentials.of("secret", with_link_local))
    assert (i.src, i.dst, i.vhid, i.advskew, i.hmac, i.ok) == (
        "fe80::1",
        "ff02::12",
        5,
        100,
        "ok",
        True,
    )


def test_truncated_packet_keeps_the_fields_it_has(advert: AdvertBuilder) -> None:
    packet = bytearray(ipv4(advert()[34:][:20]))
    i = one(frame(bytes(packet)), Credentials.of("secret", [ip_address("198.51.100.100")]))
    assert i.problems == ("truncated: 20 of 36 bytes",)
    assert (i.carp, i.truncated, i.ok, i.checksum, i.hmac) == (True, True, False, None, "unchecked")
    assert (i.vhid, i.advbase, i.counter) == (1, 1, 0x0102030405060708)
    assert one(frame(ipv4(b"\x21\x01\x00\x07"))).as_json()["counter"] is None
    assert one(frame(ipv4(b""))).problems == ("truncated: 0 of 36 bytes",)


def test_snap_length_cut_is_explained(advert: AdvertBuilder) -> None:
    data = advert()
    cut = CaptureRecord(0.0, 1, data[:60], len(data))
    i = one(cut)
    assert i.truncated
    assert i.notes == ("the capture kept only 60 of 70 bytes (snap length)",)


def vrrp2() -> bytes:
    body = bytes([0x21, 5, 100, 1, 0, 1, 0, 0]) + bytes([198, 51, 100, 50]) + bytes(8)
    return body


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        (vrrp2(), "not CARP: looks like VRRPv2 (vrid 5, 1 address(es))"),
        (bytes([0x31, 5, 100, 1, 0, 100, 0, 0, 198, 51, 100, 50]), "not CARP: looks like VRRPv3"),
    ],
)
def test_vrrp_is_reported_but_is_not_a_failure(payload: bytes, problem: str) -> None:
    i = one(frame(ipv4(payload)), Credentials.of("x", [ip_address("198.51.100.50")]))
    assert (i.carp, i.problems, i.checksum, i.hmac, i.vhid) == (
        False,
        (problem,),
        None,
        "unchecked",
        None,
    )
    tally = Tally()
    tally.add(i)
    assert (tally.packets, tally.not_carp, tally.failed) == (1, 1, False)


def test_bad_ttl_checksums_version_type(advert: AdvertBuilder) -> None:
    carp = bytearray(advert()[34:])
    assert (
        "TTL 64, expected 255: receivers drop it" in one(frame(ipv4(bytes(carp), ttl=64))).problems
    )
    carp[10] ^= 0xFF  # the counter: the checksum no longer adds up
    i = one(frame(ipv4(bytes(carp))))
    assert (i.checksum, i.problems) == ("bad", ("bad CARP checksum 0xd77e",))
    packet = bytearray(ipv4(advert()[34:]))
    packet[10] ^= 1  # the IPv4 header checksum
    assert one(frame(bytes(packet))).problems == ("bad IPv4 header checksum",)
    carp = bytearray(advert()[34:])
    carp[0], carp[6] = 0x12, carp[6] + 0x0F  # version 1, type 2; checksum adjusted
    assert one(frame(ipv4(bytes(carp)))).problems == (
        "version 1, expected 2",
        "type 2, expected 1 (advertisement)",
    )


def test_notes_bow_out_unicast_extra_bytes(advert: AdvertBuilder) -> None:
    i = one(frame(advert(advbase=255, advskew=255, dst="198.51.100.2")[14:]))
    assert i.ok
    assert i.notes == (
        "bow-out: the sender is leaving (advbase 255, advskew 255)",
        "unicast destination (peer mode)",
    )
    i = one(frame(ipv4(advert()[34:] + b"xx")))
    assert (i.ok, i.notes) == (True, ("2 bytes after the CARP header (ignored)",))


def test_fragment_and_other_protocols() -> None:
    fragment = bytearray(ipv4(bytes(36)))
    fragment[6] |= 0x20  # more fragments
    i = one(frame(bytes(fragment)))
    assert (i.src, i.ok, i.problems) == (
        "198.51.100.1",
        False,
        ("unreadable IP header: fragmented IPv4 packet",),
    )
    udp = ip.build_ipv4(
        IPv4Address("198.51.100.1"), IPv4Address("198.51.100.2"), bytes(8), protocol=17
    )
    assert inspect_record(frame(udp)) is None
    assert inspect_record(frame(b"\x45\x00")) is None


def cooked(record: CaptureRecord, linktype: int) -> bytes:
    if linktype == 276:
        header = bytes.fromhex("0800 0000 00000002 0001 00 06") + record.data[6:12] + b"\0\0"
    else:  # raw IP
        header = b""
    return header + record.data[14:]


@pytest.mark.parametrize("linktype", [276, 101])
def test_other_link_types_give_the_same_results(
    linktype: int, vector_captures: list[dict[str, Any]]
) -> None:
    s4 = vector_captures[3]
    data = (VECTORS / s4["file"]).read_bytes()
    converted = write_pcap(
        [(r.time or 0.0, cooked(r, linktype)) for r in read_capture(data)], linktype
    )
    want = inspect_file(data, credentials_of(s4))
    got = inspect_file(converted, credentials_of(s4))
    if linktype == 101:
        want = [replace(i, src_mac=None) for i in want]
    assert [replace(i, time=0.0) for i in got] == [replace(i, time=0.0) for i in want]
    assert [i.time for i in got] == pytest.approx([i.time for i in want], abs=1e-6)


def test_tally_sources_per_vhid(vector_captures: list[dict[str, Any]]) -> None:
    s6 = vector_captures[5]
    tally = Tally()
    for i in inspect_file((VECTORS / s6["file"]).read_bytes(), credentials_of(s6, password="x")):
        tally.add(i)
    assert (tally.carp, tally.ok, tally.hmac_failures, tally.failed) == (10, 0, 10, True)
    assert {src: s.packets for src, s in tally.sources[9].items()} == {
        "192.0.2.11": 8,
        "192.0.2.12": 2,
    }
