"""Independent decoders check the core encoder: tshark and tcpdump read our adverts as CARP.

Advertisements are built with ``wire.encode`` + ``auth.compute_digest`` inside
``ip.build_ipv4``/``build_ipv6`` and an Ethernet frame, written with
``write_pcap``. tshark is told to try heuristics first, so it is its own CARP
heuristic (authlen 7, version 2, type 1) that must claim them from VRRP.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import build_advert

from carpctl.capture.pcap import write_pcap

CASES = [
    {"vhid": 1, "advbase": 1, "advskew": 0, "counter": 0x323C5908329A6934},
    {"vhid": 42, "advbase": 2, "advskew": 100, "counter": 2**64 - 1, "demote": 3},
    {"vhid": 255, "advbase": 255, "advskew": 255, "counter": 0},
    {
        "vhid": 7,
        "advbase": 1,
        "advskew": 240,
        "counter": 1,
        "src": "2001:db8::1",
        "addrs": ["2001:db8::7"],
    },
]
TSHARK_FIELDS = [
    "carp.version",
    "carp.type",
    "carp.vhid",
    "carp.advskew",
    "carp.adver_int",
    "carp.demotion",
    "carp.counter",
    "carp.checksum.status",
    "carp.hmac",
    "vrrp.prio",
]
CHECKSUM_GOOD, CHECKSUM_BAD = "1", "0"  # Wireshark's PROTO_CHECKSUM_E_GOOD / _BAD


@pytest.fixture
def capture(tmp_path: Path) -> Path:
    frames = [(float(n), build_advert(**case)) for n, case in enumerate(CASES)]
    broken = bytearray(build_advert(vhid=9))
    broken[-1] ^= 0x01  # last digest byte: the CARP checksum no longer adds up
    frames.append((9.0, bytes(broken)))
    path = tmp_path / "adverts.pcap"
    path.write_bytes(write_pcap(frames))
    return path


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed")
    return path


def test_tshark_decodes_our_adverts_as_carp_with_good_checksums(capture: Path) -> None:
    heuristics_first = ["-o", "ip.try_heuristic_first:TRUE", "-o", "ipv6.try_heuristic_first:TRUE"]
    fields = [arg for field in TSHARK_FIELDS for arg in ("-e", field)]
    result = subprocess.run(
        [
            tool("tshark"),
            "-r",
            str(capture),
            *heuristics_first,
            "-T",
            "fields",
            "-E",
            "separator=,",
            *fields,
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    rows = [line.split(",") for line in result.stdout.splitlines()]
    assert len(rows) == len(CASES) + 1
    for case, row in zip(CASES, rows, strict=False):
        frame = build_advert(**case)
        digest = frame[-20:].hex()
        want = ["2", "1", str(case["vhid"]), str(case["advskew"]), str(case["advbase"])]
        want += [str(case.get("demote", 0)), str(case["counter"]), CHECKSUM_GOOD, digest, ""]
        assert row == want  # empty vrrp.prio: not decoded as VRRP
    assert rows[-1][2] == "9"
    assert rows[-1][7] == CHECKSUM_BAD  # the control: tshark does verify checksums


def test_tcpdump_carp_printer_agrees(capture: Path) -> None:
    result = subprocess.run(
        [tool("tcpdump"), "-T", "carp", "-r", str(capture), "-v", "-n"],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    adverts = re.findall(
        r"CARPv2-advertise 36: vhid=(\d+) advbase=(\d+) advskew=(\d+) authlen=7"
        r" ?(.*?)counter=(\d+)",
        result.stdout,
    )
    assert [(int(v), int(b), int(s), int(c)) for v, b, s, _, c in adverts[:-1]] == [
        (case["vhid"], case["advbase"], case["advskew"], case["counter"]) for case in CASES
    ]
    assert all("bad" not in note for *_, note, _ in adverts[:-1])
    assert "bad carp cksum" in adverts[-1][3]
