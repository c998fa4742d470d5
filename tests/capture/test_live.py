"""``carpctl sniff``'s pure parts: the kernel filter, frames to records, the loop, the summary.

The socket itself is exercised in the lab (``tests/engine/test_sniff_lab.py``);
here a fake capture stands in for it.
"""

from __future__ import annotations

import json
import signal
import socket
import struct
import time
from collections.abc import Iterator, Sequence
from ipaddress import IPv4Address, ip_address
from typing import Any

import pytest
from conftest import AdvertBuilder
from hypothesis import given
from hypothesis import strategies as st

from carpctl.capture import live
from carpctl.capture.live import (
    BPF_JEQ_K,
    BPF_LDB_ABS,
    BPF_LDH_ABS,
    BPF_RET_K,
    SKF_AD_PROTOCOL,
    SKF_NET_OFF,
    Instruction,
    Sightings,
    Tick,
)
from carpctl.capture.pcap import CaptureRecord
from carpctl.capture.report import Credentials, Inspection, inspect_record
from carpctl.cli import sniff
from carpctl.cli.main import main
from carpctl.core import ip

MAC1, MAC2 = bytes.fromhex("020000000001"), bytes.fromhex("020000000002")
VIP = "198.51.100.100"
CREDENTIALS = Credentials.of("secret", [ip_address(VIP)])


def run_bpf(program: Sequence[Instruction], ethertype: int, packet: bytes) -> int:
    """A classic BPF interpreter for the instructions ``carp_filter`` uses."""
    assert len(program) <= 4096
    pc, a = 0, 0
    while True:
        code, jt, jf, k = program[pc]
        if code == BPF_LDH_ABS:
            assert k == SKF_AD_PROTOCOL
            a = ethertype
        elif code == BPF_LDB_ABS:
            assert k >= SKF_NET_OFF
            if k - SKF_NET_OFF >= len(packet):
                return 0  # the kernel drops a frame when a load runs past its end
            a = packet[k - SKF_NET_OFF]
        elif code == BPF_JEQ_K:
            pc += jt if a == k else jf
        else:
            assert code == BPF_RET_K
            return k
        pc += 1


def ip_of(frame: bytes) -> tuple[int, bytes]:
    """An Ethernet frame's EtherType and IP datagram."""
    return int.from_bytes(frame[12:14], "big"), frame[14:]


def udp() -> bytes:
    return ip.build_ipv4(
        IPv4Address("198.51.100.1"), IPv4Address("198.51.100.200"), b"\0" * 12, protocol=17
    )


# -- the filter ---------------------------------------------------------------


def test_the_filter_accepts_carp_over_ipv4_and_ipv6_and_nothing_else(advert: AdvertBuilder) -> None:
    program = live.carp_filter()
    for frame in (advert(), advert(src="2001:db8::1")):
        assert run_bpf(program, *ip_of(frame)) == live.SNAPLEN
    assert run_bpf(program, 0x0800, udp()) == 0
    assert run_bpf(program, 0x0806, bytes(28)) == 0  # ARP
    assert run_bpf(program, 0x86DD, bytes(6) + bytes([58]) + bytes(33)) == 0  # ICMPv6
    # The decoder looks past IPv6 extension headers: let those through to it.
    assert run_bpf(program, 0x86DD, bytes(6) + bytes([0]) + bytes(33)) > 0


@given(
    st.sampled_from([0x0800, 0x86DD, 0x0806, 0x8100, 0x88CC]),
    st.binary(max_size=48),
)
def test_the_kernel_filter_and_its_python_twin_agree(ethertype: int, packet: bytes) -> None:
    accepted = run_bpf(live.carp_filter(), ethertype, packet) > 0
    assert accepted == live.passes(ethertype, packet)


def test_the_program_only_jumps_forward_and_ends_in_returns() -> None:
    program = live.carp_filter()
    for at, (code, jt, jf, _) in enumerate(program):
        if code == BPF_JEQ_K:
            assert at + 1 + max(jt, jf) < len(program)
    assert program[-1].code == program[-2].code == BPF_RET_K


def test_assemble_packs_struct_sock_filter() -> None:
    program = live.carp_filter()
    code = live.assemble(program)
    assert len(code) == 8 * len(program)
    assert code[:8] == struct.pack("=HBBI", 0x28, 0, 0, 0xFFFFF000)


# -- frames to records ----------------------------------------------------------


def timestamp(seconds: int, nanoseconds: int) -> tuple[int, int, bytes]:
    return (socket.SOL_SOCKET, live.SO_TIMESTAMPNS, struct.pack("@ll", seconds, nanoseconds))


def test_a_received_datagram_reads_like_an_inspected_frame(advert: AdvertBuilder) -> None:
    ethertype, packet = ip_of(advert(src_mac=MAC1))
    address = ("lab0", ethertype, socket.PACKET_MULTICAST, live.ARPHRD_ETHER, MAC1)
    record = live.record_of(address, packet, [timestamp(1700000000, 250_000_000)])
    assert (record.time, record.linktype) == (1700000000.25, 113)
    inspection = inspect_record(record, CREDENTIALS)
    assert inspection is not None
    assert (inspection.src_mac, inspection.hmac, inspection.ok) == ("02:00:00:00:00:01", "ok", True)
    assert (inspection.vhid, inspection.ttl, inspection.src) == (1, 255, "198.51.100.1")


def test_a_link_without_ethernet_addresses_gives_no_mac(advert: AdvertBuilder) -> None:
    ethertype, packet = ip_of(advert())
    address = ("tun0", ethertype, socket.PACKET_HOST, 65534, b"")
    record = live.record_of(address, packet, now=lambda: 5.0)
    assert record.time == 5.0  # no kernel timestamp: the time of reading
    inspection = inspect_record(record)
    assert inspection is not None
    assert (inspection.src_mac, inspection.vhid) == (None, 1)


def test_timestamps_come_only_from_scm_timestampns() -> None:
    assert live.timestamp_of([]) is None
    assert live.timestamp_of([(socket.SOL_SOCKET, 29, bytes(16))]) is None
    assert live.timestamp_of([(socket.SOL_IP, live.SO_TIMESTAMPNS, bytes(16))]) is None
    assert live.timestamp_of([timestamp(10, 5)]) == pytest.approx(10.000000005)


def test_an_unknown_interface_is_named() -> None:
    with pytest.raises(live.NoSuchInterface, match="no interface named 'nosuch-if9'"):
        live.interface_index("nosuch-if9")  # a name lookup only: nothing is opened
    with pytest.raises(live.NoSuchInterface):
        live.interface_index("bad\0name")


# -- the loop -------------------------------------------------------------------


class FakeSource:
    """Replays (delay, record) pairs on a fake clock, then waits out every timeout."""

    def __init__(self, script: Sequence[tuple[float, CaptureRecord]]) -> None:
        self.script = list(script)
        self.now = 0.0
        self.waits: list[float | None] = []

    def clock(self) -> float:
        return self.now

    def receive(self, timeout: float | None) -> CaptureRecord | None:
        self.waits.append(timeout)
        if not self.script:
            assert timeout is not None, "would block forever"
            self.now += timeout
            return None
        delay, record = self.script[0]
        if timeout is not None and delay > timeout:
            self.script[0] = (delay - timeout, record)
            self.now += timeout
            return None
        self.script.pop(0)
        self.now += delay
        return record


def rec(frame: bytes, at: float) -> CaptureRecord:
    ethertype, packet = ip_of(frame)
    address = ("lab0", ethertype, socket.PACKET_MULTICAST, live.ARPHRD_ETHER, frame[6:12])
    return live.record_of(address, packet, now=lambda: at)


def not_carp() -> CaptureRecord:
    return live.record_of(("lab0", 0x0800, 0, 1, MAC1), udp(), now=lambda: 0.0)


def events(source: FakeSource, **options: Any) -> tuple[list[Inspection | Tick], Sightings]:
    sightings = Sightings(started=0.0)
    found = list(live.watch(source, sightings, clock=source.clock, **options))
    return found, sightings


def test_count_stops_after_that_many_protocol_112_packets(advert: AdvertBuilder) -> None:
    source = FakeSource([(0.1, not_carp())] + [(1.0, rec(advert(), t)) for t in range(5)])
    found, sightings = events(source, count=3)
    assert len(found) == 3
    assert all(isinstance(e, Inspection) for e in found)
    assert sightings.tally.carp == 3
    assert source.waits == [None] * 4  # no timeout: it blocks


def test_timeout_stops_even_when_nothing_arrives() -> None:
    source = FakeSource([])
    found, sightings = events(source, timeout=2.5)
    assert found == []
    assert source.now == 2.5
    assert sightings.tally.packets == 0


def test_ticks_come_every_interval_between_packets(advert: AdvertBuilder) -> None:
    source = FakeSource([(1.5, rec(advert(), 1.5)), (3.0, rec(advert(), 4.5))])
    found, _ = events(source, every=2.0, timeout=7.0)
    kinds = [(type(e).__name__, e.at if isinstance(e, Tick) else e.time) for e in found]
    assert kinds == [
        ("Inspection", 1.5),
        ("Tick", 2.0),
        ("Tick", 4.0),
        ("Inspection", 4.5),
        ("Tick", 6.0),
    ]


def test_a_slow_reader_skips_ticks_instead_of_bunching_them(advert: AdvertBuilder) -> None:
    source = FakeSource([(0.5, rec(advert(), 0.5))])
    sightings = Sightings(started=0.0)
    loop = live.watch(source, sightings, every=1.0, timeout=10.0, clock=source.clock)
    assert isinstance(next(loop), Inspection)
    source.now = 5.5  # the consumer took 5 s over that packet
    assert next(loop) == Tick(5.5)
    assert source.waits[-1] is not None
    assert next(loop) == Tick(6.0)


# -- what was seen ----------------------------------------------------------------


def test_sightings_keep_each_source_per_vhid_with_its_rate(advert: AdvertBuilder) -> None:
    sightings = Sightings(started=100.0)
    frames = [
        (advert(src_mac=MAC1), 101.0),
        (advert(src_mac=MAC1), 102.0),
        (advert(src_mac=MAC1), 103.0),
        (advert(src="198.51.100.2", advskew=100, password="wrong", src_mac=MAC2), 104.0),
        (advert(src="198.51.100.2", advskew=100, password="wrong", src_mac=MAC2), 105.4),
        (advert(vhid=2, advbase=2, demote=3), 104.5),
    ]
    for frame, at in frames:
        inspection = inspect_record(rec(frame, at), CREDENTIALS)
        assert inspection is not None
        sightings.add(inspection)
    one, two = sightings.vhids[1]["198.51.100.1"], sightings.vhids[1]["198.51.100.2"]
    assert (one.packets, one.interval, one.rate, one.expected_interval) == (3, 1.0, 1.0, 1.0)
    assert (one.hmac, one.hmac_ok, one.problems, one.src_mac) == ("ok", 3, 0, "02:00:00:00:00:01")
    assert (two.hmac, two.hmac_bad, two.problems, two.advskew) == ("bad", 2, 2, 100)
    assert two.interval == pytest.approx(1.4)
    assert two.expected_interval == pytest.approx(1 + 100 / 256)
    assert sightings.latest(1) is two
    lone = sightings.vhids[2]["198.51.100.1"]
    assert (lone.interval, lone.rate, lone.demote, lone.expected_interval) == (None, None, 3, 2.0)

    summary = sightings.as_json(now=110.0)
    assert summary["duration"] == 10.0
    assert (summary["carp"], summary["ok"], summary["hmac_failures"]) == (6, 4, 2)
    vhids: Any = summary["vhids"]
    assert [v["vhid"] for v in vhids] == [1, 2]
    assert vhids[0]["latest"] == "198.51.100.2"
    assert [s["src"] for s in vhids[0]["sources"]] == ["198.51.100.1", "198.51.100.2"]
    assert vhids[0]["sources"][0] | {"first_seen": 0} == {
        "src": "198.51.100.1",
        "src_mac": "02:00:00:00:00:01",
        "packets": 3,
        "advbase": 1,
        "advskew": 0,
        "demote": 0,
        "ttl": 255,
        "hmac": "ok",
        "hmac_ok": 3,
        "hmac_bad": 0,
        "problems": 0,
        "first_seen": 0,
        "last_seen": 103.0,
        "interval": 1.0,
        "expected_interval": 1.0,
        "rate": 1.0,
    }
    json.dumps(summary)


def test_vrrp_counts_but_makes_no_source() -> None:
    vrrp = bytes([0x21, 1, 100, 1, 0, 1]) + bytes(2) + bytes(4)  # VRRPv2, one address
    packet = ip.build_ipv4(IPv4Address("198.51.100.9"), IPv4Address("224.0.0.18"), vrrp)
    inspection = inspect_record(live.record_of(("lab0", 0x0800, 2, 1, MAC1), packet))
    assert inspection is not None
    assert not inspection.carp
    sightings = Sightings(started=0.0)
    sightings.add(inspection)
    assert (sightings.tally.not_carp, sightings.vhids) == (1, {})


# -- the command, on a fake capture ----------------------------------------------


class FakeCapture:
    """Stands in for ``live.Capture``: replays records, then SIGINTs itself (Ctrl-C)."""

    opened: list[tuple[str, bool]] = []  # noqa: RUF012
    stop_signal = signal.SIGINT  # what Ctrl-C sends

    def __init__(self, interface: str, *, promisc: bool = False) -> None:
        FakeCapture.opened.append((interface, promisc))
        self.interface = interface
        self.kernel_filter = True
        self.frames = self.drops = 0
        self.records = list(RECORDS)
        self.closed = False

    def receive(self, timeout: float | None) -> CaptureRecord | None:
        if not self.records:
            if timeout is not None:
                time.sleep(timeout)
                return None
            signal.raise_signal(self.stop_signal)
        self.frames += 1
        return self.records.pop(0)

    def statistics(self) -> tuple[int, int]:
        self.drops = 2
        return self.frames, 2

    def close(self) -> None:
        self.closed = True

    def __enter__(self) -> FakeCapture:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


RECORDS: list[CaptureRecord] = []


@pytest.fixture
def fake_capture(monkeypatch: pytest.MonkeyPatch, advert: AdvertBuilder) -> Iterator[None]:
    RECORDS[:] = [
        rec(advert(src_mac=MAC1), 1700000000.0),
        not_carp(),
        rec(advert(src_mac=MAC1), 1700000001.0),
        rec(advert(src="198.51.100.2", password="wrong", src_mac=MAC2), 1700000001.5),
    ]
    FakeCapture.opened = []
    monkeypatch.setattr(sniff, "Capture", FakeCapture)
    yield
    RECORDS.clear()


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


AUTH = ("--pass", "secret", "--addr", VIP)


@pytest.mark.usefixtures("fake_capture")
def test_ctrl_c_prints_the_summary_and_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    previous = signal.getsignal(signal.SIGINT)
    code, out, err = run(capsys, "sniff", "-i", "lab0", *AUTH)
    assert code == 0
    assert signal.getsignal(signal.SIGINT) is previous  # restored
    assert err == "carpctl: listening on lab0 for CARP (IP protocol 112), Ctrl-C to stop\n"
    lines = out.splitlines()
    assert len(lines) == 3 + 4
    assert lines[0].endswith("; hmac ok; ether src 02:00:00:00:00:01")
    assert "198.51.100.1 > 224.0.0.18 ttl 255: CARPv2 advertisement vhid 1 advbase 1" in lines[0]
    assert "hmac bad; ether src 02:00:00:00:00:02 -- HMAC does not verify" in lines[2]
    assert lines[3].startswith("summary: 3 CARP packets on lab0 in ")
    assert lines[3].endswith(
        "2 ok, 0 bad checksum, 1 HMAC failures, 0 truncated; "
        "2 dropped by the kernel (reading too slowly)"
    )
    assert lines[4] == "  vhid 1: last advertised by 198.51.100.2"
    assert lines[5].startswith(
        "    198.51.100.1 (02:00:00:00:00:01) x2: advbase 1, advskew 0, demote 0, ttl 255, "
        "hmac ok; every 1.00 s (announced 1.00 s); last seen 22:13:21.000 ("
    )
    assert lines[6].startswith("    198.51.100.2 (02:00:00:00:00:02) x1: ")
    assert "hmac bad, 1 with problems; every - (announced 1.00 s)" in lines[6]
    assert FakeCapture.opened == [("lab0", False)]


@pytest.mark.usefixtures("fake_capture")
def test_sigterm_ends_it_like_ctrl_c(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(FakeCapture, "stop_signal", signal.SIGTERM)
    previous = signal.getsignal(signal.SIGTERM)
    code, out, err = run(capsys, "sniff", "-i", "lab0", "--json")
    assert (code, err) == (0, "")
    assert json.loads(out.splitlines()[-1])["summary"]["carp"] == 3
    assert signal.getsignal(signal.SIGTERM) is previous


@pytest.mark.usefixtures("fake_capture")
def test_json_lines_end_with_a_summary_object(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "sniff", "-i", "lab0", "--json", "--count", "2", "--promisc")
    assert (code, err) == (0, "")
    objects = [json.loads(line) for line in out.splitlines()]
    assert len(objects) == 3
    assert [o["hmac"] for o in objects[:2]] == ["unchecked", "unchecked"]
    assert {"time", "src", "dst", "ttl", "vhid", "advbase", "advskew", "demote"} <= set(objects[0])
    summary = objects[2]["summary"]
    assert list(objects[2]) == ["summary"]
    assert (summary["interface"], summary["frames"], summary["carp"]) == ("lab0", 3, 2)
    assert (summary["drops"], summary["kernel_filter"]) == (2, True)
    assert summary["vhids"][0]["sources"][0]["packets"] == 2
    assert FakeCapture.opened == [("lab0", True)]


@pytest.mark.usefixtures("fake_capture")
def test_every_prints_summaries_along_the_way(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ("sniff", "-i", "lab0", "--every", "0.1", "--timeout", "0.35")
    code, out, _ = run(capsys, *argv)
    assert code == 0
    assert out.count("summary: 3 CARP packets") >= 3  # periodic ones, then the final one
    code, out, _ = run(capsys, *argv, "--json")
    summaries = [json.loads(line) for line in out.splitlines() if line.startswith('{"summary"')]
    assert len(summaries) >= 3
    assert [s["summary"]["carp"] for s in summaries] == [3] * len(summaries)


def test_an_unknown_interface_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "sniff", "-i", "nosuch-if9", "--timeout", "1") == (
        2,
        "",
        "carpctl: there is no interface named 'nosuch-if9' in this network namespace\n",
    )


def test_without_cap_net_raw_it_says_so_in_one_sentence(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*_: object) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(live, "interface_index", lambda name: 1)
    monkeypatch.setattr(socket, "socket", refuse)
    assert run(capsys, "sniff", "-i", "lab0", "--count", "1") == (
        1,
        "",
        "carpctl: capturing packets needs root (CAP_NET_RAW): run sniff as root\n",
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "the following arguments are required: -i/--interface"),
        (["-i", "lab0", "--addr", VIP], "--addr needs --pass or --pass-file"),
        (["-i", "lab0", "--pass", "x"], "checking the HMAC needs the virtual host's addresses"),
        (["-i", "lab0", "--count", "0"], "argument --count: '0' is not a positive whole number"),
        (["-i", "lab0", "--timeout", "-1"], "'-1' is not a positive number of seconds"),
        (["-i", "lab0", "--every", "nan"], "'nan' is not a positive number of seconds"),
    ],
)
def test_usage_errors_exit_2(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code, out, err = run(capsys, "sniff", *argv)
    assert (code, out) == (2, "")
    assert message in err
    assert err.count("\n") == 1


@pytest.mark.usefixtures("fake_capture")
def test_a_capture_that_breaks_reports_it_after_the_summary(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def gone(self: FakeCapture, timeout: float | None) -> CaptureRecord | None:
        raise OSError(100, "Network is down")

    monkeypatch.setattr(FakeCapture, "receive", gone)
    code, out, err = run(capsys, "sniff", "-i", "lab0", "--json")
    assert code == 1
    assert json.loads(out)["summary"]["packets"] == 0
    assert err == "carpctl: the capture on lab0 stopped: Network is down\n"
