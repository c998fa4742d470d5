"""Reload in the lab: bad configs are refused, good ones apply without disturbing
the vhids they do not touch, disruptive ones need --force."""

from __future__ import annotations

import json
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from subprocess import CompletedProcess

import pytest
from nodeconfigs import current, roles_by_vhid, write_config

from carpctl.lab import Cluster
from carpctl.lab.netns import wait_for

pytestmark = pytest.mark.netns

ONE = [(1, 0, "198.51.100.100/24")]
TWO = [*ONE, (2, 0, "198.51.100.102/24")]


def carpctl(lab: Cluster, node: str, *args: str) -> CompletedProcess[str]:
    argv = [sys.executable, "-m", "carpctl", "-c", lab.host(node).config, *args]
    return lab.exec(node, argv)


def events(lab: Cluster, node: str, name: str) -> list[dict[str, object]]:
    found = []
    for line in lab.log(node).read_text().splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            if record.get("event") == name:
                found.append(record)
    return found


def test_reload_applies_in_place_and_refuses_what_it_must(
    make_lab: Callable[..., Cluster],
) -> None:
    lab = make_lab(nodes=2, start=False)
    write_config(lab, "node1", ONE)
    write_config(lab, "node2", [(1, 100, "198.51.100.100/24"), (2, 100, "198.51.100.102/24")])
    lab.start("node1")
    lab.start("node2")
    assert wait_for(lambda: current(lab, "node1") == {1: "MASTER"}, 10.0)

    # A bad config: refused, the old one keeps running.
    config = Path(lab.host("node1").config)
    good = config.read_text()
    config.write_text(good.replace("advskew = 0", "advskew = 300"))
    bad = carpctl(lab, "node1", "reload")
    assert bad.returncode == 2
    assert "advskew" in bad.stderr
    config.write_text(good)

    # A new vhid, and preempt on: applied; vhid 1 keeps its mastership (no new
    # state change) while the new vhid 2 preempts node2's slower master.
    write_config(lab, "node1", TWO, preempt=True)
    dry = carpctl(lab, "node1", "reload", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "2@lab0" in dry.stdout
    assert roles_by_vhid(lab, "node1").get(2) is None  # a dry run changes nothing
    applied = carpctl(lab, "node1", "reload")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert wait_for(lambda: current(lab, "node1") == {1: "MASTER", 2: "MASTER"}, 10.0)
    assert roles_by_vhid(lab, "node1")[1] == ["BACKUP", "MASTER"]
    assert wait_for(lambda: lab.ping("client", "198.51.100.102"), 5.0)

    # Removing vhid 1 while MASTER drops its address: refused without --force.
    write_config(lab, "node1", [(2, 0, "198.51.100.102/24")], preempt=True)
    refused = carpctl(lab, "node1", "reload")
    assert refused.returncode == 1
    assert "--force" in refused.stdout + refused.stderr
    assert current(lab, "node1")[1] == "MASTER"
    forced = carpctl(lab, "node1", "reload", "--force")
    assert forced.returncode == 0, forced.stdout + forced.stderr
    # vhid 1 bowed out: node2 takes it at once.
    assert wait_for(lambda: current(lab, "node2").get(1) == "MASTER", 3.0)
    assert roles_by_vhid(lab, "node1")[1][-1] == "INIT"

    # SIGHUP reloads too (nothing changed now: applied, empty plan).
    assert lab.signal("node1", signal.SIGHUP)
    assert wait_for(lambda: len(events(lab, "node1", "reload")) >= 4, 5.0)
    assert events(lab, "node1", "reload")[-1]["applied"] is True
