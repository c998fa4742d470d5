"""The announcement frame builders, byte for byte, without a network."""

from __future__ import annotations

import shutil
import subprocess
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path

import pytest

from carpctl.capture.pcap import write_pcap
from carpctl.core import ip
from carpctl.core.checksum import internet_checksum
from carpctl.io.announce import build_gratuitous_arp, build_unsolicited_na

MAC = bytes.fromhex("00005e000109")  # vhid 9's virtual MAC
VIP4, VIP6 = IPv4Address("198.51.100.100"), IPv6Address("2001:db8::100")
LINK_LOCAL = IPv6Address("fe80::1")

GARP = bytes.fromhex(
    "ffffffffffff"  # Ethernet broadcast
    "00005e000109"  # our MAC
    "0806"  # ARP
    "0001 0800 06 04 0001"  # Ethernet/IPv4, request
    "00005e000109 c6336464"  # sender: our MAC, the VIP
    "000000000000 c6336464"  # target: zero MAC, the VIP again
)
NA_UNSUMMED = bytes.fromhex(
    "88 00 0000"  # type 136, code 0, checksum left to the kernel
    "20000000"  # Override; not Router, not Solicited
    "20010db8000000000000000000000100"  # target
    "02 01 00005e000109"  # option 2 (target link-layer address), 8 bytes
)


def test_gratuitous_arp_request() -> None:
    assert build_gratuitous_arp(MAC, VIP4) == GARP
    assert len(GARP) == 42


def test_unsolicited_na_without_source_leaves_the_checksum_to_the_kernel() -> None:
    assert build_unsolicited_na(MAC, VIP6) == NA_UNSUMMED


def test_unsolicited_na_with_source_has_the_pseudo_header_checksum() -> None:
    message = build_unsolicited_na(MAC, VIP6, source=LINK_LOCAL)
    assert message == NA_UNSUMMED[:2] + bytes.fromhex("ca5b") + NA_UNSUMMED[4:]
    pseudo = LINK_LOCAL.packed + IPv6Address("ff02::1").packed + bytes([0, 0, 0, 32, 0, 0, 0, 58])
    assert internet_checksum(pseudo + message) == 0


def test_router_flag() -> None:
    message = build_unsolicited_na(MAC, VIP6, router=True)
    assert message[4:8] == bytes.fromhex("a0000000")


def test_bad_mac_is_refused() -> None:
    with pytest.raises(ValueError, match="6 bytes"):
        build_gratuitous_arp(b"\x00" * 5, VIP4)
    with pytest.raises(ValueError, match="6 bytes"):
        build_unsolicited_na(b"\x00" * 7, VIP6)


def test_tshark_reads_a_gratuitous_arp_and_an_override_na(tmp_path: Path) -> None:
    if shutil.which("tshark") is None:
        pytest.skip("tshark is not installed (tools/test.sh installs it)")
    na = build_unsolicited_na(MAC, VIP6, source=LINK_LOCAL)
    na_frame = (
        bytes.fromhex("333300000001")
        + MAC
        + b"\x86\xdd"
        + ip.build_ipv6(LINK_LOCAL, IPv6Address("ff02::1"), na, hop_limit=255, protocol=58)
    )
    path = tmp_path / "announce.pcap"
    path.write_bytes(write_pcap([(1.0, GARP), (2.0, na_frame)]))
    fields = [
        "arp.isgratuitous",
        "arp.opcode",
        "arp.src.hw_mac",
        "arp.dst.proto_ipv4",
        "icmpv6.type",
        "icmpv6.nd.na.flag.o",
        "icmpv6.nd.na.flag.s",
        "icmpv6.checksum.status",
        "icmpv6.opt.linkaddr",
        "icmpv6.nd.na.target_address",
    ]
    argv = ["tshark", "-r", str(path), "-n", "-T", "fields", "-E", "separator=|"]
    result = subprocess.run(
        argv + [arg for f in fields for arg in ("-e", f)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    garp, advert = (line.split("|") for line in result.stdout.splitlines())
    assert garp[:4] == ["1", "1", "00:00:5e:00:01:09", str(VIP4)]
    assert advert[4:] == ["136", "1", "0", "1", "00:00:5e:00:01:09", str(VIP6)]
