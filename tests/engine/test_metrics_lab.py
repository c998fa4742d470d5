"""Prometheus metrics of a real node, scraped from inside its namespace, in the lab."""

from __future__ import annotations

import sys
from collections.abc import Callable

import pytest
from nodeconfigs import current, write_config
from prometheus_client.parser import text_string_to_metric_families

from carpctl.lab import Cluster, FailMode
from carpctl.lab.netns import wait_for

pytestmark = pytest.mark.netns

VIP = "198.51.100.100/24"
LISTEN = "127.0.0.1:9723"
SCRAPE = (
    "import sys, urllib.request; "
    f"answer = urllib.request.urlopen('http://{LISTEN}/metrics', timeout=5); "
    "sys.stdout.write(answer.read().decode())"
)
V = {"vhid": "1@lab0", "interface": "lab0"}
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(lab: Cluster, node: str) -> Samples:
    result = lab.exec(node, [sys.executable, "-c", SCRAPE])
    assert result.returncode == 0, result.stderr
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(result.stdout)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def changes(samples: Samples, old: str, new: str) -> dict[str, float]:
    """Counted state changes of vhid 1 from ``old`` to ``new``, by reason."""
    found = {}
    for (name, labels), count in samples.items():
        tags = dict(labels)
        if name == "carpctl_vhid_transitions_total" and (tags["from"], tags["to"]) == (old, new):
            found[tags["reason"]] = count
    return found


def carpctl(lab: Cluster, node: str, *args: str) -> None:
    argv = [sys.executable, "-m", "carpctl", "-c", lab.host(node).config, *args]
    result = lab.exec(node, argv)
    assert result.returncode == 0, result.stderr


def test_metrics_follow_a_demotion_and_a_failover(make_lab: Callable[..., Cluster]) -> None:
    lab = make_lab(nodes=2, start=False)
    write_config(lab, "node1", [(1, 0, VIP)], preempt=True, metrics_listen=LISTEN)
    write_config(lab, "node2", [(1, 100, VIP)], preempt=True)
    lab.start("node1")
    lab.start("node2")
    assert wait_for(lambda: current(lab, "node1") == {1: "MASTER"}, 10.0)
    assert wait_for(lambda: current(lab, "node2") == {1: "BACKUP"}, 10.0)

    first = scrape(lab, "node1")
    assert value(first, "carpctl_metrics_snapshot_ok") == 1
    info = [dict(labels) for name, labels in first if name == "carpctl_info"]
    assert [i["backend"] for i in info] == ["embedded"]
    assert value(first, "carpctl_vhid_role", **V) == 2
    assert value(first, "carpctl_vhid_state", **V, state="MASTER") == 1
    assert value(first, "carpctl_vhid_advbase_seconds", **V) == 1
    assert value(first, "carpctl_vhid_effective_skew", **V) == 0
    assert value(first, "carpctl_demotion") == 0
    assert (value(first, "carpctl_advertisements_sent_total", **V) or 0) > 0
    assert value(first, "carpctl_advertisement_send_errors_total", **V) == 0
    assert changes(first, "INIT", "BACKUP") == {"init_complete": 1}
    assert changes(first, "BACKUP", "MASTER") == {"master_timed_out": 1}
    assert changes(first, "MASTER", "BACKUP") == {}

    # Demoted by 150 with preempt on: node2 (skew 100) takes over.
    carpctl(lab, "node1", "demote", "+150", "--reason", "patching")
    assert wait_for(lambda: current(lab, "node2") == {1: "MASTER"}, 5.0)
    assert wait_for(lambda: current(lab, "node1") == {1: "BACKUP"}, 5.0)
    demoted = scrape(lab, "node1")
    assert value(demoted, "carpctl_vhid_role", **V) == 1
    assert value(demoted, "carpctl_vhid_state", **V, state="BACKUP") == 1
    assert value(demoted, "carpctl_demotion") == 150
    assert value(demoted, "carpctl_demotion_source", source="operator") == 150
    assert value(demoted, "carpctl_demotion_source", source="check") == 0
    assert value(demoted, "carpctl_demotion_entry", entry="operator", source="operator") == 150
    assert value(demoted, "carpctl_vhid_effective_skew", **V) == 150
    assert value(demoted, "carpctl_vhid_advskew", **V) == 0
    assert changes(demoted, "MASTER", "BACKUP") == {"more_frequent": 1}  # node2's better skew
    assert (value(demoted, "carpctl_packets_accepted_total", interface="lab0") or 0) > 0

    # node2 dies: node1 takes over, still demoted, because nobody else advertises.
    lab.fail("node2", FailMode.KILL)
    assert wait_for(lambda: current(lab, "node1") == {1: "MASTER"}, 10.0)
    taken = scrape(lab, "node1")
    assert value(taken, "carpctl_vhid_role", **V) == 2
    assert value(taken, "carpctl_demotion") == 150
    assert changes(taken, "BACKUP", "MASTER") == {"master_timed_out": 2}
    assert changes(taken, "MASTER", "BACKUP") == {"more_frequent": 1}
    assert (value(taken, "carpctl_vhid_state_seconds", **V) or 99) < 10
