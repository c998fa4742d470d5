"""systemd, FreeBSD service and OpenBSD rcctl services against fake tools on PATH
that keep the documented exit codes."""

from __future__ import annotations

import time

import pytest

from carpctl.core.reactor import Actual
from carpctl.reactor.managers import ToolManager
from carpctl.reactor.process import Event

from .conftest import FakeTools, driven, run, spec_of

V1 = "1@lab0"
EVENT = Event("web", "start", V1, "MASTER", "BACKUP", 1, 0.0)
# (config keys, the name the tool sees, the calls for start, stop and status)
KINDS = {
    "systemd": (
        {"unit": "nginx"}, "nginx.service",
        ["systemctl", "start", "nginx.service"], ["systemctl", "stop", "nginx.service"],
        ["systemctl", "is-active", "nginx.service"],
    ),
    "freebsd": (
        {"rc": "nginx", "manager": "freebsd"}, "nginx",
        ["service", "nginx", "onestart"], ["service", "nginx", "onestop"],
        ["service", "nginx", "onestatus"],
    ),
    "openbsd": (
        {"rc": "nginx", "manager": "openbsd"}, "nginx",
        ["rcctl", "-f", "start", "nginx"], ["rcctl", "-f", "stop", "nginx"],
        ["rcctl", "check", "nginx"],
    ),
}  # fmt: skip
each_kind = pytest.mark.parametrize("kind", list(KINDS))


@each_kind
def test_started_on_master_stopped_on_backup(fake_tools: FakeTools, kind: str) -> None:
    keys, name, start, stop, status = KINDS[kind]

    async def scenario() -> None:
        d = driven([spec_of(name="web", vhids=[V1], **keys)])
        d.reactor.start()
        await d.reactor.reconcile()
        d.role(V1, "BACKUP", old="INIT")
        await d.reactor.idle()
        assert not fake_tools.running(name)
        d.role(V1, "MASTER")
        await d.reactor.idle()
        assert fake_tools.running(name)
        row = d.row("web")
        assert (row["manager"], row["target"], row["actual"]) == (kind, name, "running")
        d.role(V1, "BACKUP", old="MASTER")
        await d.reactor.idle()
        assert not fake_tools.running(name)
        assert d.failed == []
        await d.reactor.stop()

    run(scenario())
    # No hook arguments for a service manager: exactly the documented commands.
    assert fake_tools.calls() == [status, start, stop]


@each_kind
def test_reconcile_is_level_triggered(fake_tools: FakeTools, kind: str) -> None:
    keys, name, start, stop, status = KINDS[kind]

    async def scenario() -> None:
        d = driven([spec_of(name="web", vhids=[V1], **keys)])
        d.reactor.start()
        await d.reactor.reconcile()
        d.role(V1, "BACKUP", old="INIT")
        await d.reactor.idle()
        fake_tools.set_running(name, True)  # running on a BACKUP: missed events
        await d.reactor.reconcile()
        assert not fake_tools.running(name)
        d.role(V1, "MASTER")
        await d.reactor.idle()
        fake_tools.set_running(name, False)  # it crashed on the MASTER
        await d.reactor.reconcile()
        assert fake_tools.running(name)
        await d.reactor.stop()

    run(scenario())
    assert fake_tools.calls() == [status, status, stop, start, status, start]


@each_kind
def test_a_failing_start_demotes_and_is_undone(fake_tools: FakeTools, kind: str) -> None:
    keys, name, start, stop, status = KINDS[kind]
    fake_tools.behave(name, "fail")

    async def scenario() -> None:
        d = driven([spec_of(name="web", vhids=[V1], **keys)])
        d.reactor.start()
        await d.reactor.reconcile()
        d.role(V1, "MASTER")
        await d.reactor.idle()
        ((who, detail),) = d.failed
        assert who == "web"
        assert detail.startswith(f"{start[0]} exited 1: ")
        assert str(d.row("web")["why"]).startswith("start failed, retry later")
        await d.reactor.stop()

    run(scenario())
    # The first reconcile's status, the start, judged again by the status, then what it
    # left is stopped.
    assert fake_tools.calls() == [
        status,
        start,
        status,
        stop,
        *([status] if kind == "freebsd" else []),
    ]


def test_a_hanging_systemctl_is_killed_at_the_timeout(fake_tools: FakeTools) -> None:
    fake_tools.behave("nginx.service", "hang")

    async def scenario() -> None:
        d = driven([spec_of(name="web", unit="nginx", vhids=[V1], timeout=0.5)])
        d.reactor.start()
        began = time.monotonic()
        d.role(V1, "MASTER")
        await d.reactor.idle()
        assert time.monotonic() - began < 3
        assert d.failed == [("web", "systemctl still running after 0.5 s: killed")]
        await d.reactor.stop()

    run(scenario())
    assert fake_tools.calls()[-1] == ["systemctl", "stop", "nginx.service"]


@pytest.mark.parametrize(
    ("kind", "action", "detail"),
    [
        ("freebsd", "stop", "already stopped (service exited 1: nginx not running? "
                            "(check /var/run/nginx.pid).)"),
        ("freebsd", "start", "already running (service exited 1: nginx already running? "
                             "(pid=4242).)"),
    ],
)  # fmt: skip
def test_freebsd_refusing_what_is_already_so_is_done(
    fake_tools: FakeTools, kind: str, action: str, detail: str
) -> None:
    keys, name, *_ = KINDS[kind]
    manager = ToolManager(spec_of(name="web", **keys))
    fake_tools.set_running(name, action == "start")
    outcome = run(manager.start(EVENT) if action == "start" else manager.stop(EVENT))
    assert (outcome.ok, outcome.detail) == (True, detail)


@pytest.mark.parametrize(
    ("kind", "running", "nobus", "actual"),
    [
        ("systemd", True, False, Actual.RUNNING),
        ("systemd", False, False, Actual.STOPPED),
        ("systemd", True, True, Actual.UNKNOWN),  # exit 1: cannot ask, not "stopped"
        ("freebsd", True, False, Actual.RUNNING),
        ("freebsd", False, False, Actual.STOPPED),
        ("openbsd", True, False, Actual.RUNNING),
        ("openbsd", False, False, Actual.STOPPED),
    ],
)
def test_status_exit_codes(
    fake_tools: FakeTools, kind: str, running: bool, nobus: bool, actual: Actual
) -> None:
    keys, name, *_ = KINDS[kind]
    fake_tools.set_running(name, running)
    if nobus:
        fake_tools.behave("nobus", "x")
        (fake_tools.state / "nobus.x").rename(fake_tools.state / "nobus")
    assert run(ToolManager(spec_of(name="web", **keys)).status()) is actual


def test_a_missing_tool_is_unknown_and_a_failed_step(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    manager = ToolManager(spec_of(name="web", unit="nginx"))
    assert run(manager.status()) is Actual.UNKNOWN
    outcome = run(manager.start(EVENT))
    assert (outcome.ok, outcome.detail) == (False, "command not found: systemctl")
