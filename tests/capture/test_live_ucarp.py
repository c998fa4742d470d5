"""carpctl inspect verifies real ucarp captures it has never seen.

ucarp runs in one throwaway namespace, tcpdump in another, joined by a veth
pair ``lab0``; addresses from 198.51.100.0/24 only. See ``tests/netns.py`` for
the safety rules; the ``lab`` fixture tears everything down, also on failure.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import netns
import pytest

from carpctl.capture.pcap import CaptureError, read_capture
from carpctl.capture.report import inspect_record

pytestmark = pytest.mark.netns

VHID, PASSWORD, VIP = 7, "secretpw", "198.51.100.100"
NODE, PEER = "198.51.100.1", "198.51.100.2"


@pytest.fixture
def lab() -> Iterator[netns.Lab]:
    reason = netns.unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    with netns.Lab("ucarp-") as lab:
        yield lab


def carp_packets(path: Path) -> int:
    """How many protocol-112 packets tcpdump has flushed so far."""
    count = 0
    try:
        for record in read_capture(path.read_bytes()):
            count += inspect_record(record) is not None
    except (CaptureError, OSError):  # not created yet, or a record half written
        pass
    return count


def inspect_cli(capture: Path, *auth: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "carpctl.cli", "inspect", "--json", str(capture), *auth],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_inspect_verifies_a_live_ucarp_capture(lab: netns.Lab, tmp_path: Path) -> None:
    for tool in ("ucarp", "tcpdump"):
        assert shutil.which(tool), f"{tool} is not installed (tools/test.sh installs it)"
    node, peer = lab.namespace("node"), lab.namespace("peer")
    lab.veth(node, peer)
    lab.address(node, "lab0", f"{NODE}/24")
    lab.address(peer, "lab0", f"{PEER}/24")

    capture, tcpdump_log = tmp_path / "live.pcap", tmp_path / "tcpdump.log"
    with tcpdump_log.open("wb") as log:
        # -Z root: do not drop to the tcpdump user, who cannot write into tmp_path.
        lab.spawn(
            peer,
            [
                "tcpdump",
                "-i",
                "lab0",
                "-w",
                str(capture),
                "-U",
                "-n",
                "-Z",
                "root",
                "ip",
                "proto",
                "112",
            ],
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    assert netns.wait_for(lambda: b"listening on" in tcpdump_log.read_bytes(), 15), (
        tcpdump_log.read_text(errors="replace")
    )
    ucarp = lab.spawn(
        node,
        ["ucarp", "-i", "lab0", "-s", NODE, "-v", str(VHID), "-p", PASSWORD, "-a", VIP,
         "-u", "/bin/true", "-d", "/bin/true", "-b", "1", "-k", "0", "-f", "none"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    # MASTER after ~3 s, then one advertisement a second.
    assert netns.wait_for(lambda: carp_packets(capture) >= 3, 20), "ucarp sent no advertisements"
    assert ucarp.poll() is None, "ucarp exited early"
    for process in reversed(lab.processes):  # ucarp first, then tcpdump (it flushes on SIGTERM)
        lab.stop(process)

    password_file = tmp_path / "pass"
    password_file.write_text(PASSWORD + "\n")
    result = inspect_cli(capture, "--pass-file", str(password_file), "--addr", VIP)
    assert (result.returncode, result.stderr) == (0, "")
    adverts = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(adverts) >= 3
    for advert in adverts:
        assert (advert["checksum"], advert["hmac"], advert["problems"]) == ("ok", "ok", [])
        assert (advert["src"], advert["dst"], advert["ttl"]) == (NODE, "224.0.0.18", 255)
        assert (advert["vhid"], advert["advbase"], advert["advskew"]) == (VHID, 1, 0)
        assert advert["src_mac"] == f"00:00:5e:00:00:{VHID:02x}"  # ucarp's quirk

    wrong = inspect_cli(capture, "--pass", "wrongpw", "--addr", VIP)
    assert wrong.returncode == 1
    assert {json.loads(line)["hmac"] for line in wrong.stdout.splitlines()} == {"bad"}
