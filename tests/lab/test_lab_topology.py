"""The lab's topology: namespaces, a bridge, reachability, nothing in the root namespace.

Every lab here is removed by a fixture finalizer, also when a test fails.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable

import pytest
from labhelpers import carpctl, lab_name

from carpctl.lab import Cluster, teardown
from carpctl.lab.demo import remove_abandoned_demos
from carpctl.lab.netns import list_namespaces
from carpctl.lab.state import DEFAULT_ROOT, StateDir

pytestmark = pytest.mark.netns


def root_links() -> set[str]:
    """The interfaces of the root namespace (``ip -o link``), by name and index."""
    out = subprocess.run(
        ["ip", "-o", "link"], capture_output=True, text=True, check=True, timeout=10
    ).stdout
    return {" ".join(line.split()[:2]) for line in out.splitlines()}


def lab_namespaces(name: str) -> set[str]:
    return {ns for ns in list_namespaces() if ns.startswith(f"carplab-{name}-")}


def test_the_topology_comes_up(make_lab: Callable[..., Cluster]) -> None:
    before = root_links()
    lab = make_lab(nodes=3, ipv6=True, start=False)
    prefix = f"carplab-{lab.name}-"
    assert lab_namespaces(lab.name) == {
        prefix + host for host in ("switch", "node1", "node2", "node3", "client")
    }
    assert lab.ping("node1", "node2")
    assert lab.ping("node1", "client")
    assert lab.ping("client", "2001:db8::3")
    assert not lab.ping("node1", "198.51.100.100", timeout=0.3)  # no carpctl: no VIP
    node1 = lab.host("node1")
    assert lab.net.addresses(node1.namespace, "lab0") == ["198.51.100.1/24", "2001:db8::1/64"]
    assert lab.net.mac(node1.namespace, "lab0") == node1.mac
    (bridge,) = lab.net.ip_json(lab.namespace("switch"), "-d", "link", "show", "labbr0")
    assert bridge["linkinfo"]["info_kind"] == "bridge"
    ports = lab.net.ip_json(lab.namespace("switch"), "link", "show", "master", "labbr0")
    assert {port["ifname"] for port in ports} == {"lab1", "lab2", "lab3", "labc"}
    assert root_links() == before  # not one veth or bridge in the root namespace
    assert lab.status(client=False).holders == []
    lab.close()
    assert lab_namespaces(lab.name) == set()
    assert not StateDir(lab.name).exists()
    assert root_links() == before


def test_the_state_records_what_down_needs(make_lab: Callable[..., Cluster]) -> None:
    lab = make_lab(nodes=2, start=False)
    state = StateDir(lab.name).load()
    assert state is not None
    assert set(state.namespaces) == lab_namespaces(lab.name)
    assert set(state.hosts) == {"node1", "node2", "client"}
    password = StateDir(lab.name).path / "password"
    assert password.stat().st_mode & 0o777 == 0o600
    assert Cluster.attach(lab.name).nodes == ["node1", "node2"]


def test_down_after_the_python_object_is_dropped(netns_ok: None) -> None:
    name = lab_name()
    try:
        lab = Cluster.up(name=name, nodes=2, start=False)
        sleeper = lab.spawn("node2", ["sleep", "300"], "sleeper")
        del lab  # never closed: as if the owner had crashed
        assert len(lab_namespaces(name)) == 4
        report = teardown(name)
        assert report.found
        assert sleeper.pid in report.stopped
        sleeper.wait(5)
        assert lab_namespaces(name) == set()
        assert not StateDir(name).exists()
    finally:
        teardown(name)


def test_down_by_name_after_the_lab_command_was_killed(lab_names: list[str]) -> None:
    name = lab_name()
    lab_names.append(name)
    # A process that builds a lab, starts a program in it, then dies by SIGKILL.
    code = (
        "import os, signal\n"
        "from carpctl.lab import Cluster\n"
        f"lab = Cluster.up(name={name!r}, nodes=2, start=False)\n"
        "lab.spawn('client', ['sleep', '300'], 'sleeper')\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    died = subprocess.run(
        [sys.executable, "-c", code], check=False, capture_output=True, timeout=60
    )
    assert died.returncode == -9, died.stderr
    assert len(lab_namespaces(name)) == 4
    result = carpctl("lab", "down", "--name", name)
    assert result.returncode == 0, result.stderr
    assert f"lab {name}: removed 4 namespaces" in result.stdout
    assert lab_namespaces(name) == set()
    assert not (DEFAULT_ROOT / name).exists()
    again = carpctl("lab", "down", "--name", name)
    assert (again.returncode, again.stdout.strip()) == (0, f"lab {name}: nothing to remove")


def test_down_finds_namespaces_the_state_file_missed(lab_names: list[str]) -> None:
    name = lab_name()
    lab_names.append(name)
    lab = Cluster.up(name=name, nodes=2, start=False)
    lab.store.remove()  # the state directory is gone (say /run was cleaned)
    assert len(lab_namespaces(name)) == 4
    assert teardown(name).found
    assert lab_namespaces(name) == set()


def test_the_cli_topology(lab_names: list[str]) -> None:
    name = lab_name()
    lab_names.append(name)
    up = carpctl("lab", "up", "--name", name, "--no-start")
    assert up.returncode == 0, up.stderr
    assert "node1   198.51.100.1/24" in up.stdout
    again = carpctl("lab", "up", "--name", name, "--no-start")
    assert again.returncode == 1
    assert "already exists" in again.stderr
    status = carpctl("lab", "status", "--name", name)
    assert status.returncode == 0, status.stderr
    assert "client: 198.51.100.100 NOT reachable" in status.stdout
    usage = carpctl("lab", "up", "--name", "Bad-Name")
    assert usage.returncode == 2
    missing = carpctl("lab", "status", "--name", "nosuchlab")
    assert missing.returncode == 1
    assert "there is no lab named nosuchlab" in missing.stderr
    down = carpctl("lab", "down", "--name", name)
    assert down.returncode == 0, down.stderr
    assert lab_namespaces(name) == set()


def test_a_demo_removes_only_the_demos_whose_process_died(lab_names: list[str]) -> None:
    dead, alive = f"demo{os.getpid()}1", f"demo{os.getpid()}2"
    lab_names.extend([dead, alive])
    code = (
        "import os, signal\n"
        "from carpctl.lab import Cluster\n"
        f"Cluster.up(name={dead!r}, nodes=2, start=False)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    died = subprocess.run(
        [sys.executable, "-c", code], check=False, capture_output=True, timeout=60
    )
    assert died.returncode == -9, died.stderr
    Cluster.up(name=alive, nodes=2, start=False)  # owned by this (living) process
    removed = remove_abandoned_demos()
    assert dead in removed
    assert alive not in removed
    assert lab_namespaces(dead) == set()
    assert len(lab_namespaces(alive)) == 4
