"""Several vhids in one carpctl process, and its packets seen by other decoders."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from nodeconfigs import current, roles_by_vhid, write_config

from carpctl.lab import Cluster, FailMode
from carpctl.lab.netns import wait_for

pytestmark = pytest.mark.netns

VIP = "198.51.100.100"


def test_two_vhids_on_one_interface_fail_over_independently(
    make_lab: Callable[..., Cluster],
) -> None:
    lab = make_lab(nodes=2, start=False)
    write_config(lab, "node1", [(1, 0, "198.51.100.100/24"), (2, 100, "198.51.100.102/24")])
    write_config(lab, "node2", [(1, 100, "198.51.100.100/24"), (2, 0, "198.51.100.102/24")])
    lab.start("node1")
    lab.start("node2")
    assert wait_for(lambda: current(lab, "node1") == {1: "MASTER", 2: "BACKUP"}, 10.0)
    assert wait_for(lambda: current(lab, "node2") == {1: "BACKUP", 2: "MASTER"}, 10.0)
    assert wait_for(lambda: lab.ping("client", "198.51.100.102"), 5.0)
    lab.fail("node2", FailMode.KILL)
    assert wait_for(lambda: current(lab, "node1") == {1: "MASTER", 2: "MASTER"}, 10.0)
    # vhid 1 went through the failover of vhid 2 untouched.
    assert roles_by_vhid(lab, "node1")[1] == ["BACKUP", "MASTER"]
    assert lab.client_view("198.51.100.102").owner == "node1"
    assert lab.client_view(VIP).owner == "node1"


def addresses_for(count: int) -> list[str]:
    """Distinct virtual addresses from the documentation ranges, one per vhid."""
    pool = [f"203.0.113.{i}/24" for i in range(1, 255)] + [
        f"198.51.100.{i}/24" for i in range(100, 200)
    ]
    return pool[:count]


def test_255_vhids_in_one_process_elect_and_hold_their_addresses(
    make_lab: Callable[..., Cluster],
) -> None:
    lab = make_lab(nodes=2, start=False)
    vips = addresses_for(255)
    write_config(lab, "node1", [(v, 0, vips[v - 1]) for v in range(1, 256)])
    write_config(lab, "node2", [(v, 100, vips[v - 1]) for v in range(1, 256)])
    lab.start("node1")
    lab.start("node2")
    assert wait_for(lambda: set(current(lab, "node1").values()) == {"MASTER"}, 15.0)
    assert len(current(lab, "node1")) == 255
    time.sleep(4.0)  # longer than node2's master-down interval
    node2 = roles_by_vhid(lab, "node2")
    assert len(node2) == 255
    assert all(changes == ["BACKUP"] for changes in node2.values())
    shown = lab.exec("node1", ["ip", "-o", "addr", "show", "dev", "lab0"]).stdout
    assert all(f" {vip.split('/')[0]}/" in shown for vip in vips)
    lab.fail("node1", FailMode.TERM)  # 255 bow-outs: node2 takes every vhid at once
    assert wait_for(lambda: set(current(lab, "node2").values()) == {"MASTER"}, 5.0)


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")
def test_what_carpctl_sends_is_carp_to_tshark_and_verifies_with_inspect(
    make_lab: Callable[..., Cluster], tmp_path: Path
) -> None:
    lab = make_lab(nodes=2, ipv6=True)
    assert lab.wait_role("node1", "MASTER", 10.0)
    capture = tmp_path / "carp.pcap"
    argv = ["tcpdump", "-i", "lab0", "-U", "-Z", "root", "-w", str(capture), "proto 112"]
    tcpdump = lab.spawn("client", argv, "tcpdump")
    time.sleep(3.5)
    lab.signal("tcpdump", 15)
    tcpdump.wait(timeout=10)
    fields = subprocess.run(
        ["tshark", "-r", str(capture), "-T", "fields", "-E", "separator=,",
         # heuristics first: tshark's own CARP test must claim them from VRRP
         "-o", "ip.try_heuristic_first:TRUE", "-o", "ipv6.try_heuristic_first:TRUE",
         "-e", "carp.vhid", "-e", "carp.advskew", "-e", "carp.checksum.status",
         "-e", "ip.ttl", "-e", "ipv6.hlim"],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    assert len(fields) >= 4  # IPv4 and IPv6, about one each per second
    for row in fields:
        vhid, advskew, status, ttl, hlim = row.split(",")
        assert (vhid, advskew, status) == ("1", "0", "1")  # 1: checksum good
        assert "255" in (ttl, hlim)
    password = Path(lab.state.password_file)
    inspected = subprocess.run(
        [sys.executable, "-m", "carpctl", "inspect", "--json", str(capture),
         "--pass-file", str(password), "--addr", VIP, "--addr", "2001:db8::100"],
        check=False, capture_output=True, text=True,
    )  # fmt: skip
    assert inspected.returncode == 0, inspected.stdout + inspected.stderr
    packets = [json.loads(line) for line in inspected.stdout.splitlines()]
    assert len(packets) == len(fields)
    assert {(p["checksum"], p["hmac"], p["ttl"]) for p in packets} == {("ok", "ok", 255)}
