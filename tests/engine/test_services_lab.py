"""Services follow mastership in the lab: real processes, real failovers."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from nodeconfigs import current, write_config

from carpctl.lab import Cluster, FailMode
from carpctl.lab.netns import wait_for

pytestmark = pytest.mark.netns

VIP = [(1, 0, "198.51.100.100/24")]
BACKUP_VIP = [(1, 100, "198.51.100.100/24")]
FLAG = Path(__file__).with_name("flag_service.py")
PY = sys.executable


def flag_service(flag: Path, *, name: str = "app", timeout: float = 5.0) -> str:
    def argv(*words: str) -> str:
        return "[" + ", ".join(f'"{w}"' for w in (PY, str(FLAG), *words)) + "]"

    return f"""
[[service]]
name = "{name}"
start = {argv("start", str(flag))}
stop = {argv("stop", str(flag))}
status = {argv("status", str(flag))}
timeout = {timeout}
"""


WEB = f"""
[[service]]
name = "web"
run = ["{PY}", "-m", "http.server", "8081", "--bind", "0.0.0.0"]
timeout = 5
"""


def serves(lab: Cluster) -> bool:
    """The client reaches the web service on the virtual address."""
    code = (
        "import urllib.request,sys;"
        "sys.exit(0 if urllib.request.urlopen('http://198.51.100.100:8081/', timeout=1).status"
        " == 200 else 1)"
    )
    return lab.exec("client", [PY, "-c", code], timeout=5).returncode == 0


def test_services_run_only_on_the_master_through_demotion_failover_and_stop(
    make_lab: Callable[..., Cluster], tmp_path: Path
) -> None:
    flags = {n: tmp_path / f"{n}.running" for n in ("node1", "node2")}
    write_config(lab := make_lab(nodes=2, start=False), "node1", VIP, preempt=True,
                 extra=flag_service(flags["node1"]) + WEB)  # fmt: skip
    write_config(lab, "node2", BACKUP_VIP, preempt=True, extra=flag_service(flags["node2"]) + WEB)
    lab.start("node1")
    lab.start("node2")
    assert wait_for(lambda: current(lab, "node1") == {1: "MASTER"}, 10.0)
    assert wait_for(flags["node1"].exists, 5.0)
    assert flags["node1"].read_text().split() == ["1@lab0", "MASTER"]  # devd-style arguments
    assert wait_for(lambda: serves(lab), 5.0)
    assert not flags["node2"].exists()

    def carpctl(node: str, *args: str) -> None:
        result = lab.exec(node, [PY, "-m", "carpctl", "-c", lab.host(node).config, *args])
        assert result.returncode == 0, result.stderr

    carpctl("node1", "demote", "+150")  # node2 preempts; services move with mastership
    assert wait_for(lambda: flags["node2"].exists() and not flags["node1"].exists(), 5.0)
    assert wait_for(lambda: serves(lab), 5.0)
    carpctl("node1", "demote", "-150")
    assert wait_for(lambda: flags["node1"].exists() and not flags["node2"].exists(), 5.0)

    lab.fail("node1", FailMode.TERM)  # graceful stop: bow-out, then services stop
    assert wait_for(flags["node2"].exists, 5.0)
    assert not flags["node1"].exists()
    assert wait_for(lambda: serves(lab), 5.0)


def test_a_hanging_start_is_killed_and_the_node_hands_over(
    make_lab: Callable[..., Cluster], tmp_path: Path
) -> None:
    lab = make_lab(nodes=2, start=False)
    hang = f"""
[[service]]
name = "stuck"
start = ["{PY}", "{FLAG}", "hang", "{tmp_path / "never"}"]
stop = ["{PY}", "{FLAG}", "stop", "{tmp_path / "never"}"]
timeout = 1
demote = 200
"""
    write_config(lab, "node1", VIP, preempt=True, extra=hang)
    write_config(lab, "node2", BACKUP_VIP, preempt=True)
    lab.start("node1")
    lab.start("node2")
    assert wait_for(lambda: current(lab, "node1").get(1) == "MASTER", 10.0)
    # The start hangs, is killed after 1 s, demotes node1 by 200: node2 preempts.
    assert wait_for(lambda: current(lab, "node2") == {1: "MASTER"}, 8.0)
    status = lab.exec("node1", [PY, "-m", "carpctl", "-c", lab.host("node1").config, "status"])
    assert "service:stuck" in status.stdout
    hung = lab.exec("node1", ["pgrep", "-f", f"{FLAG} hang"])
    assert hung.returncode == 1, hung.stdout  # killed, with nothing left behind


def test_missed_events_are_corrected_by_the_level_triggered_reconcile(
    make_lab: Callable[..., Cluster], tmp_path: Path
) -> None:
    flags = {n: tmp_path / f"{n}.running" for n in ("node1", "node2")}
    lab = make_lab(nodes=2, start=False)
    write_config(lab, "node1", VIP, extra=flag_service(flags["node1"]))
    write_config(lab, "node2", BACKUP_VIP, extra=flag_service(flags["node2"]))
    lab.start("node1")
    lab.start("node2")
    assert wait_for(flags["node1"].exists, 10.0)
    # node1's daemon dies; its service keeps running, nobody tells it to stop.
    lab.fail("node1", FailMode.KILL)
    assert wait_for(flags["node2"].exists, 10.0)
    assert flags["node1"].exists()
    lab.recover("node1")  # preempt off: node1 comes back as BACKUP
    assert wait_for(lambda: current(lab, "node1") == {1: "BACKUP"}, 10.0)
    assert wait_for(lambda: not flags["node1"].exists(), 5.0)  # stopped by the reconcile
    assert flags["node2"].exists()
