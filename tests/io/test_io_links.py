"""Link state, identity and the link watcher, inside throwaway namespaces."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Iterator
from ipaddress import IPv4Address, IPv4Interface, IPv6Interface

import pytest
from iolab import IoLab, make_lab, wait_readable

from carpctl.io import addresses, links
from carpctl.io.links import LinkWatcher

pytestmark = pytest.mark.netns


@pytest.fixture
def lab() -> Iterator[IoLab]:
    yield from make_lab("iolink-")


@pytest.fixture
def pair(lab: IoLab) -> tuple[IoLab, str, str]:
    a, b = lab.namespace("a"), lab.namespace("b")
    lab.veth(a, b)
    lab.address(a, "lab0", "198.51.100.1/24")
    lab.address(a, "lab0", "2001:db8::1/64")
    return lab, a, b


def test_identity_and_state(pair: tuple[IoLab, str, str]) -> None:
    lab, a, _ = pair
    shown = json.loads(lab.ip(a, "-j", "link", "show", "dev", "lab0"))[0]
    info = lab.run(a, links.info, "lab0")
    assert info.ifname == "lab0"
    assert info.index == shown["ifindex"] == lab.run(a, socket.if_nametoindex, "lab0")
    assert info.mac == bytes.fromhex(shown["address"].replace(":", ""))
    assert (info.admin_up, info.running, info.operstate, info.up) == (True, True, "UP", True)
    assert lab.run(a, links.is_up, "lab0")
    assert lab.run(a, links.ifindex, "lab0") == info.index
    assert lab.run(a, links.mac, "lab0") == info.mac
    assert not lab.run(a, links.is_up, "lab9")  # absent: not up
    with pytest.raises(OSError, match="No such device"):
        lab.run(a, links.ifindex, "lab9")


def test_not_up_without_carrier_or_when_admin_down(pair: tuple[IoLab, str, str]) -> None:
    lab, a, b = pair
    lab.ip(b, "link", "set", "lab0", "down")  # A keeps IFF_UP but loses its carrier
    info = lab.run(a, links.info, "lab0")
    assert (info.admin_up, info.running, info.up) == (True, False, False)
    lab.ip(b, "link", "set", "lab0", "up")
    lab.ip(a, "link", "set", "lab0", "down")
    assert not lab.run(a, links.is_up, "lab0")


def test_own_addresses_leave_out_virtual_ones(pair: tuple[IoLab, str, str]) -> None:
    lab, a, _ = pair
    lab.run(a, addresses.add, "lab0", [IPv4Interface("198.51.100.100/24")])  # tagged
    lab.address(a, "lab0", "198.51.100.101/24")  # untagged, but configured as virtual
    own = lab.run(a, links.own_addresses, "lab0", exclude=[IPv4Address("198.51.100.101")])
    v4 = [i for i in own if i.version == 4]
    v6 = [i for i in own if i.version == 6]
    assert v4 == [IPv4Interface("198.51.100.1/24")]
    assert IPv6Interface("2001:db8::1/64") in v6
    assert any(i.ip.is_link_local for i in v6)
    assert lab.run(a, links.own_addresses, "lab0", 4, exclude=[]) == [
        IPv4Interface("198.51.100.1/24"),
        IPv4Interface("198.51.100.101/24"),
    ]


def drain_until(
    lab: IoLab, namespace: str, watcher: LinkWatcher, want: int, timeout: float = 3.0
) -> list[tuple[str, bool]]:
    changes: list[tuple[str, bool]] = []
    deadline = time.monotonic() + timeout
    while len(changes) < want and (left := deadline - time.monotonic()) > 0:
        if wait_readable(watcher.fileno(), left):
            changes += lab.run(namespace, watcher.drain)
    return changes


def test_watcher_sees_down_then_up(pair: tuple[IoLab, str, str]) -> None:
    lab, a, b = pair
    watcher = lab.run(a, LinkWatcher, ["lab0"])
    try:
        assert watcher.state == {"lab0": True}
        assert lab.run(a, watcher.drain) == []  # nothing happened yet: no blocking
        lab.ip(a, "link", "set", "lab0", "down")
        assert drain_until(lab, a, watcher, 1) == [("lab0", False)]
        lab.ip(a, "link", "set", "lab0", "up")
        assert drain_until(lab, a, watcher, 1) == [("lab0", True)]
        # Carrier loss (the peer goes down) is a down too; unrelated changes are not reported.
        lab.ip(a, "link", "set", "lab0", "mtu", "1400")
        lab.ip(b, "link", "set", "lab0", "down")
        assert drain_until(lab, a, watcher, 1) == [("lab0", False)]
        lab.ip(b, "link", "set", "lab0", "up")
        assert drain_until(lab, a, watcher, 1) == [("lab0", True)]
        assert watcher.state == {"lab0": True}
    finally:
        watcher.close()


def test_watcher_ignores_other_interfaces_and_sees_deletion(lab: IoLab) -> None:
    a, b = lab.namespace("a"), lab.namespace("b")
    lab.veth(a, b)
    lab.veth(a, b, "lab1", "lab1")
    watcher = lab.run(a, LinkWatcher, ["lab0", "lab7"])
    try:
        assert watcher.state == {"lab0": True, "lab7": False}
        lab.ip(a, "link", "set", "lab1", "down")
        lab.ip(a, "link", "del", "lab0")
        assert drain_until(lab, a, watcher, 1) == [("lab0", False)]
    finally:
        watcher.close()


def test_watcher_in_an_asyncio_loop(pair: tuple[IoLab, str, str]) -> None:
    """The driver's way: ``add_reader`` on the fileno, ``drain`` when readable."""
    lab, a, _ = pair

    async def main() -> list[tuple[str, bool]]:
        loop = asyncio.get_running_loop()
        seen: list[tuple[str, bool]] = []
        changed = asyncio.Event()
        with LinkWatcher(["lab0"]) as watcher:

            def on_readable() -> None:
                seen.extend(watcher.drain())
                if seen:
                    changed.set()

            loop.add_reader(watcher.fileno(), on_readable)
            try:
                command = ["ip", "-n", a, "link", "set", "lab0", "down"]
                process = await asyncio.create_subprocess_exec(*command)
                assert await process.wait() == 0
                await asyncio.wait_for(changed.wait(), 3)
            finally:
                loop.remove_reader(watcher.fileno())
        return seen

    assert lab.run(a, asyncio.run, main()) == [("lab0", False)]
