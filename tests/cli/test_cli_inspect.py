"""``carpctl inspect``: output, verdicts and exit codes."""

from __future__ import annotations

import json
import shutil
import subprocess
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import pytest
from conftest import AdvertBuilder

from carpctl.capture.pcap import write_pcap
from carpctl.cli.main import main
from carpctl.core import ip

VECTORS = Path(__file__).parent.parent / "vectors"
S1 = VECTORS / "s1_vhid1_secret.pcap"
S1_AUTH = ["--pass", "secret", "--addr", "192.0.2.100"]
SRC, GROUP = IPv4Address("198.51.100.1"), IPv4Address("224.0.0.18")
KEYS = [
    "time",
    "src",
    "dst",
    "ttl",
    "vhid",
    "version",
    "type",
    "advbase",
    "advskew",
    "demote",
    "counter",
    "checksum",
    "hmac",
]


def run(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    code = main([str(arg) for arg in argv])
    out, err = capsys.readouterr()
    return code, out, err


def json_lines(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines()]


def node_args(node: dict[str, Any]) -> list[str]:
    return ["--pass", node["password"], *(arg for vip in node["vips"] for arg in ("--addr", vip))]


def test_every_vector_verifies(
    capsys: pytest.CaptureFixture[str], vector_captures: list[dict[str, Any]]
) -> None:
    total = 0
    for capture in vector_captures:
        code, out, err = run(
            capsys, "inspect", "--json", VECTORS / capture["file"], *node_args(capture["nodes"][0])
        )
        assert (code, err) == (0, "")
        objects = json_lines(out)
        assert len(objects) == capture["frames"]["carp"]
        for obj in objects:
            assert set(KEYS) <= set(obj)
            assert (obj["checksum"], obj["hmac"], obj["problems"]) == ("ok", "ok", [])
            assert isinstance(obj["counter"], int)
        total += len(objects)
    assert total == 47


def test_first_s1_packet_in_json_and_text(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "inspect", "--json", S1, *S1_AUTH)
    first = json_lines(out)[0]
    assert {k: first[k] for k in KEYS if k != "time"} == {
        "src": "192.0.2.1",
        "dst": "224.0.0.18",
        "ttl": 255,
        "vhid": 1,
        "version": 2,
        "type": 1,
        "advbase": 1,
        "advskew": 0,
        "demote": 0,
        "counter": 0x323C5908329A6934,
        "checksum": "ok",
        "hmac": "ok",
    }
    assert (first["checksum_value"], first["src_mac"]) == (0xC611, "00:00:5e:00:00:01")
    code, out, err = run(capsys, "inspect", S1, *S1_AUTH)
    lines = out.splitlines()
    assert (code, err, len(lines)) == (0, "", 6)
    assert lines[0] == (
        "2026-11-21 14:11:01.006519 192.0.2.1 > 224.0.0.18 ttl 255: CARPv2 advertisement"
        " vhid 1 advbase 1 advskew 0 demote 0 counter 0x323c5908329a6934; cksum 0xc611 ok;"
        " hmac ok; ether src 00:00:5e:00:00:01"
    )
    assert lines[-1] == (
        "summary: 5 CARP packets, 5 ok, 0 bad checksum, 0 HMAC failures, 0 truncated;"
        " vhid 1: 192.0.2.1 x5 (advbase 1, advskew 0)"
    )


@pytest.mark.parametrize(
    "auth",
    [
        ["--pass", "Secret", "--addr", "192.0.2.100"],
        ["--pass", "secret", "--addr", "192.0.2.101"],
        ["--pass", "secret", "--addr", "192.0.2.100", "--addr", "192.0.2.101"],
    ],
)
def test_hmac_failure_exits_1(capsys: pytest.CaptureFixture[str], auth: list[str]) -> None:
    code, out, err = run(capsys, "inspect", S1, *auth)
    assert (code, err) == (1, "")
    assert out.count("hmac bad") == 5
    assert "5 HMAC failures" in out.splitlines()[-1]
    assert "192.0.2.1 x5 (advbase 1, advskew 0, 5 HMAC bad)" in out


def test_without_password_hmac_is_unchecked(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "inspect", "--json", S1)
    assert code == 0
    assert {obj["hmac"] for obj in json_lines(out)} == {"unchecked"}
    assert "HMAC not checked" in run(capsys, "inspect", S1)[1]


@pytest.mark.parametrize("ending", [b"\n", b"\r\n", b"", b"\nsecond line\n"])
def test_pass_file(capsys: pytest.CaptureFixture[str], tmp_path: Path, ending: bytes) -> None:
    secret = tmp_path / "pass"
    secret.write_bytes(b"secret" + ending)
    code, out, _ = run(
        capsys, "inspect", "--json", S1, "--pass-file", secret, "--addr", "192.0.2.100"
    )
    assert code == 0
    assert {obj["hmac"] for obj in json_lines(out)} == {"ok"}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--pass", "secret"], "carpctl: checking the HMAC needs the virtual host's addresses"),
        (["--addr", "192.0.2.100"], "carpctl: --addr needs --pass or --pass-file"),
        (
            ["--pass", "x", "--addr", "192.0.2.300"],
            "carpctl: argument --addr: '192.0.2.300' is not an IPv4",
        ),
        (
            ["--pass", "x", "--pass-file", "f", "--addr", "192.0.2.1"],
            "carpctl: argument --pass-file: not allowed",
        ),
        (
            ["--pass-file", "/nonexistent/p", "--addr", "192.0.2.1"],
            "carpctl: cannot read the password file",
        ),
        (["--frobnicate"], "carpctl: unrecognized arguments: --frobnicate"),
    ],
)
def test_usage_errors_exit_2(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code, out, err = run(capsys, "inspect", S1, *argv)
    assert (code, out) == (2, "")
    assert err.startswith(message)
    assert err.count("\n") == 1


def test_capture_and_password_cannot_both_be_stdin(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "inspect", "-", "--pass-file", "-", "--addr", "192.0.2.1")
    assert (code, err) == (2, "carpctl: the capture and --pass-file cannot both come from stdin\n")


def test_unreadable_or_foreign_files_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert run(capsys, "inspect", tmp_path / "missing.pcap")[::2] == (
        2,
        f"carpctl: cannot read {tmp_path / 'missing.pcap'}: No such file or directory\n",
    )
    assert run(capsys, "inspect", tmp_path)[::2] == (
        2,
        f"carpctl: cannot read {tmp_path}: Is a directory\n",
    )
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    assert run(capsys, "inspect", text)[::2] == (
        2,
        f"carpctl: {text}: not a pcap or pcapng capture: unknown magic number 0x68656c6c\n",
    )


def test_capture_damaged_part_way(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    damaged = tmp_path / "damaged.pcap"
    damaged.write_bytes(S1.read_bytes()[:-10])
    code, out, err = run(capsys, "inspect", damaged, *S1_AUTH)
    assert code == 1
    assert out.count("hmac ok") == 4  # the packets before the damage
    assert err == (
        f"carpctl: {damaged} is damaged: truncated record at byte 484: 70 bytes announced,"
        " 60 present; the 6 frames before it were read\n"
    )


def test_vrrp_does_not_fail_but_bad_carp_does(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, advert: AdvertBuilder
) -> None:
    good = advert()
    vrrp_payload = bytes([0x21, 5, 100, 1, 0, 1, 0, 0, 198, 51, 100, 50]) + bytes(8)
    vrrp = good[:14] + ip.build_ipv4(SRC, GROUP, vrrp_payload)
    path = tmp_path / "mixed.pcap"
    path.write_bytes(write_pcap([(1.0, good), (2.0, vrrp)]))
    code, out, _ = run(capsys, "inspect", path, "--pass", "secret", "--addr", "198.51.100.100")
    assert code == 0
    assert "not CARP: looks like VRRPv2 (vrid 5, 1 address(es))" in out
    assert "1 not CARP (VRRP?)" in out
    truncated = advert()[:-16]
    path.write_bytes(write_pcap([(1.0, good), (2.0, vrrp), (3.0, truncated)]))
    code, out, _ = run(capsys, "inspect", "--json", path)
    last = json_lines(out)[-1]
    assert code == 1
    assert (last["vhid"], last["counter"], last["checksum"]) == (1, 0x0102030405060708, None)
    assert (last["truncated"], last["problems"]) == (True, ["truncated: 20 of 36 bytes"])
    assert last["digest"] is None


def test_unsupported_link_type(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "wifi.pcap"
    path.write_bytes(write_pcap([(1.0, b"radiotap")], linktype=127))
    code, out, err = run(capsys, "inspect", path)
    assert code == 1
    assert err.startswith(
        "carpctl: 1 frames have link type 127, which carpctl cannot read (it reads "
    )
    assert out == "summary: no protocol-112 packets in 1 frames\n"


def test_pcapng_gives_the_same_json(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    if shutil.which("tshark") is None:
        pytest.skip("tshark is not installed")
    source = VECTORS / "s4_pair_preempt_failover.pcap"
    converted = tmp_path / "s4.pcapng"
    subprocess.run(
        ["tshark", "-r", str(source), "-w", str(converted), "-F", "pcapng"],
        check=True,
        capture_output=True,
    )
    auth = ["--pass", "pairpass", "--addr", "192.0.2.107"]
    assert run(capsys, "inspect", "--json", converted, *auth) == run(
        capsys, "inspect", "--json", source, *auth
    )


def test_config_option_is_accepted_everywhere(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "-c", "/nonexistent.toml", "inspect", S1)[0] == 0
    assert run(capsys, "inspect", "-c", "/nonexistent.toml", S1)[0] == 0
