"""status, demote, maintenance, check as subprocesses against a fake daemon."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from control.fakedaemon import FakeDaemon

from carpctl.control.protocol import ControlError, ErrorCode

NOW = time.time()
ENTRY = {
    "name": "operator",
    "source": "operator",
    "amount": 50,
    "since": NOW,
    "expires": None,
    "reason": "patching",
}
WEB = {
    "name": "web",
    "kind": "http",
    "state": "down",
    "demote": 50,
    "last": {"status": "fail", "detail": "HTTP 500\nbody", "duration": 0.004, "at": NOW - 2},
}
DB = {
    "name": "db",
    "kind": "tcp",
    "state": "up",
    "demote": 20,
    "last": {"status": "ok", "detail": "", "duration": 0.001, "at": NOW - 1},
}
STATUS: dict[str, Any] = {
    "backend": "embedded",
    "node": "node1",
    "demotion": {
        "total": 290,
        "entries": [
            {**ENTRY, "name": "maintenance", "source": "maintenance", "amount": 240},
            {**ENTRY, "name": "check:web", "source": "check", "expires": NOW + 600},
        ],
    },
    "vhids": [
        {
            "name": "1@lab0",
            "vhid": 1,
            "interface": "lab0",
            "state": "BACKUP",
            "since": NOW - 312,
            "advbase": 1,
            "advskew": 0,
            "effective_skew": 240,
            "master_seen": {"src": "198.51.100.2", "advbase": 1, "advskew": 100, "at": NOW - 1},
            "sent": 12,
            "send_errors": 0,
            "split_brain": False,
        },
        {
            "name": "2@lab0",
            "vhid": 2,
            "interface": "lab0",
            "state": "MASTER",
            "since": NOW - 3900,
            "advbase": 1,
            "advskew": 100,
            "effective_skew": 240,
            "master_seen": {"src": "198.51.100.3", "advbase": 2, "advskew": 0, "at": NOW},
            "sent": 3900,
            "send_errors": 2,
            "split_brain": True,
        },
    ],
    "checks": [WEB, DB],
    "drops": {"lab0": {"bad_hmac": 3, "bad_ttl": 1}, "lab1": {}},
    "kernel": {"total": 290, "carpctl": 290, "other": 0},
}
EMPTY = {**STATUS, "demotion": {"total": 0, "entries": []}, "vhids": [], "checks": []}
EMPTY.update(drops={}, kernel=None)


def fresh(value: Any, delta: float) -> Any:
    """``value`` with its times moved ``delta`` seconds on (as if built just now)."""
    if isinstance(value, list):
        return [fresh(v, delta) for v in value]
    if isinstance(value, dict):
        return {
            k: v + delta if k in ("since", "expires", "at") and v else fresh(v, delta)
            for k, v in value.items()
        }
    return value


def carpctl(*argv: str) -> tuple[int, str, str]:
    done = subprocess.run(
        [sys.executable, "-m", "carpctl", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "Traceback" not in done.stderr
    return done.returncode, done.stdout, done.stderr


def one_sentence(err: str) -> str:
    assert err.startswith("carpctl: ")
    assert err.count("\n") == 1
    return err


@pytest.fixture
def sock(tmp_path: Path) -> Path:
    return tmp_path / "run" / "ctl.sock"


@pytest.fixture
def config(tmp_path: Path, sock: Path) -> str:
    path = tmp_path / "carpctl.toml"
    path.write_text(f'[carpctl]\ncontrol_socket = "{sock}"\n')
    return str(path)


@pytest.fixture
def daemon(sock: Path) -> Iterator[FakeDaemon]:
    canned = {
        "status": fresh(STATUS, time.time() - NOW),
        "demote": {"entry": ENTRY, "total": 50},
        "maintenance": {"entry": None, "total": 0},
        "check": {"checks": [WEB, DB]},
    }
    with FakeDaemon(sock, canned=canned) as fake:
        yield fake


def test_status_is_readable_at_a_glance(daemon: FakeDaemon, config: str) -> None:
    code, out, err = carpctl("status", "-c", config)
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == "node1: embedded backend, demotion 290"
    assert lines[2].split() == [
        *("VHID", "STATE", "SINCE", "ADVBASE", "SKEW", "EFFECTIVE", "MASTER", "SEEN"),
        *("SENT", "ERRORS"),
    ]
    assert re.fullmatch(
        r"1@lab0\s+BACKUP\s+5m1\ds ago\s+1\s+0\s+240\s+"
        r"198\.51\.100\.2 \(skew 100\) \d\.\ds ago\s+12\s+0",
        lines[3],
    )
    assert lines[2].index("MASTER SEEN") == lines[3].index("198.51") == lines[4].index("198.51")
    assert "MASTER (SPLIT BRAIN)  1h05m ago" in lines[4]
    assert "198.51.100.3 (advbase 2, skew 0)" in lines[4]
    assert "warning: 2@lab0: split brain, another master (198.51.100.3) is active" in out
    assert "  maintenance  maintenance  +240    " in out
    assert "in 10m00s" in out or "in 9m59s" in out
    assert re.search(
        r"\n  web   http  down   \+50     fail \d\.\ds ago, took 4ms: HTTP 500 body\n", out
    )
    assert "  lab0: bad_hmac 3, bad_ttl 1" in out
    assert "lab1" not in out
    assert lines[-1] == "Kernel demotion: 290 (carpctl's 290, not carpctl's 0)"
    assert daemon.requests == [("status", {})]


def test_status_json_and_an_idle_daemon(sock: Path, config: str) -> None:
    with FakeDaemon(sock, canned={"status": EMPTY}):
        code, out, _ = carpctl("-c", config, "status", "--json")
        assert (code, json.loads(out)) == (0, EMPTY)
        code, out, _ = carpctl("status", "-c", config)
    assert code == 0
    assert out.splitlines()[1:] == [
        "",
        "No vhids.",
        "",
        "Demotion: 0",
        "  no entries: the node is not demoted",
        "",
        "Checks: none configured",
        "",
        "Services: none configured",
        "",
        "Rejected packets: none",
    ]


@pytest.mark.parametrize(
    ("argv", "sent"),
    [
        (["+50", "--reason", "patching"], {"delta": 50, "reason": "patching", "for": None}),
        (["-50"], {"delta": -50, "reason": "", "for": None}),
        (["--for", "10m", "-50"], None),  # refused before asking: a timed share is positive
        (["50", "--for", "1.5h"], {"delta": 50, "reason": "", "for": 5400.0}),
        (["--set", "30", "--as", "db", "--for", "90"], {"set": 30, "as": "db", "reason": ""}),
    ],
)
def test_demote_sends_the_validated_request(
    daemon: FakeDaemon, config: str, argv: list[str], sent: dict[str, Any] | None
) -> None:
    code, out, err = carpctl("demote", *argv, "-c", config)
    if sent is None:
        assert code == 2
        assert one_sentence(err) == "carpctl: a demotion for a limited time must be positive\n"
        assert daemon.requests == []
        return
    assert (code, err) == (0, "")
    assert out == "operator +50 (patching); demotion total 50\n"
    if "set" in sent:
        sent["for"] = 90.0
    assert daemon.requests == [("demote", sent)]


def test_demote_removing_a_share_and_maintenance(sock: Path, config: str) -> None:
    maintenance = {**ENTRY, "name": "maintenance", "amount": 240, "expires": time.time() + 7200}
    canned = {
        "demote": {"entry": None, "total": 0},
        "maintenance": {"entry": maintenance, "total": 240},
    }
    with FakeDaemon(sock, canned=canned) as daemon:
        assert carpctl("demote", "--set", "0", "--as", "db", "-c", config) == (
            0,
            "operator:db is 0; demotion total 0\n",
            "",
        )
        assert (
            carpctl("demote", "-5", "-c", config)[1]
            == "the operator share is 0; demotion total 0\n"
        )
        code, out, _ = carpctl(
            "maintenance", "on", "--reason", "kernel", "--for", "2h", "-c", config
        )
    assert code == 0
    assert out.startswith("maintenance +240 (patching), expires in 1h59m")
    assert daemon.requests[-1] == ("maintenance", {"on": True, "reason": "kernel", "for": 7200.0})


def test_maintenance_off(daemon: FakeDaemon, config: str) -> None:
    assert carpctl("maintenance", "off", "-c", config) == (
        0,
        "maintenance off; demotion total 0\n",
        "",
    )
    assert daemon.requests == [("maintenance", {"on": False, "reason": "", "for": None})]


def test_check_prints_results_and_fails_when_one_fails(sock: Path, config: str) -> None:
    with FakeDaemon(sock, canned={"check": {"checks": [WEB, DB]}}) as daemon:
        code, out, err = carpctl("check", "-c", config)
    assert (code, err) == (1, "")
    assert out.splitlines()[0].split() == ["NAME", "KIND", "STATE", "DEMOTE", "RESULT"]
    assert "web   http  down   +50     fail " in out
    assert daemon.requests == [("check", {"name": None})]
    with FakeDaemon(sock, canned={"check": {"checks": [DB]}}) as daemon:
        code, out, _ = carpctl("check", "db", "-c", config)
    assert code == 0
    assert out.splitlines()[1].startswith("db    tcp   up     +20     ok ")
    assert daemon.requests == [("check", {"name": "db"})]
    with FakeDaemon(sock, canned={"check": {"checks": []}}):
        assert carpctl("check", "-c", config) == (0, "No checks configured.\n", "")


@pytest.mark.parametrize(
    ("answer", "code", "message"),
    [
        (ControlError("the operator share is 0: -5 would make it negative"), 1, "the operator"),
        (ControlError("no check named 'x'", ErrorCode.INVALID), 2, "no check named 'x'"),
        ({"entry": None}, 1, "the daemon's demote reply is malformed: result.total: missing"),
    ],
)
def test_daemon_refusals_are_one_sentence(
    sock: Path, config: str, answer: Any, code: int, message: str
) -> None:
    with FakeDaemon(sock, canned={"demote": answer}):
        result = carpctl("demote", "-5", "-c", config)
    assert result[:2] == (code, "")
    assert one_sentence(result[2]).startswith(f"carpctl: {message}")


@pytest.mark.parametrize(
    "argv",
    [
        ["status"],
        ["demote", "+5"],
        ["demote", "--set", "5", "--as", "x"],
        ["maintenance", "on"],
        ["check"],
        ["check", "web"],
    ],
)
def test_no_daemon_is_exit_3(sock: Path, config: str, argv: list[str]) -> None:
    code, out, err = carpctl(*argv, "-c", config)
    assert (code, out) == (3, "")
    assert one_sentence(err) == (
        f"carpctl: the daemon is not reachable at {sock}: "
        "there is no socket (is `carpctl run` running?)\n"
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["demote", "+abc"], "expected +N or -N with N up to 1000, got '+abc'"),
        (["demote", "99999999999"], "expected +N or -N with N up to 1000, got '99999999999'"),
        (["demote", "-5x"], "unrecognized arguments: -5x"),
        (["demote", "+5", "--for", "0"], "expected a duration above 0 and at most ten years"),
        (["demote", "+5", "--for", "5x"], "expected a duration like 30s, 10m, 2h, 1d or seconds"),
        (["demote", "--set", "5"], "--set needs --as NAME: the name of the share"),
        (["demote", "--as", "db"], "--as NAME goes with --set N"),
        (["demote", "--set", "-5", "--as", "db"], "expected a number from 0 to 1000, got '-5'"),
        (["demote", "--set", "5", "--as", "a b"], "expected 1-64 letters, digits"),
        (["demote", "+5", "--set", "5", "--as", "db"], "give either +N/-N or --set N --as NAME"),
        (["demote"], "give +N or -N, or --set N --as NAME"),
        (["demote", "+5", "--reason", "a\tb"], "reason must not contain control characters"),
        (["maintenance"], "the following arguments are required: on|off"),
        (["maintenance", "maybe"], "argument on|off: invalid choice: 'maybe'"),
        (["maintenance", "off", "--for", "1h"], "maintenance off takes no duration"),
        (["check", "../etc"], "expected 1-64 letters, digits"),
        (["status", "--yaml"], "unrecognized arguments: --yaml"),
    ],
)
def test_bad_arguments_are_exit_2_before_asking(
    daemon: FakeDaemon, config: str, argv: list[str], message: str
) -> None:
    code, out, err = carpctl(*argv, "-c", config)
    assert (code, out) == (2, "")
    assert message in one_sentence(err)
    assert daemon.requests == []


def test_a_broken_or_missing_config_is_exit_2(tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text("[carpctl]\ncontrol_socket = 5\n")
    code, out, err = carpctl("status", "-c", str(broken))
    assert (code, out) == (2, "")
    assert one_sentence(err) == f"carpctl: {broken}: carpctl.control_socket: expected str, got 5\n"
    code, _, err = carpctl("demote", "+5", "-c", str(tmp_path / "none.toml"))
    assert code == 2
    assert "none.toml: cannot read the config: No such file or directory" in one_sentence(err)
