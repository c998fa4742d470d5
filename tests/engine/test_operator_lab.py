"""Operators steer the embedded engine through the control socket, in the lab."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from subprocess import CompletedProcess

import pytest

from carpctl.lab import Cluster, FailMode
from carpctl.lab.netns import wait_for

pytestmark = pytest.mark.netns

ELECTION = 10.0


def carpctl(lab: Cluster, node: str, *args: str) -> CompletedProcess[str]:
    argv = [sys.executable, "-m", "carpctl", "-c", lab.host(node).config, *args]
    return lab.exec(node, argv)


def status(lab: Cluster, node: str) -> dict[str, object]:
    result = carpctl(lab, node, "status", "--json")
    assert result.returncode == 0, result.stderr
    parsed: dict[str, object] = json.loads(result.stdout)
    return parsed


def test_demote_moves_mastership_and_survives_kill_9(make_lab: Callable[..., Cluster]) -> None:
    lab = make_lab(nodes=2, preempt=True)
    assert lab.wait_role("node1", "MASTER", ELECTION)
    assert lab.wait_role("node2", "BACKUP", ELECTION)
    moved = carpctl(lab, "node1", "demote", "+150", "--reason", "patching")
    assert moved.returncode == 0, moved.stderr
    assert lab.wait_role("node2", "MASTER", 3.0)  # node2 preempts node1's skew 150
    assert lab.role("node1") == "BACKUP"
    assert wait_for(lambda: lab.holders() == ["node2"], 3.0)
    # The share survives a crash and a restart, so node1 does not grab the VIP back.
    lab.fail("node1", FailMode.KILL)
    lab.recover("node1")
    assert lab.wait_role("node1", "BACKUP", ELECTION)
    node1 = status(lab, "node1")
    demotion = node1["demotion"]
    assert isinstance(demotion, dict)
    assert demotion["total"] == 150
    assert [(e["name"], e["reason"]) for e in demotion["entries"]] == [("operator", "patching")]
    assert lab.role("node2") == "MASTER"
    back = carpctl(lab, "node1", "demote", "-150")
    assert back.returncode == 0, back.stderr
    assert lab.wait_role("node1", "MASTER", 3.0)
    # The journal tells the story across the crash, from the state directory.
    journal = carpctl(lab, "node1", "events", "--json")
    assert journal.returncode == 0, journal.stderr
    records = [json.loads(line) for line in journal.stdout.splitlines()]
    seqs = [r["seq"] for r in records]
    assert seqs == sorted(seqs)
    assert len(seqs) == len(set(seqs))
    starts = [r for r in records if r["kind"] == "daemon" and r.get("event") == "start"]
    assert len(starts) == 2  # before and after the kill -9
    demotions = [(r["entry"], r["new"]) for r in records if r["kind"] == "demotion"]
    assert ("operator", 150) in demotions
    assert demotions[-1] == ("operator", 0)
    transitions = [(r["new"], r["reason"]) for r in records if r["kind"] == "transition"]
    assert ("BACKUP", "more frequent advertisement received") in transitions
    assert transitions[-1] == ("MASTER", "preempting a slower master")
    human = carpctl(lab, "node1", "status")
    assert "Recent events" in human.stdout
    assert_log_is_structured(lab, "node1")


def assert_log_is_structured(lab: Cluster, node: str) -> None:
    """Every daemon line is JSON with an event, a level and a time; state and
    demotion changes carry what an operator needs to read them alone."""
    lines = [line for line in lab.log(node).read_text().splitlines() if line.startswith("{")]
    records = [json.loads(line) for line in lines]
    daemon = [r for r in records if "level" in r]  # the lab's own markers have none
    assert daemon
    assert all({"event", "level", "timestamp"} <= r.keys() for r in daemon)
    changes = [r for r in daemon if r["event"] == "state changed" and "interface" in r]
    assert changes
    assert all({"vhid", "interface", "old", "new", "reason"} <= r.keys() for r in changes)
    demotions = [r for r in daemon if r["event"] == "demotion changed"]
    assert demotions
    for record in demotions:
        assert {"entry", "amount", "total", "effective_skew", "reason"} <= record.keys()
    operator = next(r for r in demotions if r["entry"] == "operator" and r["amount"] == 150)
    assert operator["effective_skew"] == {"1@lab0": 150}


def test_maintenance_survives_restart_and_is_shown(make_lab: Callable[..., Cluster]) -> None:
    lab = make_lab(nodes=2, preempt=True)
    assert lab.wait_role("node1", "MASTER", ELECTION)
    on = carpctl(lab, "node1", "maintenance", "on", "--reason", "kernel upgrade")
    assert on.returncode == 0, on.stderr
    assert lab.wait_role("node2", "MASTER", 3.0)
    lab.fail("node1", FailMode.TERM)
    lab.recover("node1")
    assert lab.wait_role("node1", "BACKUP", ELECTION)
    vhids = status(lab, "node1")["vhids"]
    assert isinstance(vhids, list)
    assert vhids[0]["effective_skew"] == 240
    human = carpctl(lab, "node1", "status")
    assert "maintenance" in human.stdout
    assert "kernel upgrade" in human.stdout
    off = carpctl(lab, "node1", "maintenance", "off")
    assert off.returncode == 0, off.stderr
    assert lab.wait_role("node1", "MASTER", 3.0)


def test_bad_requests_and_a_second_daemon_are_refused_cleanly(
    make_lab: Callable[..., Cluster],
) -> None:
    lab = make_lab(nodes=1)
    assert lab.wait_role("node1", "MASTER", ELECTION)
    for args in (["demote", "+abc"], ["demote", "99999999999"], ["demote", "--set", "5"]):
        result = carpctl(lab, "node1", *args)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1
        assert "Traceback" not in result.stderr
    negative = carpctl(lab, "node1", "demote", "-10")
    assert negative.returncode == 1
    assert "negative" in negative.stderr
    second = carpctl(lab, "node1", "run")
    assert second.returncode == 1
    assert "already serving" in second.stderr
    assert lab.role("node1") == "MASTER"  # the refused second daemon touched nothing
    assert lab.holders() == ["node1"]
