"""``carpctl events``: the journal read from disk, formats, --since, --follow, exit codes."""

from __future__ import annotations

import argparse
import calendar
import json
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from carpctl.cli import events, main
from carpctl.daemon import config
from carpctl.daemon.journal import Journal

NOW = 1_800_000_000.0  # a fixed "now" for --since arithmetic
APPEND = """
import sys, time
from carpctl.daemon.journal import Journal
j = Journal.open(sys.argv[1], max_bytes=300, keep=30)
for n in range(20):
    j.record("service", name="haproxy", action="start", result="ok", n=n)
    time.sleep(0.01)  # across several of the follower's looks
j.close()
"""


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def cfg(tmp_path: Path, state: Path) -> str:
    path = tmp_path / "carpctl.toml"
    path.write_text(f'[carpctl]\nstate_dir = "{state}"\n')
    return str(path)


def fill(state: Path, *records: tuple[float, str, dict[str, Any]]) -> None:
    clock = iter(at for at, _, _ in records)
    j = Journal.open(state, clock=lambda: next(clock))
    for _, kind, fields in records:
        j.record(kind, **fields)
    j.close()


def stamp(at: float) -> str:
    return datetime.fromtimestamp(at).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def test_no_journal_yet(capsys: pytest.CaptureFixture[str], cfg: str) -> None:
    assert run(capsys, "-c", cfg, "events") == (0, "no events yet\n", "")
    assert run(capsys, "-c", cfg, "events", "--json") == (0, "", "")


def test_one_line_per_event(capsys: pytest.CaptureFixture[str], cfg: str, state: Path) -> None:
    at = time.time() - 100
    fill(
        state,
        (at, "transition", {"vhid": "1@lab0", "old": "BACKUP", "new": "MASTER", "reason": "r"}),
        (at + 1, "demotion", {"entry": "check:web", "old": 0, "new": 50, "total": 50}),
        (at + 2, "check", {"name": "web", "old": "up", "new": "down", "detail": "HTTP 500\n"}),
        (at + 3, "service", {"name": "haproxy", "action": "start", "result": "ok", "detail": ""}),
        (at + 4.5678, "daemon", {"event": "start", "version": "0.1.0", "ready": False}),
    )
    code, out, err = run(capsys, "-c", cfg, "events")
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        f"{stamp(at)}  #1  transition  1@lab0 BACKUP -> MASTER (r)",
        f"{stamp(at + 1)}  #2  demotion    check:web 0 -> 50 total=50",
        f"{stamp(at + 2)}  #3  check       web up -> down (HTTP 500)",
        f"{stamp(at + 3)}  #4  service     haproxy start ok",
        f"{stamp(at + 4.5678)}  #5  daemon      start version=0.1.0 ready=false",
    ]
    assert stamp(at + 4.5678).endswith(f".{int(round(at + 4.5678, 6) * 1000) % 1000:03d}")


def test_json_and_last_n(capsys: pytest.CaptureFixture[str], cfg: str, state: Path) -> None:
    fill(state, *[(NOW + n, "check", {"name": "web", "n": n}) for n in range(5)])
    code, out, _ = run(capsys, "-c", cfg, "events", "--json", "-n", "2")
    assert code == 0
    assert [json.loads(line) for line in out.splitlines()] == [
        {"seq": 4, "time": NOW + 3, "kind": "check", "name": "web", "n": 3},
        {"seq": 5, "time": NOW + 4, "kind": "check", "name": "web", "n": 4},
    ]
    assert run(capsys, "-c", cfg, "events", "-n", "0") == (0, "", "")
    assert len(run(capsys, "-c", cfg, "events", "-n", "99")[1].splitlines()) == 5


def test_since(capsys: pytest.CaptureFixture[str], cfg: str, state: Path) -> None:
    now = time.time()
    fill(state, *[(now - age, "check", {"age": age}) for age in (10800, 3600, 300)])

    def ages(*argv: str) -> list[int]:
        code, out, _ = run(capsys, "-c", cfg, "events", "--json", *argv)
        assert code == 0
        return [json.loads(line)["age"] for line in out.splitlines()]

    assert ages("--since", "2h") == [3600, 300]
    assert ages("--since", "10m") == [300]
    utc = datetime.fromtimestamp(now - 7200, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert ages("--since", utc) == [3600, 300]
    assert ages("--since", "1m") == []
    assert run(capsys, "-c", cfg, "events", "--since", "1m") == (0, "no matching events\n", "")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10m", NOW - 600),
        ("2h", NOW - 7200),
        ("1d", NOW - 86400),
        ("30s", NOW - 30),
        ("1.5h", NOW - 5400),
        ("2026-11-21T03:12:07Z", calendar.timegm((2026, 11, 21, 3, 12, 7))),
        ("2026-11-21T03:12:07.5+01:00", calendar.timegm((2026, 11, 21, 2, 12, 7)) + 0.5),
        ("2026-11-21 03:12", time.mktime((2026, 11, 21, 3, 12, 0, 0, 0, -1))),
        ("2026-11-21", time.mktime((2026, 11, 21, 0, 0, 0, 0, 0, -1))),
    ],
)
def test_since_forms(text: str, expected: float) -> None:
    assert events.when(text, NOW) == pytest.approx(expected)


def test_since_a_time_today_is_local() -> None:
    today = date.fromtimestamp(NOW)
    at = datetime(today.year, today.month, today.day, 3, 12).timestamp()
    assert events.when("03:12", NOW) == at
    assert events.when("3:12", NOW) == at
    assert events.when("03:12:07.25", NOW) == at + 7.25


@pytest.mark.parametrize("text", ["yesterday", "25:00", "10x", "", "-5m", "3:7", "2026-13-01"])
def test_bad_since_is_refused(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="expected an ISO time") as caught:
        events.when(text, NOW)
    assert str(caught.value).endswith(f"got {text!r}")


@pytest.mark.parametrize(
    "argv",
    [["--since", "soon"], ["-n", "-1"], ["-n", "x"], ["--tail"], ["extra"]],
)
def test_bad_arguments_exit_2(
    capsys: pytest.CaptureFixture[str], cfg: str, argv: list[str]
) -> None:
    code, out, err = run(capsys, "-c", cfg, "events", *argv)
    assert (code, out) == (2, "")
    assert err.startswith("carpctl: ")
    assert err.count("\n") == 1


def test_unreadable_journal_exits_1(
    capsys: pytest.CaptureFixture[str], cfg: str, state: Path
) -> None:
    state.mkdir()
    (state / "journal").write_text("not a directory")
    code, out, err = run(capsys, "-c", cfg, "events")
    assert (code, out) == (1, "")
    assert err.startswith("carpctl: cannot read the journal ")
    assert err.count("\n") == 1


def test_config(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "c.toml"
    assert run(capsys, "-c", str(path), "events")[0] == 2  # named but missing
    path.write_text("[carpctl\n")
    assert run(capsys, "-c", str(path), "events")[0] == 2
    path.write_text("[carpctl]\nstate_dir = 5\n")
    code, _, err = run(capsys, "-c", str(path), "events")
    assert (code, err) == (2, f"carpctl: {path}: carpctl.state_dir: expected a path, got 5\n")
    # Only state_dir matters: the rest of the config may be mid-edit.
    path.write_text(f'[carpctl]\nstate_dir = "{tmp_path}"\nbogus = 1\n[[vhid]]\nvhid = 999\n')
    assert events.state_dir(str(path)) == tmp_path
    monkeypatch.setattr(config, "DEFAULT_PATH", tmp_path / "missing.toml")
    assert events.state_dir(None) == Path("/var/lib/carpctl")
    monkeypatch.setattr(config, "DEFAULT_PATH", path)
    assert events.state_dir(None) == tmp_path


def lines(stream: Any) -> Iterator[str]:
    """The stream's lines through a queue, each waited for at most 5 seconds."""
    received: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [received.put(line) for line in stream], daemon=True).start()
    while True:
        yield received.get(timeout=5)


@pytest.mark.timeout(20)
def test_follow_another_process_across_rotations(cfg: str, state: Path) -> None:
    fill(state, *[(NOW + n, "check", {"name": "web", "n": n}) for n in range(3)])
    argv = [sys.executable, "-m", "carpctl", "-c", cfg, "events", "--follow", "-n", "1", "--json"]
    follower = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        shown = lines(follower.stdout)
        assert json.loads(next(shown))["seq"] == 3  # -n 1 of the backlog, then what comes
        subprocess.run([sys.executable, "-c", APPEND, str(state)], check=True, timeout=10)
        got = [json.loads(next(shown)) for _ in range(20)]
        assert [r["seq"] for r in got] == list(range(4, 24))
        assert [r["n"] for r in got] == list(range(20))
        assert len(list((state / "journal").iterdir())) > 5  # it rotated while we followed
        follower.send_signal(signal.SIGINT)
        assert follower.wait(timeout=5) == 0
        assert follower.stderr is not None
        assert follower.stderr.read() == ""
    finally:
        follower.kill()
        follower.wait()
