"""``run`` services: a real HTTP server spawned on MASTER, gone on BACKUP, its death reported."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from carpctl.reactor.process import Event
from carpctl.reactor.supervised import RunManager

from .conftest import HOOK, TINY_HTTP, driven, eventually, free_port, gone, run, spec_of

V1 = "1@lab0"
EVENT = Event("web", "start", V1, "MASTER", "BACKUP", 1, 0.0)


def fetch(port: int) -> str | None:
    """The server's answer, or None when nothing listens."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as answer:
            text: str = answer.read().decode()
            return text
    except (urllib.error.URLError, ConnectionError):
        return None


async def answer(port: int) -> str | None:
    return await asyncio.to_thread(fetch, port)


async def served(port: int, within: float = 5.0) -> str:
    """The answer of a server that was just started (it may still be binding its port)."""
    deadline = time.monotonic() + within
    while (text := await answer(port)) is None:
        assert time.monotonic() < deadline, f"nothing answers on port {port}"
        await asyncio.sleep(0.05)
    return text


def web(port: int, **table: object) -> dict[str, object]:
    return {"name": "web", "run": [sys.executable, TINY_HTTP, str(port)], "vhids": [V1], **table}


def test_the_server_runs_while_master_and_is_gone_after_backup() -> None:
    port = free_port()

    async def scenario() -> None:
        d = driven([spec_of(**web(port))])
        d.reactor.start()
        d.role(V1, "BACKUP", old="INIT")
        await d.reactor.idle()
        assert await answer(port) is None
        d.role(V1, "MASTER")
        await d.reactor.idle()
        text = await served(port)
        assert text.startswith("MASTER ")  # CARPCTL_STATE reached it
        pid = int(text.split()[1])
        row = d.row("web")
        assert (row["actual"], row["actual_from"], row["manager"]) == ("running", "process", "run")
        assert row["last"]["detail"] == f"running (pid {pid})"
        d.role(V1, "BACKUP", old="MASTER")
        await d.reactor.idle()
        assert await answer(port) is None
        assert gone(pid)
        detail = d.row("web")["last"]["detail"]
        assert detail == f"stopped by SIGTERM ({sys.executable} was killed by SIGTERM)"
        assert d.failed == []
        await d.reactor.stop()

    run(scenario())


def test_its_death_is_reported_demotes_and_it_is_started_again() -> None:
    port = free_port()

    async def scenario() -> None:
        d = driven([spec_of(**web(port, retry_after=0.3))])
        d.reactor.start()
        d.role(V1, "MASTER")
        await d.reactor.idle()
        text = await served(port)
        first = int(text.split()[1])
        os.kill(first, signal.SIGKILL)
        await eventually(lambda: d.failed)
        assert d.failed == [("web", f"died: {sys.executable} was killed by SIGKILL")]
        row = d.row("web")
        assert (row["last"]["action"], row["last"]["result"]) == ("exit", "failed")
        assert (row["desired"], row["actual"]) == ("stopped", "stopped")
        await eventually(lambda: d.recovered == ["web"])  # after retry_after
        await d.reactor.idle()
        text = await served(port)
        assert int(text.split()[1]) != first
        await d.reactor.release_all()
        assert await answer(port) is None
        await d.reactor.stop()

    run(scenario())


def test_a_server_that_exits_at_once_is_a_failed_start() -> None:
    async def scenario() -> None:
        spec = spec_of(name="web", run=[sys.executable, "-c", "raise SystemExit(3)"], vhids=[V1])
        d = driven([spec])
        d.reactor.start()
        d.role(V1, "MASTER")
        await d.reactor.idle()
        assert d.failed == [("web", f"{sys.executable} exited 3 at once")]
        assert d.row("web")["actual"] == "stopped"
        await d.reactor.stop()

    run(scenario())


def test_stop_escalates_to_sigkill_and_takes_the_group_down(tmp_path: Path) -> None:
    code = (
        "import pathlib, signal, subprocess, sys, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        "pathlib.Path(sys.argv[1]).write_text(str(child.pid))\n"
        "time.sleep(60)\n"
    )
    child_file = tmp_path / "child"
    argv = [sys.executable, "-c", code, str(child_file)]
    spec = spec_of(name="stubborn", run=argv, timeout=0.4)

    async def scenario() -> None:
        manager = RunManager(spec, on_exit=lambda detail: None)
        started = await manager.start(EVENT)
        assert started.ok
        assert manager.alive
        pid = manager.pid
        assert pid is not None
        await eventually(child_file.exists)
        child = int(child_file.read_text())
        began = time.monotonic()
        stopped = await manager.stop(EVENT)
        assert stopped.ok
        assert (
            stopped.detail
            == f"stopped by SIGKILL after 0.4 s ({sys.executable} was killed by SIGKILL)"
        )
        assert 0.35 < time.monotonic() - began < 3
        assert gone(pid)
        await eventually(lambda: gone(child), within=2)
        assert not manager.alive
        assert (await manager.stop(EVENT)).detail == "not running"

    run(scenario())


def test_a_server_that_cannot_be_run_is_a_failed_start() -> None:
    spec = spec_of(name="web", run=["/nonexistent/server"])
    outcome = run(RunManager(spec, on_exit=lambda detail: None).start(EVENT))
    assert (outcome.ok, outcome.detail) == (False, "command not found: /nonexistent/server")


def test_a_reload_keeps_unchanged_servers_and_replaces_changed_ones(tmp_path: Path) -> None:
    ports = [free_port() for _ in range(4)]
    hook_dir = tmp_path / "hook"
    hook_dir.mkdir()
    hook = {"name": "hook", "start": [sys.executable, HOOK, "start"],
            "stop": [sys.executable, HOOK, "stop"], "env": {"HOOK_DIR": str(hook_dir)}}  # fmt: skip

    async def scenario() -> None:
        names = ("kept", "changed", "removed")
        kept, changed, removed = (spec_of(**web(ports[i], name=n)) for i, n in enumerate(names))
        d = driven([kept, changed, removed, spec_of(**hook)])
        d.reactor.start()
        d.role(V1, "MASTER")
        await d.reactor.idle()
        pids = {p: (await served(p)).split()[1] for p in ports[:3]}
        added = spec_of(name="added", run=[sys.executable, TINY_HTTP, str(ports[3])])
        await d.reactor.reload([spec_of(**web(ports[1], name="changed", timeout=9)), kept, added])
        await d.reactor.idle()
        assert (await served(ports[0])).split()[1] == pids[ports[0]]  # the same process
        assert (await served(ports[1])).split()[1] != pids[ports[1]]  # restarted as changed
        assert await answer(ports[2]) is None  # removed: carpctl's process is stopped
        assert (await served(ports[3])).startswith("MASTER")
        assert [r["name"] for r in d.reactor.status()] == ["changed", "kept", "added"]
        await d.reactor.release_all()
        await d.reactor.stop()

    run(scenario())
    calls = [
        json.loads(line)["action"] for line in (hook_dir / "log.jsonl").read_text().splitlines()
    ]
    assert calls == ["start"]  # a removed hook service is left as it is
