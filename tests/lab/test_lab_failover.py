"""carpctl itself on the lab: election, the client's view, a crash and the takeover.

These need ``carpctl run``; they are skipped while this carpctl lacks it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import pytest
from labhelpers import carpctl, lab_name

from carpctl.lab import Cluster, FailMode
from carpctl.lab.netns import list_namespaces, wait_for
from carpctl.lab.probe import Prober

pytestmark = pytest.mark.netns

ELECTION = 10.0  # seconds; CARP needs about 3 (3 x advbase)
VIP = "198.51.100.100"


def test_node1_wins_and_node2_takes_over_after_a_crash(
    needs_run: None, make_lab: Callable[..., Cluster]
) -> None:
    lab = make_lab(nodes=2)
    assert lab.wait_role("node1", "MASTER", ELECTION), lab.status(client=False)
    assert lab.wait_role("node2", "BACKUP", ELECTION)
    assert wait_for(lambda: lab.holders() == ["node1"], 2.0), lab.holders()
    view = lab.client_view()
    assert view.reachable
    assert (view.mac, view.owner) == (lab.host("node1").mac, "node1")

    with Prober(lab, VIP) as prober:
        assert prober.wait_reply(time.monotonic(), 5.0) is not None
        crash = lab.fail("node1", FailMode.KILL)
        reply = prober.wait_reply(crash, 15.0)
        assert reply is not None, "the client never reached the VIP after the crash"
        assert reply.mac == lab.host("node2").mac
    assert lab.role("node2") == "MASTER"
    # node1 crashed holding the VIP: the address is still there, on a link that is down.
    assert wait_for(lambda: lab.holders() == ["node1", "node2"], 2.0), lab.holders()
    view = lab.client_view()
    assert view.reachable
    assert view.owner == "node2"

    status = lab.status(client=False)
    node1 = status.nodes[0]
    assert (node1.process, node1.link_up, node1.failure) == ("gone", False, "kill")

    lab.close()
    assert not [ns for ns in list_namespaces() if ns.startswith(f"carplab-{lab.name}-")]


def test_the_cli_reports_roles_and_the_client_view(needs_run: None, lab_names: list[str]) -> None:
    name = lab_name()
    lab_names.append(name)
    up = carpctl("lab", "up", "--name", name, "--wait", str(ELECTION))
    assert up.returncode == 0, up.stderr
    assert "node1 is MASTER" in up.stdout
    status = carpctl("lab", "status", "--name", name)
    assert status.returncode == 0, status.stderr
    lab = Cluster.attach(name)
    node1_mac = lab.host("node1").mac
    assert f"client: {VIP} reachable, answered by {node1_mac} = node1" in status.stdout
    fail = carpctl("lab", "fail", "node1", "--how", "term", "--name", name)
    assert fail.returncode == 0, fail.stderr
    assert lab.wait_role("node2", "MASTER", 5.0)  # a bow-out: node2 takes over at once
    recover = carpctl("lab", "recover", "node1", "--name", name)
    assert (recover.returncode, recover.stdout.strip()) == (0, "node1: started carpctl")
    down = carpctl("lab", "down", "--name", name)
    assert down.returncode == 0, down.stderr


def test_the_demo_tells_the_story_and_cleans_up(needs_run: None) -> None:
    result = carpctl("lab", "demo", timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    for expected in (
        "node1 is MASTER",
        "= node1",
        "node1 crashes",
        "node2 is MASTER",
        "= node2",
        "node1 is MASTER again",
        "lab removed",
    ):
        assert expected in out, out
    match = re.search(r"lab (demo[0-9]+) up", out)
    assert match, out
    assert not [ns for ns in list_namespaces() if ns.startswith(f"carplab-{match[1]}-")]


def test_linkdown_and_stop_and_their_recovery(
    needs_run: None, make_lab: Callable[..., Cluster]
) -> None:
    lab = make_lab(nodes=2)
    assert lab.wait_role("node1", "MASTER", ELECTION)
    lab.fail("node1", FailMode.LINKDOWN)
    assert lab.wait_role("node2", "MASTER", ELECTION)
    assert lab.client_view().owner == "node2"
    assert lab.recover("node1") == ["link up"]
    assert lab.wait_role("node1", "BACKUP", ELECTION)  # no preempt: node2 stays MASTER
    assert lab.role("node2") == "MASTER"

    lab.fail("node2", FailMode.STOP)  # hung: no adverts, but its kernel keeps the VIP
    assert lab.status(client=False).nodes[1].process == "stopped"
    assert lab.wait_role("node1", "MASTER", ELECTION)
    assert lab.recover("node2") == ["SIGCONT"]
    assert lab.wait_role("node2", "BACKUP", ELECTION)  # it hears node1's better adverts
    assert wait_for(lambda: lab.holders() == ["node1"], 2.0), lab.holders()
    assert wait_for(lambda: lab.client_view().owner == "node1", 3.0), lab.client_view()
