"""Health checks move mastership in the lab: a real HTTP server that starts failing."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from nodeconfigs import current, write_config

from carpctl.lab import Cluster
from carpctl.lab.netns import wait_for

pytestmark = pytest.mark.netns

VIP = "198.51.100.100/24"
SERVER = Path(__file__).with_name("health_server.py")
CHECK = """
[[check]]
name = "web"
kind = "http"
url = "http://127.0.0.1:8080/health"
interval = 0.5
timeout = 0.4
rise = 2
fall = 2
demote = 150
"""


def check_changes(lab: Cluster, node: str) -> list[tuple[str, str]]:
    changes = []
    for line in lab.log(node).read_text().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("event") == "check changed":
            changes.append((str(record["new"]), str(record["detail"])))
    return changes


def test_a_failing_http_check_hands_mastership_over_and_its_recovery_takes_it_back(
    make_lab: Callable[..., Cluster], tmp_path: Path
) -> None:
    lab = make_lab(nodes=2, start=False)
    flags = {}
    for node in ("node1", "node2"):
        flags[node] = tmp_path / f"{node}.healthy"
        flags[node].touch()
        lab.spawn(node, [sys.executable, str(SERVER), "8080", str(flags[node])], f"http-{node}")
    write_config(lab, "node1", [(1, 0, VIP)], preempt=True, extra=CHECK)
    write_config(lab, "node2", [(1, 100, VIP)], preempt=True, extra=CHECK)
    lab.start("node1")
    lab.start("node2")
    assert wait_for(lambda: current(lab, "node1") == {1: "MASTER"}, 10.0)
    assert wait_for(lambda: current(lab, "node2") == {1: "BACKUP"}, 10.0)
    assert wait_for(
        lambda: ("passing", "") in [(n, "") for n, _ in check_changes(lab, "node1")], 5.0
    )

    flags["node1"].unlink()  # node1's service starts answering 500
    assert wait_for(lambda: current(lab, "node2") == {1: "MASTER"}, 5.0)
    assert current(lab, "node1") == {1: "BACKUP"}
    assert check_changes(lab, "node1")[-1][0] == "failing"
    assert "500" in check_changes(lab, "node1")[-1][1]
    assert wait_for(lambda: lab.holders() == ["node2"], 3.0)

    flags["node1"].touch()  # recovered: with preempt, node1 takes back
    assert wait_for(lambda: current(lab, "node1") == {1: "MASTER"}, 5.0)
    assert wait_for(lambda: lab.holders() == ["node1"], 3.0)


def test_a_fresh_node_with_a_failing_check_never_takes_over(
    make_lab: Callable[..., Cluster], tmp_path: Path
) -> None:
    """Readiness gating: node1 (better skew) starts while its service is down."""
    lab = make_lab(nodes=2, start=False)
    flag = tmp_path / "absent"
    lab.spawn("node1", [sys.executable, str(SERVER), "8080", str(flag)], "http-node1")
    write_config(lab, "node2", [(1, 100, VIP)], preempt=True)
    lab.start("node2")
    assert wait_for(lambda: current(lab, "node2") == {1: "MASTER"}, 10.0)
    write_config(lab, "node1", [(1, 0, VIP)], preempt=True, extra=CHECK)
    lab.start("node1")
    assert wait_for(lambda: current(lab, "node1") == {1: "BACKUP"}, 5.0)
    assert wait_for(lambda: bool(check_changes(lab, "node1")), 5.0)
    assert current(lab, "node1") == {1: "BACKUP"}  # skew 0 + 150 > 100: no preempt
    flag.touch()
    assert wait_for(lambda: current(lab, "node1") == {1: "MASTER"}, 5.0)
