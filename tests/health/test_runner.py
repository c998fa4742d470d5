"""The runner: rise/fall through real probes, hard timeouts, hung threads, stop, status."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from carpctl.core.checkstate import Result, State, Transition
from carpctl.health.result import CheckResult
from carpctl.health.runner import CheckRunner, UnknownCheck
from carpctl.health.spec import CheckSpec

from .conftest import HttpServer, spec_of

Changes = list[tuple[str, State, State]]


def recorder() -> tuple[Changes, Any]:
    changes: Changes = []

    def on_change(spec: CheckSpec, transition: Transition) -> None:
        changes.append((spec.name, transition.old, transition.new))

    return changes, on_change


def test_an_http_check_rises_then_fails_on_500_wrong_body_and_hang(
    http_server: HttpServer,
) -> None:
    spec = spec_of(
        name="web", kind="http", url=http_server.url, body_pattern="^ok", timeout=0.4, fall=2
    )
    changes, on_change = recorder()

    async def scenario() -> list[tuple[str, str, str]]:
        runner = CheckRunner([spec], on_change)
        seen = []

        async def once() -> None:
            (report,) = await runner.run_now("web")
            seen.append((str(report.status), str(report.state), report.detail))

        await once()
        assert not runner.ready  # readiness gating: one pass is not rise (2)
        await once()
        assert runner.ready
        http_server.behaviour.status = 500
        await once()
        http_server.behaviour.status, http_server.behaviour.body = 200, b"degraded"
        await once()
        http_server.behaviour.mode = "hang"
        await once()
        await runner.stop()
        return seen

    seen = asyncio.run(scenario())
    assert [(s, st) for s, st, _ in seen] == [
        ("ok", "unknown"),
        ("ok", "passing"),
        ("failure", "passing"),
        ("failure", "failing"),
        ("timeout", "failing"),
    ]
    assert seen[2][2].startswith("HTTP 500 Internal Server Error")
    assert "does not match /^ok/" in seen[3][2]
    assert changes == [
        ("web", State.UNKNOWN, State.PASSING),
        ("web", State.PASSING, State.FAILING),
    ]


def test_scheduled_runs_and_status(http_server: HttpServer, tmp_path: Path) -> None:
    web = spec_of(name="web", kind="http", url=http_server.url, interval=0.2, timeout=0.2, rise=1)
    flag = spec_of(
        name="flag", kind="file", path=str(tmp_path / "down"), exists=False, interval=0.2, rise=1
    )
    changes, on_change = recorder()

    async def scenario() -> list[dict[str, Any]]:
        runner = CheckRunner([web, flag], on_change, wall=lambda: 1700000000.0)
        runner.start()
        await asyncio.sleep(0.3)
        assert runner.ready
        (tmp_path / "down").touch()
        await asyncio.sleep(0.8)
        status = runner.status()
        await runner.stop()
        return status

    status = asyncio.run(scenario())
    assert http_server.behaviour.requests >= 4  # every 0.2 s for about a second
    by_name = {row["name"]: row for row in status}
    assert by_name["web"]["state"] == "passing"
    assert by_name["web"]["last"]["status"] == "ok"
    assert by_name["web"]["consecutive"] >= 4
    assert by_name["flag"] == {
        "name": "flag",
        "kind": "file",
        "state": "failing",
        "demote": 50,
        "interval": 0.2,
        "timeout": 0.2,
        "rise": 1,
        "fall": 2,
        "consecutive": by_name["flag"]["consecutive"],
        "hanging": False,
        "last": {
            "status": "failure",
            "detail": f"{tmp_path / 'down'} exists (the check passes while it does not)",
            "duration": by_name["flag"]["last"]["duration"],
            "at": 1700000000.0,
        },
    }
    assert by_name["flag"]["consecutive"] >= 2
    assert ("flag", State.PASSING, State.FAILING) in changes


def test_a_probe_hanging_forever_is_abandoned_and_never_run_twice() -> None:
    """Injected probe: blocks until released. One thread is held, never more."""
    release = threading.Event()
    calls = {"stuck": 0, "fine": 0}

    def probe(spec: CheckSpec) -> CheckResult:
        calls[spec.name] += 1
        if spec.name == "stuck":
            release.wait()
            return CheckResult.ok("finally")
        return CheckResult.ok("fine")

    stuck = spec_of(name="stuck", kind="file", path="/x", interval=0.1, timeout=0.1, fall=1)
    fine = spec_of(name="fine", kind="file", path="/x", interval=0.1, timeout=0.1, rise=1)
    changes, on_change = recorder()

    async def scenario() -> tuple[list[Any], list[Any], list[dict[str, Any]], int]:
        runner = CheckRunner([stuck, fine], on_change, probe=probe)
        first = await runner.run_now()
        runner.start()
        await asyncio.sleep(0.6)
        again = await runner.run_now()
        status = runner.status()
        threads = runner.pool.threads
        assert calls["stuck"] == 1  # the abandoned run only: never started again meanwhile
        release.set()
        await asyncio.sleep(0.3)  # the stuck probe returns; the next run starts afresh
        after = runner.status()
        await runner.stop()
        return first, again, [status, after], threads

    first, again, (status, after), threads = asyncio.run(scenario())
    assert [(r.name, r.status, r.detail) for r in first] == [
        ("stuck", Result.TIMEOUT, "no result within 0.1 s"),
        ("fine", Result.OK, "fine"),
    ]
    assert again[0].status is Result.TIMEOUT
    assert again[0].detail.startswith("not run: the previous run is still hanging after ")
    assert again[1].status is Result.OK
    assert calls["stuck"] >= 2  # runs again once the hung one returned
    assert calls["fine"] >= 5  # the other check was never held up
    assert threads <= 2
    assert status[0]["hanging"] is True
    assert status[0]["state"] == "failing"
    assert after[0]["hanging"] is False
    assert after[0]["last"]["status"] == "ok"
    assert ("stuck", State.UNKNOWN, State.FAILING) in changes


def test_a_real_http_probe_stuck_in_trickled_headers(http_server: HttpServer) -> None:
    """requests' per-read timeout never fires while headers trickle in: only the runner stops it."""
    stuck = spec_of(
        name="stuck", kind="http", url=http_server.url + "/trickle", interval=0.3, timeout=0.3
    )
    fine = spec_of(name="fine", kind="http", url=http_server.url, interval=0.3, timeout=0.3)

    async def scenario() -> list[dict[str, Any]]:
        runner = CheckRunner([stuck, fine], lambda s, t: None)
        runner.start()
        await asyncio.sleep(1.2)
        status = runner.status()
        await runner.stop()
        return status

    started = time.monotonic()
    stuck_row, fine_row = asyncio.run(scenario())
    assert time.monotonic() - started < 3
    assert stuck_row["hanging"] is True
    assert stuck_row["last"]["status"] == "timeout"
    assert stuck_row["state"] == "failing"
    assert fine_row["state"] == "passing"
    # one request only: the later runs were not started while the first still hung
    trickles = http_server.behaviour.requests - fine_row["consecutive"]
    assert trickles == 1


def test_run_now_shares_a_run_in_flight_and_refuses_unknown_names() -> None:
    calls = 0

    def probe(spec: CheckSpec) -> CheckResult:
        nonlocal calls
        calls += 1
        time.sleep(0.2)
        return CheckResult.warning("slow but fine")

    spec = spec_of(name="slow", kind="file", path="/x", timeout=1.0)

    async def scenario() -> list[Any]:
        runner = CheckRunner([spec], lambda s, t: None, probe=probe)
        reports = await asyncio.gather(runner.run_now("slow"), runner.run_now())
        with pytest.raises(UnknownCheck, match="no check named 'nope'"):
            await runner.run_now("nope")
        await runner.stop()
        return reports

    (one,), (two,) = asyncio.run(scenario())
    assert one is two
    assert calls == 1
    assert (one.status, one.detail, one.kind) == (Result.WARNING, "slow but fine", "file")
    assert one.to_json()["status"] == "warning"


def test_a_probe_that_raises_is_a_failure_and_a_failing_callback_is_contained() -> None:
    def probe(spec: CheckSpec) -> CheckResult:
        raise RuntimeError("bug in a probe")

    def on_change(spec: CheckSpec, transition: Transition) -> None:
        raise ValueError("bug in the callback")

    spec = spec_of(name="b", kind="file", path="/x", interval=0.1, timeout=0.1, fall=1)

    async def scenario() -> list[dict[str, Any]]:
        runner = CheckRunner([spec], on_change, probe=probe)
        runner.start()
        await asyncio.sleep(0.35)
        status = runner.status()
        await runner.stop()
        return status

    (row,) = asyncio.run(scenario())
    assert row["state"] == "failing"
    assert row["last"]["detail"] == "probe crashed: RuntimeError: bug in a probe"
    assert row["consecutive"] >= 3  # the schedule went on


def test_command_checks_run_as_subprocesses_and_stop_kills_them(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    code = f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(60)"
    hang = spec_of(
        name="hang", kind="command", argv=[sys.executable, "-c", code], interval=10, timeout=5
    )
    quick = spec_of(
        name="quick", kind="command", argv=[sys.executable, "-c", "raise SystemExit(2)"], fall=1
    )

    async def scenario() -> tuple[int, list[Any]]:
        runner = CheckRunner([hang, quick], lambda s, t: None)
        assert runner.pool.max_workers == 1  # command checks need no thread
        runner.start()
        deadline = time.monotonic() + 5
        while not pid_file.exists() or not pid_file.read_text():
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
        (report,) = await runner.run_now("quick")
        await runner.stop()
        return int(pid_file.read_text()), [report]

    pid, (report,) = asyncio.run(scenario())
    assert (report.status, report.detail, report.state) == (Result.FAILURE, "exit 2", State.FAILING)
    deadline = time.monotonic() + 5
    while psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
        assert time.monotonic() < deadline, "stop() left the command running"
        time.sleep(0.02)


def test_a_hung_probe_does_not_keep_the_process_from_exiting(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import asyncio, threading
        from pathlib import Path
        from carpctl.health.result import CheckResult
        from carpctl.health.runner import CheckRunner
        from carpctl.health.spec import parse_checks

        def probe(spec):
            threading.Event().wait()  # forever

        async def main():
            specs = parse_checks(Path("t.toml"), [{"name": "h", "kind": "file", "path": "/x",
                                                   "timeout": 0.1}])
            runner = CheckRunner(specs, lambda s, t: None, probe=probe)
            (report,) = await runner.run_now()
            print(report.status)
            await runner.stop()

        asyncio.run(main())
        """
    )
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=20, check=False
    )
    assert (done.returncode, done.stdout.split()[-1]) == (0, "timeout"), done.stderr
    assert time.monotonic() - started < 10


def test_first_runs_are_spread_but_all_happen_within_a_second() -> None:
    seen: dict[str, float] = {}

    def probe(spec: CheckSpec) -> CheckResult:
        seen.setdefault(spec.name, time.monotonic())
        return CheckResult.ok()

    specs = [spec_of(name=f"c{i}", kind="file", path="/x", interval=5) for i in range(10)]

    async def scenario() -> float:
        runner = CheckRunner(specs, lambda s, t: None, probe=probe)
        started = time.monotonic()
        runner.start()
        await asyncio.sleep(1.3)
        await runner.stop()
        return started

    started = asyncio.run(scenario())
    assert len(seen) == 10
    offsets = sorted(t - started for t in seen.values())
    assert offsets[-1] < 1.2
    assert offsets[-1] - offsets[0] > 0.5  # spread, not all at once
