"""Golden ucarp captures (tests/vectors) and the reference's worked examples.

Every one of the 47 CARP advertisements in the seven captures must decode,
carry a valid IPv4 header checksum and TTL 255, authenticate with the
password and VIP that index.json gives for the node that sent it, and
re-encode to exactly the 36 bytes on the wire.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from ipaddress import IPv4Address, IPv6Address, ip_address
from pathlib import Path
from typing import Any

import pytest

from carpctl.core import auth, ip, wire
from carpctl.core.checksum import internet_checksum

from .pcaputil import ETHERTYPE_IPV4, read_pcap

VECTORS = Path(__file__).resolve().parent.parent / "vectors"
INDEX: dict[str, Any] = json.loads((VECTORS / "index.json").read_text())


@dataclass(frozen=True)
class Advert:
    """One CARP frame of a capture, with the node that sent it."""

    file: str
    frame_index: int
    frame: bytes
    packet: ip.IPPacket
    node: dict[str, Any]

    @property
    def carp(self) -> bytes:
        return self.packet.payload

    @property
    def key(self) -> bytes:
        return auth.carp_key(self.node["password"])

    @property
    def addresses(self) -> auth.VirtualHostAddresses:
        return auth.VirtualHostAddresses.of(ip_address(a) for a in self.node["vips"])

    def __str__(self) -> str:
        return f"{self.file}#{self.frame_index}"


def _load() -> list[Advert]:
    adverts: list[Advert] = []
    for capture in INDEX["captures"]:
        nodes: dict[IPv4Address | IPv6Address, dict[str, Any]] = {
            IPv4Address(n["src_ip"]): n for n in capture["nodes"]
        }
        carp_frames = 0
        for frame in read_pcap(VECTORS / capture["file"]):
            if frame.ethertype != ETHERTYPE_IPV4:
                continue
            packet = ip.parse_ip(frame.ip)
            if packet.protocol != wire.IPPROTO_CARP:
                continue
            carp_frames += 1
            adverts.append(
                Advert(capture["file"], frame.index, frame.data, packet, nodes[packet.src])
            )
        assert carp_frames == capture["frames"]["carp"], capture["file"]
    return adverts


ADVERTS = _load()


def test_all_47_carp_packets_found() -> None:
    assert len(ADVERTS) == 47
    assert len({a.file for a in ADVERTS}) == 7
    # s4 and s6 carry advertisements from both nodes.
    senders = {(a.file, a.node["name"]) for a in ADVERTS}
    for file in ("s4_pair_preempt_failover.pcap", "s6_splitbrain_tiebreak_Aside.pcap"):
        assert {name for f, name in senders if f == file} == {"A", "B"}


@pytest.fixture(params=ADVERTS, ids=str)
def advert(request: pytest.FixtureRequest) -> Advert:
    result: Advert = request.param
    return result


def test_ip_layer(advert: Advert) -> None:
    packet = advert.packet
    assert packet.version == 4
    assert packet.header_checksum_ok
    assert internet_checksum(advert.frame[14:34]) == 0
    assert packet.ttl == wire.CARP_TTL == 255
    assert packet.protocol == 112
    assert packet.dst == IPv4Address(wire.CARP_IPV4_GROUP)
    assert len(packet.payload) == wire.CARP_HEADER_LEN
    # ucarp's advertisement Ethernet source is 00:00:5e:00:00:<vhid> (reference 1.5).
    assert advert.frame[6:12] == bytes([0, 0, 0x5E, 0, 0, advert.node["vhid"]])


def test_decodes_with_node_parameters(advert: Advert) -> None:
    header = wire.decode(advert.carp)
    assert wire.checksum_ok(advert.carp)
    assert header.version == 2
    assert header.type == 1
    assert header.authlen == 7
    assert header.demote == 0
    assert header.vhid == advert.node["vhid"]
    assert header.advbase == advert.node["advbase"]
    assert header.advskew == advert.node["advskew"]
    assert not header.is_bow_out
    assert wire.parse(advert.carp) == header
    assert wire.not_carp_hint(advert.carp) is None


def test_reencodes_to_the_original_bytes(advert: Advert) -> None:
    header = wire.decode(advert.carp)
    assert wire.encode(header) == advert.carp
    # encode ignores the checksum field and computes it itself.
    assert wire.encode(replace(header, checksum=0)) == advert.carp
    assert wire.encode(replace(header, checksum=0xFFFF)) == advert.carp


def test_hmac_verifies(advert: Advert) -> None:
    header = wire.decode(advert.carp)
    assert auth.verify_digest(
        advert.key, header.vhid, advert.addresses, header.counter, header.digest
    )
    assert (
        auth.compute_digest(advert.key, header.vhid, advert.addresses, header.counter)
        == header.digest
    )
    # A complete rebuild from the node's configuration gives the frame's bytes.
    rebuilt = wire.encode(
        wire.CarpHeader(
            vhid=advert.node["vhid"],
            advbase=advert.node["advbase"],
            advskew=advert.node["advskew"],
            counter=header.counter,
            digest=auth.compute_digest(
                advert.key, advert.node["vhid"], advert.addresses, header.counter
            ),
        )
    )
    assert rebuilt == advert.carp


def test_wrong_parameters_fail_verification(advert: Advert) -> None:
    header = wire.decode(advert.carp)
    vip = IPv4Address(advert.node["vips"][0])
    addresses = advert.addresses

    def ok(
        key: bytes = advert.key,
        vhid: int = header.vhid,
        addrs: auth.VirtualHostAddresses = addresses,
        counter: int = header.counter,
    ) -> bool:
        return auth.verify_digest(key, vhid, addrs, counter, header.digest)

    assert ok()
    assert not ok(key=auth.carp_key("x" + advert.node["password"]))
    assert not ok(key=auth.carp_key(advert.node["password"].upper()))
    assert not ok(key=auth.carp_key(advert.node["password"][:-1]))
    assert not ok(key=auth.carp_key("wrong"))
    assert not ok(key=b"")
    assert not ok(vhid=header.vhid % 255 + 1)
    assert not ok(addrs=auth.VirtualHostAddresses.of([vip, IPv4Address("192.0.2.250")]))
    assert not ok(addrs=auth.VirtualHostAddresses.of([vip, ip_address("2001:db8::1")]))
    assert not ok(addrs=auth.VirtualHostAddresses.of([vip + 1]))
    assert not ok(addrs=auth.VirtualHostAddresses.of([]))
    assert not ok(counter=header.counter ^ 1)
    # Only the first 19 bytes of a passphrase count (reference 3.1/3.3).
    assert ok(key=auth.carp_key(advert.node["password"] + "X" * 19)) == (
        len(advert.node["password"]) == 19
    )
    # Link-local IPv6 addresses may be present on the receiving side: the
    # variant without them still matches (OpenBSD's rule, reference 3.3).
    assert ok(addrs=auth.VirtualHostAddresses.of([vip, ip_address("fe80::1")]))


# --- reference 3.4: the first advertisement of s1, byte for byte -----------

S1_FIRST_FRAME = bytes.fromhex(
    "01005e000012 00005e000001 0800"
    "45100038ac274000ff702d0ac0000201e0000012"
    "2101000700 01c611"
    "323c5908329a6934"
    "d6ee44a9b504cd7edff3a2e3c1b7ae67c8fd97c1"
)


def test_reference_3_4_full_frame() -> None:
    first = next(a for a in ADVERTS if a.file == "s1_vhid1_secret.pcap")
    assert first.frame == S1_FIRST_FRAME
    header = wire.decode(S1_FIRST_FRAME[34:])
    assert header == wire.CarpHeader(
        vhid=1,
        advbase=1,
        advskew=0,
        counter=0x323C5908329A6934,
        digest=bytes.fromhex("d6ee44a9b504cd7edff3a2e3c1b7ae67c8fd97c1"),
        checksum=0xC611,
    )
    packet = ip.parse_ip(S1_FIRST_FRAME[14:])
    assert packet.src == IPv4Address("192.0.2.1")
    assert packet.ttl == 255
    assert internet_checksum(S1_FIRST_FRAME[34:]) == 0
    # ucarp's own check: IPv4 header and CARP bytes summed together give 0.
    assert internet_checksum(S1_FIRST_FRAME[14:]) == 0
