"""The fake kernels behave as carp-protocol.md sections 4.7, 6 and 7 document."""

from __future__ import annotations

import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from fakekernel import FakeKernel


def run(kernel: FakeKernel, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, env=kernel.env, capture_output=True, text=True, check=False)


def test_freebsd_sysctl_demotion_write_adds(freebsd: FakeKernel) -> None:
    assert run(freebsd, "sysctl", "net.inet.carp.demotion").stdout == "net.inet.carp.demotion: 0\n"
    done = run(freebsd, "sysctl", "net.inet.carp.demotion=50")
    assert (done.returncode, done.stdout) == (0, "net.inet.carp.demotion: 0 -> 50\n")
    done = run(freebsd, "sysctl", "net.inet.carp.demotion=-20")
    assert done.stdout == "net.inet.carp.demotion: 50 -> 30\n"
    assert run(freebsd, "sysctl", "-n", "net.inet.carp.demotion").stdout == "30\n"
    assert freebsd.sysctl("net.inet.carp.demotion=+20")[1] == "net.inet.carp.demotion: 30 -> 50\n"
    # every other integer sysctl is absolute
    assert freebsd.sysctl("net.inet.carp.preempt=1")[1] == "net.inet.carp.preempt: 0 -> 1\n"
    assert freebsd.sysctl("net.inet.carp.preempt=1")[1] == "net.inet.carp.preempt: 1 -> 1\n"


def test_freebsd_sysctl_errors(freebsd: FakeKernel) -> None:
    done = run(freebsd, "sysctl", "net.inet.carp.nonesuch")
    assert (done.returncode, done.stderr) == (1, "sysctl: unknown oid 'net.inet.carp.nonesuch'\n")
    assert freebsd.sysctl("net.inet.carp.demotion=lots") == (
        1,
        "",
        "sysctl: invalid integer 'lots'\n",
    )
    assert freebsd.sysctl("kern.boottime=1")[0] == 1
    assert freebsd.sysctl("-x", "kern.boottime")[0] == 1
    assert freebsd.demotion == 0


def test_boottime_formats(freebsd: FakeKernel, tmp_path: Path) -> None:
    boottime = freebsd.state()["boottime"]
    assert run(freebsd, "sysctl", "-n", "kern.boottime").stdout.startswith(
        f"{{ sec = {boottime}, usec = 0 }} "
    )
    openbsd = FakeKernel.create(tmp_path / "obsd", "openbsd")
    boottime = openbsd.state()["boottime"]
    assert run(openbsd, "sysctl", "-n", "kern.boottime").stdout == f"{boottime}\n"
    assert openbsd.sysctl("kern.boottime")[1].startswith("kern.boottime=")
    assert openbsd.sysctl("net.inet.carp.demotion")[0] == 1  # no such sysctl there


def test_freebsd_ifconfig_shows_vhids(freebsd: FakeKernel) -> None:
    text = run(freebsd, "ifconfig", "em0").stdout
    assert "\tinet 198.51.100.100 netmask 0xffffff00 broadcast 198.51.100.255 vhid 1\n" in text
    assert "\tinet6 2001:db8::100 prefixlen 64 vhid 1\n" in text
    assert (
        "\tcarp: MASTER vhid 1 advbase 1 advskew 0\n\t      peer 224.0.0.18 peer6 ff02::12\n"
        in text
    )
    assert run(freebsd, "ifconfig", "em0", "vhid", "1", "state", "backup").returncode == 0
    assert "carp: BACKUP vhid 1" in run(freebsd, "ifconfig").stdout
    done = run(freebsd, "ifconfig", "em7")
    assert (done.returncode, done.stderr) == (1, "ifconfig: interface em7 does not exist\n")


def test_openbsd_carpdemote_rules(openbsd: FakeKernel) -> None:
    assert run(openbsd, "ifconfig", "-g", "carp").stdout == "carp: carp demote count 0\n"
    assert run(openbsd, "ifconfig", "-g", "carp", "carpdemote").returncode == 0  # default 1
    assert run(openbsd, "ifconfig", "-g", "carp", "carpdemote", "128").returncode == 0
    assert openbsd.demotion == 129
    too_large = run(openbsd, "ifconfig", "-g", "carp", "carpdemote", "129")
    assert too_large.stderr == "ifconfig: carp: invalid carp demotion: too large\n"
    assert run(openbsd, "ifconfig", "-g", "carp", "carpdemote", "127").returncode == 1  # 256
    down = run(openbsd, "ifconfig", "-g", "carp", "-carpdemote", "128")
    assert down.returncode == 0  # 129 - 128 = 1
    below = run(openbsd, "ifconfig", "-g", "carp", "-carpdemote", "2")
    assert (below.returncode, below.stderr) == (
        1,
        "ifconfig: carp: SIOCSIFGATTR: Invalid argument\n",
    )
    assert openbsd.demotion == 1
    missing = run(openbsd, "ifconfig", "-g", "nosuch")
    assert missing.stderr == "ifconfig: nosuch: SIOCGIFGATTR: No such file or directory\n"
    # the kernel's own adjustments clamp at 0 and are not held to 255
    assert openbsd.adjust(-5) == 0
    assert openbsd.adjust(300) == 300


def test_openbsd_ifconfig_carp_interfaces(openbsd: FakeKernel) -> None:
    text = run(openbsd, "ifconfig", "carp").stdout  # the group: every carpN
    assert "\tcarp: MASTER carpdev em0 vhid 1 advbase 1 advskew 0\n" in text
    assert "\tcarp: carpdev em1 advbase 2 balancing ip\n" in text
    assert "\t\tstate BACKUP vhid 3 advskew 100\n" in text
    assert "\tstatus: master\n" in text
    openbsd.set_vhid(1, state="BACKUP")
    assert "\tstatus: backup\n" in run(openbsd, "ifconfig", "carp0").stdout
    assert run(openbsd, "ifconfig", "carp9").stderr == "carp9: no such interface\n"


def test_concurrent_calls_are_serialised(freebsd: FakeKernel) -> None:
    def add_one(_: int) -> int:
        return run(freebsd, "sysctl", "net.inet.carp.demotion=1").returncode

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert set(pool.map(add_one, range(16))) == {0}
    assert freebsd.demotion == 16
    writes = [c for c in freebsd.calls if c == ["sysctl", "net.inet.carp.demotion=1"]]
    assert len(writes) == 16
