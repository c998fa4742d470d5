"""Reading vhid states from FreeBSD and OpenBSD ifconfig; garbage is a ParseError."""

from __future__ import annotations

from pathlib import Path

import pytest
from fakekernel import FakeKernel
from hypothesis import given, settings
from hypothesis import strategies as st

from carpctl.backends import (
    CarpState,
    FreeBSDBackend,
    OpenBSDBackend,
    ParseError,
    VhidStatus,
    parsing,
)
from carpctl.backends.freebsd import parse_ifconfig as parse_freebsd
from carpctl.backends.openbsd import parse_ifconfig as parse_openbsd

from .bsdcrash import RecordingLog

MASTER, BACKUP, INIT = CarpState.MASTER, CarpState.BACKUP, CarpState.INIT

FREEBSD_14 = """\
lo0: flags=1008049<UP,LOOPBACK,RUNNING,MULTICAST,LOWER_UP> metric 0 mtu 16384
\toptions=680003<RXCSUM,TXCSUM,LINKSTATE,RXCSUM_IPV6,TXCSUM_IPV6>
\tinet 127.0.0.1 netmask 0xff000000
\tinet6 ::1 prefixlen 128
\tgroups: lo
\tnd6 options=21<PERFORMNUD,AUTO_LINKLOCAL>
em0: flags=1008843<UP,BROADCAST,RUNNING,SIMPLEX,MULTICAST,LOWER_UP> metric 0 mtu 1500
\toptions=481009b<RXCSUM,TXCSUM,VLAN_MTU,VLAN_HWTAGGING,VLAN_HWCSUM,VLAN_HWFILTER,NOMAP>
\tether 08:00:27:aa:bb:01
\tinet 198.51.100.1 netmask 0xffffff00 broadcast 198.51.100.255
\tinet 198.51.100.100 netmask 0xffffff00 broadcast 198.51.100.255 vhid 1
\tinet 198.51.100.101 netmask 0xffffff00 broadcast 198.51.100.255 vhid 7
\tinet6 2001:db8::100 prefixlen 64 vhid 1
\tcarp: MASTER vhid 1 advbase 1 advskew 0
\t      peer 224.0.0.18 peer6 ff02::12
\tcarp: BACKUP vhid 7 advbase 3 advskew 240
\t      peer 198.51.100.2 peer6 ff02::12
\tmedia: Ethernet autoselect (1000baseT <full-duplex>)
\tstatus: active
\tnd6 options=29<PERFORMNUD,IFDISABLED,AUTO_LINKLOCAL>
vlan100: flags=1008843<UP,BROADCAST,RUNNING,SIMPLEX,MULTICAST,LOWER_UP> metric 0 mtu 1500
\tether 08:00:27:aa:bb:01
\tinet 203.0.113.100 netmask 0xffffff00 broadcast 203.0.113.255 vhid 2
\tcarp: INIT vhid 2 advbase 1 advskew 100
\t      peer 224.0.0.18 peer6 ff02::12
\tgroups: vlan
\tvlan: 100 vlanproto: 802.1q vlanpcp: 0 parent interface: em0
\tstatus: active
"""

FREEBSD_13_WITH_KEYS = """\
em0: flags=8843<UP,BROADCAST,RUNNING,SIMPLEX,MULTICAST> metric 0 mtu 1500
\tinet 192.0.2.100 netmask 0xffffff00 broadcast 192.0.2.255 vhid 1
\tcarp: BACKUP vhid 1 advbase 1 advskew 100 key "s3cr\\"et with spaces"
\tcarp: MASTER vhid 2 advbase 2 advskew 0
\tvrrp: MASTER vrid 9 prio 100 interval 100
\tstatus: active
"""

OPENBSD = """\
lo0: flags=2008049<UP,LOOPBACK,RUNNING,MULTICAST,LRO> mtu 32768
\tindex 3 priority 0 llprio 3
\tgroups: lo
\tinet 127.0.0.1 netmask 0xff000000
em0: flags=a48843<UP,BROADCAST,RUNNING,SIMPLEX,MULTICAST,AUTOCONF6TEMP,AUTOCONF6> mtu 1500
\tlladdr 08:00:27:aa:bb:01
\tindex 1 priority 0 llprio 3
\tgroups: egress
\tmedia: Ethernet autoselect (1000baseT full-duplex)
\tstatus: active
pfsync0: flags=41<UP,RUNNING> mtu 1500
\tindex 7 priority 0 llprio 3
\tpfsync: syncdev: em1 syncpeer: 203.0.113.2 maxupd: 128 defer: off
\tgroups: carp pfsync
carp0: flags=8843<UP,BROADCAST,RUNNING,SIMPLEX,MULTICAST> mtu 1500
\tlladdr 00:00:5e:00:01:01
\tindex 5 priority 15 llprio 3
\tcarp: MASTER carpdev em0 vhid 1 advbase 1 advskew 0
\tgroups: carp
\tstatus: master
\tinet 198.51.100.100 netmask 0xffffff00 broadcast 198.51.100.255
carp1: flags=8843<UP,BROADCAST,RUNNING,SIMPLEX,MULTICAST> mtu 1500
\tlladdr 00:00:5e:00:01:02
\tcarp: carpdev em1 advbase 2 balancing ip carppeer 203.0.113.2
\t\tstate MASTER vhid 2 advskew 0
\t\tstate BACKUP vhid 3 advskew 100
\tgroups: carp
\tstatus: master
carp2: flags=8802<BROADCAST,SIMPLEX,MULTICAST> mtu 1500
\tcarp: INIT carpdev none vhid 4 advbase 1 advskew 0 carppeer 203.0.113.9
\tstatus: invalid
"""


def test_freebsd_14_with_peer_lines() -> None:
    assert parse_freebsd(FREEBSD_14) == [
        VhidStatus(1, "em0", MASTER, 1, 0),
        VhidStatus(7, "em0", BACKUP, 3, 240),
        VhidStatus(2, "vlan100", INIT, 1, 100),
    ]
    assert [v.name for v in parse_freebsd(FREEBSD_14)] == ["1@em0", "7@em0", "2@vlan100"]


def test_freebsd_13_without_peer_lines_with_keys_and_a_vrrp_vhid() -> None:
    assert parse_freebsd(FREEBSD_13_WITH_KEYS) == [
        VhidStatus(1, "em0", BACKUP, 1, 100),
        VhidStatus(2, "em0", MASTER, 2, 0),
    ]


@pytest.mark.parametrize("release", [13, 14])
def test_freebsd_backend_reads_the_fake_kernels_vhids(tmp_path: Path, release: int) -> None:
    kernel = FakeKernel.create(tmp_path / "k", "freebsd", release=release)
    carpctl = FreeBSDBackend(
        tmp_path / "s", runner=kernel.subprocess_runner(), search_path=kernel.search_path
    )
    assert carpctl.vhids() == [
        VhidStatus(1, "em0", MASTER, 1, 0),
        VhidStatus(2, "em1", BACKUP, 1, 100),
    ]
    kernel.set_vhid(1, state="BACKUP")  # a transition devd's event was lost for
    kernel.set_vhid(2, state="MASTER")
    assert [(v.name, v.state) for v in carpctl.vhids()] == [("1@em0", BACKUP), ("2@em1", MASTER)]


def test_openbsd_single_and_several_vhids() -> None:
    assert parse_openbsd(OPENBSD) == [
        VhidStatus(1, "em0", MASTER, 1, 0, "carp0"),
        VhidStatus(2, "em1", MASTER, 2, 0, "carp1"),
        VhidStatus(3, "em1", BACKUP, 2, 100, "carp1"),
        VhidStatus(4, "none", INIT, 1, 0, "carp2"),
    ]


def test_openbsd_backend_reads_the_fake_kernels_vhids(openbsd: FakeKernel, tmp_path: Path) -> None:
    carpctl = OpenBSDBackend(
        tmp_path / "s", runner=openbsd.subprocess_runner(), search_path=openbsd.search_path
    )
    openbsd.set_vhid(3, state="MASTER")
    assert [(v.name, v.carp_interface, v.state) for v in carpctl.vhids()] == [
        ("1@em0", "carp0", MASTER),
        ("2@em1", "carp1", MASTER),
        ("3@em1", "carp1", MASTER),
    ]


def test_no_vhids_is_an_empty_list() -> None:
    assert parse_freebsd("lo0: flags=8049<UP,LOOPBACK> metric 0 mtu 16384\n") == []
    assert parse_openbsd("lo0: flags=8049<UP,LOOPBACK> mtu 32768\n\tstatus: x\n") == []


HEADER = "em0: flags=8843<UP> mtu 1500\n"


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "lists no interface"),
        ("\n\n", "lists no interface"),
        ("Segmentation fault (core dumped)\n", "line 1: not an interface header"),
        ("\tcarp: MASTER vhid 1 advbase 1 advskew 0\n", "indented line before any interface"),
        (HEADER + "\tcarp: MASTER vhid one advbase 1 advskew 0\n", "line 2: not a carp line"),
        (HEADER + "\tcarp: MASTER vhid 1 advbase 1\n", "not a carp line"),
        (HEADER + "\tcarp: SLAVE vhid 1 advbase 1 advskew 0\n", "unknown CARP state 'SLAVE'"),
        (HEADER + "\tcarp: <UNKNOWN> vhid 1 advbase 1 advskew 0\n", "unknown CARP state"),
        (HEADER + "\tcarp: MASTER vhid 0 advbase 1 advskew 0\n", "vhid 0 is outside 1..255"),
        (HEADER + "\tcarp: MASTER vhid 256 advbase 1 advskew 0\n", "vhid 256 is outside"),
        (HEADER + "\tcarp: MASTER vhid 1 advbase 1 advskew 999\n", "advskew 999 is outside"),
        (HEADER + "\t      peer 224.0.0.18 peer6 ff02::12\n", "peer line that does not follow"),
        (HEADER + "\x00\x01\x02\n", "line 2: not an interface header"),
    ],
)
def test_freebsd_garbage_is_a_parse_error(text: str, why: str) -> None:
    with pytest.raises(ParseError, match=why):
        parse_freebsd(text)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "lists no interface"),
        ("carp0 is up\n", "not an interface header"),
        (HEADER + "\tcarp: MASTER vhid 1 advbase 1 advskew 0\n", "not a carp line"),
        (HEADER + "\tcarp: BORED carpdev em0 vhid 1 advbase 1 advskew 0\n", "unknown CARP state"),
        (HEADER + "\tcarp: carpdev em0 advbase 1 balancing ip\n", "has no vhids"),
        (HEADER + "\tcarp: carpdev em0 advbase 1 balancing ip\n\tstatus: master\n", "without vhid"),
        (
            HEADER + "\tcarp: carpdev em0 advbase 1 balancing ip\n\t\tstate MASTER vhid x\n",
            "line 3",
        ),
        (HEADER + "\tcarp: MASTER carpdev em0 vhid 300 advbase 1 advskew 0\n", "vhid 300"),
    ],
)
def test_openbsd_garbage_is_a_parse_error(text: str, why: str) -> None:
    with pytest.raises(ParseError, match=why):
        parse_openbsd(text)


def test_boot_times() -> None:
    assert parsing.boottime("{ sec = 1712345678, usec = 123 } Fri Apr  5 19:34:38 2024\n") == (
        "1712345678"
    )
    assert parsing.boottime("1712345678\n") == "1712345678"
    with pytest.raises(ParseError, match="not a boot time"):
        parsing.boottime("yesterday")


def test_a_non_number_from_sysctl_is_a_parse_error(freebsd: FakeKernel, tmp_path: Path) -> None:
    inner = freebsd.runner()

    def odd(argv: list[str]) -> str:
        return "lots\n" if argv[-1] == "net.inet.carp.demotion" else inner(argv)

    carpctl = FreeBSDBackend(
        tmp_path, runner=odd, search_path=freebsd.search_path, log=RecordingLog()
    )
    with pytest.raises(ParseError, match=r"net\.inet\.carp\.demotion: expected an integer"):
        carpctl.read()


LINES = st.sampled_from(
    [
        "em0: flags=8843<UP> mtu 1500",
        "carp0: flags=8843<UP> mtu 1500",
        "\tcarp: MASTER vhid 1 advbase 1 advskew 0",
        "\t      peer 224.0.0.18 peer6 ff02::12",
        "\tcarp: BACKUP carpdev em0 vhid 2 advbase 1 advskew 9",
        "\tcarp: carpdev em0 advbase 1 balancing ip",
        "\t\tstate MASTER vhid 3 advskew 0",
        "\tstatus: master",
        "\tcarp:",
        "\t\tstate",
        "",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(), st.lists(st.one_of(LINES, st.text()), max_size=12).map("\n".join)))
def test_any_text_gives_vhids_or_a_parse_error_never_a_traceback(text: str) -> None:
    for parse in (parse_freebsd, parse_openbsd):
        try:
            vhids = parse(text)
        except ParseError as error:
            assert str(error)
        else:
            assert all(isinstance(v, VhidStatus) for v in vhids)
