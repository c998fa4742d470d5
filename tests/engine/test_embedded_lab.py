"""The embedded engine on a real network: lab namespaces, real packets, real peers."""

from __future__ import annotations

import json
import shutil
import signal
import sys
import time
from collections.abc import Callable
from ipaddress import ip_address
from pathlib import Path

import pytest

from carpctl.core import auth, wire
from carpctl.core.checksum import internet_checksum
from carpctl.lab import Cluster, FailMode
from carpctl.lab.netns import wait_for

pytestmark = pytest.mark.netns

ELECTION = 10.0
VIP = "198.51.100.100"
INJECT = Path(__file__).with_name("inject.py")


def events(lab: Cluster, node: str, event: str) -> list[dict[str, object]]:
    found = []
    for line in lab.log(node).read_text().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("event") == event:
            found.append(record)
    return found


def transitions(lab: Cluster, node: str) -> list[tuple[object, object]]:
    return [(r["new"], r["reason"]) for r in events(lab, node, "state changed")]


def elected(lab: Cluster) -> None:
    assert lab.wait_role("node1", "MASTER", ELECTION), lab.status(client=False)
    assert lab.wait_role("node2", "BACKUP", ELECTION)


def test_graceful_stop_hands_over_at_once_via_the_bow_out(
    make_lab: Callable[..., Cluster],
) -> None:
    lab = make_lab(nodes=2)
    elected(lab)
    lab.fail("node1", FailMode.TERM)
    assert lab.wait_role("node2", "MASTER", 2.0)
    assert transitions(lab, "node2")[-1] == ("MASTER", "bow-out received")
    assert transitions(lab, "node1")[-1] == ("INIT", "shutting down")
    assert lab.holders() == ["node2"]  # node1 released its address on the way out
    assert lab.client_view().owner == "node2"


def test_link_down_sends_the_vhid_to_init_and_the_backup_takes_over(
    make_lab: Callable[..., Cluster],
) -> None:
    lab = make_lab(nodes=2)
    elected(lab)
    lab.fail("node1", FailMode.LINKDOWN)
    assert lab.wait_role("node2", "MASTER", ELECTION)
    assert transitions(lab, "node2")[-1] == ("MASTER", "master timed out")
    assert wait_for(lambda: lab.role("node1") == "INIT", 5.0)
    assert transitions(lab, "node1")[-1] == ("INIT", "interface down")
    assert lab.client_view().owner == "node2"
    lab.recover("node1")  # preempt is off: node2 keeps the address
    assert wait_for(lambda: lab.role("node1") == "BACKUP", 5.0)
    time.sleep(3.5)
    assert lab.roles() == {"node1": "BACKUP", "node2": "MASTER"}


def test_sigstop_of_the_master_fails_over_and_one_master_remains_after_sigcont(
    make_lab: Callable[..., Cluster],
) -> None:
    lab = make_lab(nodes=2)
    elected(lab)
    lab.fail("node1", FailMode.STOP)
    assert lab.wait_role("node2", "MASTER", ELECTION)
    assert lab.client_view().owner == "node2"
    lab.recover("node1")
    # node1 wakes up believing it is master; the two must settle on one.
    assert wait_for(lambda: len(lab.holders()) == 1, 10.0), lab.holders()


@pytest.mark.parametrize("preempt", [False, True])
def test_preempt_decides_whether_a_returning_better_node_takes_back(
    make_lab: Callable[..., Cluster], preempt: bool
) -> None:
    lab = make_lab(nodes=2, preempt=preempt)
    elected(lab)
    lab.fail("node1", FailMode.KILL)
    assert lab.wait_role("node2", "MASTER", ELECTION)
    lab.recover("node1")
    if preempt:
        assert lab.wait_role("node1", "MASTER", ELECTION)
        assert transitions(lab, "node1")[-1] == ("MASTER", "preempting a slower master")
        assert wait_for(lambda: lab.holders() == ["node1"], 5.0), lab.holders()
    else:
        assert wait_for(lambda: lab.role("node1") == "BACKUP", ELECTION)
        time.sleep(3.5)  # longer than node1's master-down interval
        assert lab.roles() == {"node1": "BACKUP", "node2": "MASTER"}
        assert lab.holders() == ["node2"]


def test_dual_stack_both_families_fail_over(make_lab: Callable[..., Cluster]) -> None:
    lab = make_lab(nodes=2, ipv6=True)
    elected(lab)
    assert wait_for(lambda: lab.ping("client", "2001:db8::100"), 5.0)
    assert lab.ping("client", VIP)
    lab.fail("node1", FailMode.TERM)
    assert lab.wait_role("node2", "MASTER", 2.0)
    assert wait_for(lambda: lab.ping("client", "2001:db8::100", timeout=0.5), 5.0)
    assert lab.ping("client", VIP)


# -- mixed clusters with Debian's ucarp ------------------------------------


def ucarp_argv(lab: Cluster, node: str, advskew: int, password: str | None = None) -> list[str]:
    secret = password or Path(lab.state.password_file).read_text().splitlines()[0]
    state = lab.host(node)
    real = str(ip_address(state.addresses[0].split("/")[0]))
    script_dir = Path(state.config).parent
    up, down = script_dir / "up.sh", script_dir / "down.sh"
    for script, word in ((up, "MASTER"), (down, "BACKUP")):
        script.write_text(f"#!/bin/sh\necho {word} >> {script_dir / 'ucarp.state'}\n")
        script.chmod(0o755)
    return [
        shutil.which("ucarp") or "ucarp",
        "-i", "lab0", "-s", real, "-v", str(lab.state.vhid), "-p", secret,
        "-a", VIP, "-b", "1", "-k", str(advskew), "-u", str(up), "-d", str(down), "-n",
        "-f", "none",
    ]  # fmt: skip


def ucarp_role(lab: Cluster, node: str) -> str:
    path = Path(lab.host(node).config).parent / "ucarp.state"
    lines = path.read_text().split() if path.exists() else []
    return lines[-1] if lines else ""


@pytest.fixture
def ucarp_available() -> None:
    if shutil.which("ucarp") is None:
        pytest.skip("Debian's ucarp is not installed (tools/test.sh installs it)")


def test_carpctl_master_with_a_ucarp_backup_and_failover_both_ways(
    make_lab: Callable[..., Cluster], ucarp_available: None
) -> None:
    lab = make_lab(nodes=2, start=False, preempt=True)
    lab.start("node1")
    assert lab.wait_role("node1", "MASTER", ELECTION)
    lab.spawn("node2", ucarp_argv(lab, "node2", advskew=100), "ucarp")
    time.sleep(4.0)  # more than ucarp's master-down interval: it must stay BACKUP
    assert ucarp_role(lab, "node2") == ""  # the up-script never ran
    assert lab.role("node1") == "MASTER"
    lab.fail("node1", FailMode.TERM)  # ucarp reacts to the bow-out too
    assert wait_for(lambda: ucarp_role(lab, "node2") == "MASTER", ELECTION)
    lab.recover("node1")  # preempt: carpctl takes back from the slower ucarp
    assert lab.wait_role("node1", "MASTER", ELECTION)
    assert wait_for(lambda: ucarp_role(lab, "node2") == "BACKUP", ELECTION)


def test_ucarp_master_with_a_carpctl_backup_and_failover(
    make_lab: Callable[..., Cluster], ucarp_available: None
) -> None:
    lab = make_lab(nodes=2, start=False)
    lab.spawn("node1", ucarp_argv(lab, "node1", advskew=0), "ucarp")
    assert wait_for(lambda: ucarp_role(lab, "node1") == "MASTER", ELECTION)
    lab.start("node2")
    assert lab.wait_role("node2", "BACKUP", ELECTION)
    time.sleep(4.0)
    assert lab.role("node2") == "BACKUP"  # ucarp's advertisements verified
    assert events(lab, "node2", "packet dropped") == []
    assert lab.signal("ucarp", signal.SIGKILL)
    assert lab.wait_role("node2", "MASTER", ELECTION)
    assert transitions(lab, "node2")[-1] == ("MASTER", "master timed out")


def test_with_a_different_password_neither_accepts_the_other(
    make_lab: Callable[..., Cluster], ucarp_available: None
) -> None:
    lab = make_lab(nodes=2, start=False)
    lab.spawn("node1", ucarp_argv(lab, "node1", advskew=0, password="not-the-same"), "ucarp")
    assert wait_for(lambda: ucarp_role(lab, "node1") == "MASTER", ELECTION)
    lab.start("node2")
    assert lab.wait_role("node2", "MASTER", ELECTION)  # it never heard a valid master
    drops = events(lab, "node2", "packet dropped")
    assert drops
    assert {d["reason"] for d in drops} == {"badauth"}
    assert ucarp_role(lab, "node1") == "MASTER"  # and ucarp did not yield to us


# -- bad input ---------------------------------------------------------------


def test_malformed_advertisements_change_nothing_and_are_counted(
    make_lab: Callable[..., Cluster],
) -> None:
    lab = make_lab(nodes=2)
    elected(lab)
    key = auth.carp_key(Path(lab.state.password_file).read_text().splitlines()[0])
    hashed = auth.VirtualHostAddresses.of([ip_address(VIP)])

    def advert(vhid: int = 1, key: bytes = key, advskew: int = 0, advbase: int = 1) -> bytes:
        digest = auth.compute_digest(key, vhid, hashed, 99)
        return wire.encode(wire.CarpHeader(vhid, advbase, advskew, 99, digest))

    good = advert()  # a better master than node2 (skew 0 < 100) if it were accepted
    bad_sum = good[:6] + bytes([good[6] ^ 0xFF]) + good[7:]
    version3 = bytes([0x31]) + good[1:6] + b"\0\0" + good[8:]
    version3 = version3[:6] + internet_checksum(version3).to_bytes(2, "big") + version3[8:]
    specs = {
        "badttl": f"254:{good.hex()}",
        "badsum": f"255:{bad_sum.hex()}",
        "badver": f"255:{version3.hex()}",
        "badvhid": f"255:{advert(vhid=99).hex()}",
        "badauth": f"255:{advert(key=b'wrong').hex()}",
        "badlen": f"255:{good[:20].hex()}",
    }
    before = lab.roles()
    for _ in range(3):
        result = lab.exec("client", [sys.executable, str(INJECT), "lab0", *specs.values()])
        assert result.returncode == 0, result.stderr
        time.sleep(0.2)
    # node2 is BACKUP: an accepted 'good' packet from the client would have
    # restarted its timer; a forged better one must not make node1 yield.
    time.sleep(1.5)
    assert lab.roles() == before
    for node in ("node1", "node2"):
        reasons = {d["reason"] for d in events(lab, node, "packet dropped")}
        assert reasons == set(specs), (node, reasons)
    assert lab.holders() == ["node1"]
