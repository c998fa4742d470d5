"""The lab's parts that need no namespaces: safety checks, configs, logs, ICMP."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from carpctl.daemon import config
from carpctl.lab import Namespaces, UnsafeOperation, check_address
from carpctl.lab.icmp import checksum, echo_request, parse_reply
from carpctl.lab.logs import MARKER, last_role, role_changes, write_marker
from carpctl.lab.nodeconfig import NodeConfig
from carpctl.lab.state import check_name, is_lab_namespace, prefix_of


@pytest.mark.parametrize("cidr", ["192.0.2.1/24", "10.0.0.1/8"])
def test_the_address_guard_refuses_foreign_ranges(cidr: str) -> None:
    with pytest.raises(UnsafeOperation, match=r"refusing .*198\.51\.100\.0/24"):
        check_address(cidr)
    # The namespace primitive checks the address before it runs anything.
    with pytest.raises(UnsafeOperation, match="refusing"):
        Namespaces("carplab-guard-").address("carplab-guard-x", "lab0", cidr)


def test_the_address_guard_names_the_host_network() -> None:
    with pytest.raises(UnsafeOperation, match=r"192\.0\.2\.0/24 is the machine's own network"):
        check_address("192.0.2.1/24")


@pytest.mark.parametrize(
    "cidr", ["198.51.100.1/16", "203.0.113.0/23", "2001:db9::1/64", "::1/128", "not-an-address"]
)
def test_the_address_guard_refuses_what_leaves_the_ranges(cidr: str) -> None:
    with pytest.raises(UnsafeOperation):
        check_address(cidr)


@pytest.mark.parametrize("cidr", ["198.51.100.1/24", "203.0.113.9/25", "2001:db8::1/64"])
def test_the_address_guard_accepts_the_lab_ranges(cidr: str) -> None:
    assert str(check_address(cidr)) == cidr


@pytest.mark.parametrize("name", ["eth0", "lo", "wlan0", "Lab0", "lab0.10"])
def test_only_lab_interfaces(name: str) -> None:
    lab = Namespaces("carplab-guard-")
    lab.namespaces.append("carplab-guard-a")
    with pytest.raises(UnsafeOperation, match="lab interfaces are named lab"):
        lab.address("carplab-guard-a", name, "198.51.100.1/24")


def test_only_own_namespaces() -> None:
    with pytest.raises(UnsafeOperation, match="not made by this lab"):
        Namespaces("carplab-guard-").ip("carplab-other-node1", "link")


@pytest.mark.parametrize("name", ["", "A", "1lab", "a-b", "x" * 17, "a/b", "a b"])
def test_lab_names_are_checked(name: str) -> None:
    with pytest.raises(UnsafeOperation):
        check_name(name)


def test_lab_namespaces_are_matched_exactly() -> None:
    assert prefix_of("demo") == "carplab-demo-"
    assert is_lab_namespace("demo", "carplab-demo-node1")
    assert is_lab_namespace("demo", "carplab-demo-switch")
    assert not is_lab_namespace("demo", "carplab-demo2-node1")
    assert not is_lab_namespace("demo", "carplab-demo-x-node1")
    assert not is_lab_namespace("demo", "cci-1-node1")
    assert not is_lab_namespace("demo", "carplab-demo-node1x")


def test_the_node_config_is_accepted_by_carpctl(tmp_path: Path) -> None:
    password = tmp_path / "password"
    password.write_text("s3cret\n")
    node = NodeConfig(
        vhid=1,
        interface="lab0",
        advbase=1,
        advskew=100,
        preempt=True,
        password_file=password,
        addresses=("198.51.100.100/24", "2001:db8::100/64"),
        state_dir=tmp_path / "state",
        control_socket=tmp_path / "carpctl.sock",
    )
    node.write(tmp_path / "carpctl.toml")
    loaded = config.load(tmp_path / "carpctl.toml")
    assert loaded.carp.preempt
    assert loaded.carpctl.log_format == "json"
    (vhid,) = loaded.vhids
    assert (vhid.vhid, vhid.interface, vhid.advskew, vhid.key) == (1, "lab0", 100, b"s3cret")
    assert [str(a) for a in vhid.addresses] == ["198.51.100.100/24", "2001:db8::100/64"]


def test_the_node_config_refuses_foreign_addresses(tmp_path: Path) -> None:
    node = NodeConfig(
        1, "lab0", 1, 0, False, tmp_path / "p", ("192.0.2.100/24",), tmp_path, tmp_path / "s"
    )
    with pytest.raises(UnsafeOperation):
        node.render()


def test_roles_come_from_the_current_run_of_the_log(tmp_path: Path) -> None:
    log = tmp_path / "carpctl.log"

    def change(old: str, new: str, reason: str) -> str:
        event = {"event": "state changed", "vhid": 1, "old": old, "new": new, "reason": reason}
        return json.dumps({**event, "timestamp": "2026-01-01T00:00:03.500000Z"}) + "\n"

    write_marker(log, ["carpctl", "run"])
    with log.open("a") as handle:
        handle.write(change("INIT", "BACKUP", "initialization complete"))
        handle.write("Traceback (most recent call last): not JSON\n")
        handle.write(change("BACKUP", "MASTER", "master timed out"))
    assert last_role(log) is not None
    assert last_role(log).new == "MASTER"  # type: ignore[union-attr]
    write_marker(log, ["carpctl", "run"])  # a restart: the old run no longer counts
    assert last_role(log) is None
    assert [c.new for c in role_changes(log, current_run=False)] == ["BACKUP", "MASTER"]
    assert MARKER in log.read_text()


@pytest.mark.parametrize("family", [4, 6])
def test_echo_requests_and_replies(family: int) -> None:
    request = echo_request(family, 0x1234, 70000, 12.5)
    if family == 4:  # (the kernel computes ICMPv6 checksums itself)
        assert checksum(request) == 0
    reply = bytes([0 if family == 4 else 129]) + request[1:]
    if family == 4:
        header = bytes([0x45]) + bytes(8) + bytes([1]) + bytes(2) + bytes([198, 51, 100, 100])
        packet = header + bytes(4) + reply
    else:
        header = bytes([0x60]) + bytes(5) + bytes([58, 64]) + bytes(15) + bytes([1]) + bytes(16)
        packet = header + reply
    parsed = parse_reply(family, packet, 0x1234)
    assert parsed is not None
    assert parsed[:2] == (70000 & 0xFFFF, 12.5)
    assert parse_reply(family, packet, 0x4321) is None  # someone else's echo
    assert parse_reply(family, packet[:-1], 0x1234) is None
