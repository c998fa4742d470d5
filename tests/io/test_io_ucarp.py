"""Interop with a real ucarp (a CARP implementation no one here wrote), both directions.

ucarp and our CarpSocket run in two throwaway namespaces joined by ``lab0``;
addresses from 198.51.100.0/24 only. ucarp speaks IPv4 and hashes one
address, so the vhid has exactly one IPv4 VIP (protocol reference 3.3).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from ipaddress import IPv4Address
from pathlib import Path

import pytest
from carpnet import advertisement, receive_until, receiver
from iolab import IoLab, make_lab, wait_for

from carpctl.core import wire
from carpctl.core.errors import DropReason, RemoteProtocolError
from carpctl.io.carp_socket import CarpSocket

pytestmark = pytest.mark.netns

VHID, PASSWORD = 7, "ucarp-io"
VIP = IPv4Address("198.51.100.100")
A, B = IPv4Address("198.51.100.1"), IPv4Address("198.51.100.2")


@pytest.fixture
def lab() -> Iterator[IoLab]:
    assert shutil.which("ucarp"), "ucarp is not installed (tools/test.sh installs it)"
    yield from make_lab("ioucarp-")


@pytest.fixture
def pair(lab: IoLab) -> tuple[IoLab, str, str]:
    a, b = lab.namespace("a"), lab.namespace("b")
    lab.veth(a, b)
    lab.address(a, "lab0", f"{A}/24")
    lab.address(b, "lab0", f"{B}/24")
    return lab, a, b


def scripts(tmp_path: Path) -> tuple[Path, Path, Path]:
    """ucarp's up/down scripts; each appends its name to the returned log."""
    log = tmp_path / "transitions.log"
    paths = []
    for name in ("up", "down"):
        script = tmp_path / f"{name}.sh"
        script.write_text(f'#!/bin/sh\necho "{name} $*" >> {log}\n')
        script.chmod(0o755)
        paths.append(script)
    return paths[0], paths[1], log


def ucarp(
    lab: IoLab, namespace: str, source: IPv4Address, tmp_path: Path, *options: str
) -> tuple[Path, Path]:
    """Start ucarp for our vhid; return (transitions log, ucarp's own log)."""
    up, down, log = scripts(tmp_path)
    output = tmp_path / "ucarp.log"
    with output.open("wb") as sink:
        lab.spawn(
            namespace,
            [
                "ucarp",
                "--interface=lab0",
                f"--srcip={source}",
                f"--vhid={VHID}",
                f"--pass={PASSWORD}",
                f"--addr={VIP}",
                f"--upscript={up}",
                f"--downscript={down}",
                "--facility=none",
                "--debug",
                *options,
            ],
            stdout=sink,
            stderr=sink,
        )
    return log, output


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def test_we_receive_and_verify_ucarp_advertisements(
    pair: tuple[IoLab, str, str], tmp_path: Path
) -> None:
    lab, a, b = pair
    listener = lab.run(b, CarpSocket.open, "lab0", 4)
    try:
        # advbase 0 / advskew 20: master after ~0.1 s, then an advert every 78 ms.
        ucarp(lab, a, A, tmp_path, "--advbase=0", "--advskew=20")
        got = receive_until(lab, b, listener, 3, timeout=5)
        assert len(got) >= 3, (tmp_path / "ucarp.log").read_text()
        core = receiver(vhid=VHID, password=PASSWORD, vips=(VIP,))
        wrong = receiver(vhid=VHID, password="not-the-password", vips=(VIP,))
        for packet in got:
            assert (packet.src, packet.dst, packet.ttl) == (A, IPv4Address("224.0.0.18"), 255)
            header = wire.parse(packet.payload)
            assert (header.vhid, header.advbase, header.advskew) == (VHID, 0, 20)
            packet.deliver(core, now=0.0)  # checksum, version, TTL and HMAC all pass
            with pytest.raises(RemoteProtocolError) as refused:
                packet.deliver(wrong, now=0.0)
            assert refused.value.reason is DropReason.BADAUTH
        assert core.accepted == len(got)
        assert not core.drops
    finally:
        listener.close()


def test_ucarp_accepts_our_advertisements(pair: tuple[IoLab, str, str], tmp_path: Path) -> None:
    """A ucarp backup stays BACKUP while we advertise as a better master, then takes over."""
    lab, a, b = pair
    sender = lab.run(a, CarpSocket.open, "lab0", 4)
    try:
        # Master down after deadratio * advbase + advskew/256 = 1.78 s without us.
        log, output = ucarp(lab, b, B, tmp_path, "--advbase=1", "--advskew=200", "--deadratio=1")
        assert wait_for(lambda: lines(log) == [f"down lab0 {VIP}"], 5, 0.02), lines(output)

        def advertise(seconds: float) -> None:
            counter, deadline = 1, time.monotonic() + seconds
            while time.monotonic() < deadline:
                sender.send(
                    advertisement(vhid=VHID, password=PASSWORD, vips=(VIP,), counter=counter)
                )
                counter += 1
                time.sleep(0.1)

        lab.run(a, advertise, 3.0)  # 1.7 master-down intervals and more
        assert lines(log) == [f"down lab0 {VIP}"], lines(output)
        assert not any("Bad digest" in line for line in lines(output)), lines(output)
        # The control: silent, we are no master; ucarp takes over by itself.
        assert wait_for(lambda: f"up lab0 {VIP}" in lines(log), 6, 0.05), lines(output)
    finally:
        sender.close()
