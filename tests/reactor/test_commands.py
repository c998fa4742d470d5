"""Hook commands driven by the reactor, as real processes: arguments, environment,
timeouts, failures, the newest role, several vhids, flapping, release."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from carpctl.reactor.managers import CommandManager
from carpctl.reactor.process import Event, run_argv

from .conftest import Hooks, driven, eventually, gone, run

V1, V2 = "1@lab0", "2@lab1"


def test_hooks_get_the_devd_arguments_and_the_event_in_their_environment(hooks: Hooks) -> None:
    async def scenario() -> None:
        d = driven([hooks.spec(vhids=[V1], env={"HOOK_X": "mine"})])
        d.reactor.start()
        d.role(V1, "MASTER", old="BACKUP", at=1234.5)
        await d.reactor.idle()
        assert hooks.running()
        d.role(V1, "BACKUP", old="MASTER", at=1240.0)
        await d.reactor.idle()
        assert not hooks.running()
        await d.reactor.stop()

    run(scenario())
    start, stop = hooks.calls()[-2:]
    assert (start["action"], start["args"]) == ("start", [V1, "MASTER"])
    assert start["env"] == {
        "CARPCTL_SERVICE": "svc", "CARPCTL_ACTION": "start", "CARPCTL_VHID": "1",
        "CARPCTL_INTERFACE": "lab0", "CARPCTL_STATE": "MASTER", "CARPCTL_OLD_STATE": "BACKUP",
        "CARPCTL_SEQ": "1", "CARPCTL_TIME": "1234.500000", "HOOK_X": "mine",
    }  # fmt: skip
    assert (stop["action"], stop["args"]) == ("stop", [V1, "BACKUP"])
    assert stop["env"]["CARPCTL_OLD_STATE"] == "MASTER"
    assert stop["env"]["CARPCTL_SEQ"] == "2"


def test_the_first_reconcile_on_a_backup_makes_sure_the_service_is_stopped(hooks: Hooks) -> None:
    async def scenario() -> list[dict[str, object]]:
        d = driven([hooks.spec(vhids=[V1])], vhids=[V1])
        d.reactor.start()
        await d.reactor.reconcile()
        rows = d.reactor.status()
        await d.reactor.stop()
        return rows

    (row,) = run(scenario())
    assert hooks.calls()[0]["args"] == [V1, "INIT"]
    assert hooks.actions() == ["stop"]
    assert (row["desired"], row["actual"], row["actual_from"]) == ("stopped", "stopped",
                                                                   "last action")  # fmt: skip
    assert row["why"] == "not master: 1@lab0 is INIT"


def test_reconcile_stops_a_service_started_behind_a_backups_back(hooks: Hooks) -> None:
    async def scenario() -> None:
        d = driven([hooks.spec(vhids=[V1], status=True)])
        d.reactor.start()
        await d.reactor.reconcile()
        d.role(V1, "BACKUP", old="INIT")
        await d.reactor.idle()
        assert hooks.actions() == ["status"]  # stopped already: nothing to do
        (hooks.dir / "svc" / "running").touch()  # someone started it
        await d.reactor.reconcile()
        assert not hooks.running()
        assert d.row()["actual_from"] == "status"
        await d.reactor.stop()

    run(scenario())
    assert hooks.actions() == ["status", "status", "stop"]


def test_a_start_that_hangs_is_killed_with_its_children_and_demotes(hooks: Hooks) -> None:
    async def scenario() -> dict[str, object]:
        d = driven([hooks.spec(vhids=[V1], timeout=0.5)])
        hooks.behave("svc", "start", "hang")
        d.reactor.start()
        began = time.monotonic()
        d.role(V1, "MASTER")
        await d.reactor.idle()
        assert time.monotonic() - began < 3
        assert d.failed == [("svc", f"{hooks.spec().start[0]} still running after 0.5 s: killed")]
        row = d.row()
        await d.reactor.stop()
        return row

    row = run(scenario())
    child = int((hooks.dir / "svc" / "start.child").read_text())
    assert gone(child)
    assert gone(hooks.calls()[0]["pid"])
    assert hooks.actions() == ["start", "stop"]  # what the start left is stopped
    last = row["last"]
    assert isinstance(last, dict)
    assert (last["action"], last["result"]) == ("stop", "ok")
    assert row["desired"] == "stopped"
    assert str(row["why"]).startswith("start failed, retry later")


def test_a_failed_start_demotes_and_a_later_success_recovers(hooks: Hooks) -> None:
    async def scenario() -> None:
        d = driven([hooks.spec(vhids=[V1], retry_after=0.3)])
        fail = hooks.behave("svc", "start", "fail")
        d.reactor.start()
        d.role(V1, "MASTER")
        await d.reactor.idle()
        assert d.failed == [("svc", f"{hooks.spec().start[0]} exited 1: start failed on purpose")]
        assert hooks.actions() == ["start", "stop"]
        fail.unlink()
        await eventually(hooks.running)  # retried once retry_after has passed
        await d.reactor.idle()
        assert d.recovered == ["svc"]
        assert d.row()["last"]["result"] == "ok"
        await d.reactor.stop()

    run(scenario())
    assert hooks.actions() == ["start", "stop", "start"]


def test_a_failed_stop_is_reported_and_retried_at_the_next_reconcile(hooks: Hooks) -> None:
    async def scenario() -> None:
        d = driven([hooks.spec(vhids=[V1])])
        d.reactor.start()
        d.role(V1, "MASTER")
        await d.reactor.idle()
        fail = hooks.behave("svc", "stop", "fail")
        d.role(V1, "BACKUP", old="MASTER")
        await d.reactor.idle()
        row = d.row()
        assert row["stop_failed"]
        assert (row["last"]["action"], row["last"]["result"]) == ("stop", "failed")
        assert row["last"]["detail"].endswith("exited 1: stop failed on purpose")
        assert row["actual"] == "unknown"
        await asyncio.sleep(0.2)
        assert hooks.actions() == ["start", "stop"]  # not retried in a loop
        fail.unlink()
        await d.reactor.reconcile()
        assert not d.row()["stop_failed"]
        assert d.row()["actual"] == "stopped"
        await d.reactor.stop()

    run(scenario())
    assert hooks.actions() == ["start", "stop", "stop"]


def test_the_newest_role_wins_over_a_slow_start(hooks: Hooks) -> None:
    async def scenario() -> None:
        d = driven([hooks.spec(vhids=[V1])])
        hooks.behave("svc", "start", "sleep", "0.5")
        d.reactor.start()
        d.role(V1, "MASTER")
        await eventually(lambda: hooks.actions() == ["start"])  # the slow start is running
        assert d.row()["busy"] == "start"
        d.role(V1, "BACKUP", old="MASTER")
        await d.reactor.idle()
        assert not hooks.running()
        assert (d.row()["desired"], d.row()["actual"]) == ("stopped", "stopped")
        await d.reactor.stop()

    run(scenario())
    assert hooks.actions() == ["start", "stop"]


def test_no_start_for_a_role_already_gone(hooks: Hooks) -> None:
    async def scenario() -> None:
        d = driven([hooks.spec(vhids=[V1])])
        d.reactor.start()
        d.role(V1, "MASTER")
        d.role(V1, "BACKUP", old="MASTER")  # before the driver ran
        await d.reactor.idle()
        await d.reactor.stop()

    run(scenario())
    assert hooks.actions() == ["stop"]


def test_a_service_on_two_vhids_runs_only_while_master_of_both(hooks: Hooks) -> None:
    async def scenario() -> None:
        d = driven([hooks.spec(vhids=[V1, V2])], vhids=[V1, V2])
        d.reactor.start()
        d.role(V1, "MASTER")
        await d.reactor.idle()
        assert not hooks.running()
        assert d.row()["why"] == "not master: 2@lab1 is INIT"
        d.role(V2, "MASTER")
        await d.reactor.idle()
        assert hooks.running()
        d.role(V1, "BACKUP", old="MASTER")
        await d.reactor.idle()
        assert not hooks.running()
        await d.reactor.stop()

    run(scenario())
    assert [(c["action"], c["args"]) for c in hooks.calls()] == [
        ("stop", [V2, "INIT"]),
        ("start", [V2, "MASTER"]),
        ("stop", [V1, "BACKUP"]),
    ]


def test_flapping_inside_the_hold_down_starts_nothing_until_it_ends(hooks: Hooks) -> None:
    async def scenario() -> None:
        spec = hooks.spec(vhids=[V1], flap_count=3, flap_window=10, hold_down=0.6)
        d = driven([spec])
        d.reactor.start()
        for new, old in (("MASTER", "BACKUP"), ("BACKUP", "MASTER"), ("MASTER", "BACKUP")):
            d.role(V1, new, old=old)
            await d.reactor.idle()
        held = time.time()
        row = d.row()
        assert (row["desired"], row["flaps"]) == ("stopped", 3)
        assert held < row["hold_down_until"] < held + 0.7
        assert str(row["why"]).startswith("held down after flapping")
        assert not hooks.running()
        await eventually(hooks.running, within=3)  # the hold-down ended, still MASTER
        assert time.time() >= row["hold_down_until"] - 0.05
        await d.reactor.stop()

    run(scenario())
    assert hooks.actions() == ["start", "stop", "start"]


def test_min_master_delays_the_start(hooks: Hooks) -> None:
    async def scenario() -> float:
        d = driven([hooks.spec(vhids=[V1], min_master=0.4)])
        d.reactor.start()
        began = time.time()
        d.role(V1, "MASTER")
        await d.reactor.idle()
        assert d.row()["why"] == "waiting for min_master"
        await eventually(hooks.running)
        await d.reactor.stop()
        return began

    began = run(scenario())
    start = hooks.calls()[-1]
    assert start["action"] == "start"
    assert start["at"] - began >= 0.35


def test_release_all_stops_in_reverse_order_and_starts_nothing_again(hooks: Hooks) -> None:
    async def scenario() -> None:
        d = driven([hooks.spec(n, vhids=[V1]) for n in ("db", "app", "web")])
        d.reactor.start()
        d.role(V1, "MASTER")
        await d.reactor.idle()
        d.role(V1, "INIT", old="MASTER")  # the bow-out
        await d.reactor.release_all()
        d.role(V1, "MASTER", old="INIT")
        await d.reactor.idle()
        await d.reactor.stop()

    run(scenario())
    calls = [(c["at"], c["action"], n) for n in ("db", "app", "web") for c in hooks.calls(n)]
    order = sorted(calls)
    assert [(a, n) for _, a, n in order] == [
        ("start", "db"), ("start", "app"), ("start", "web"),
        ("stop", "web"), ("stop", "app"), ("stop", "db"),
    ]  # fmt: skip


def test_a_start_that_daemonizes_is_not_waited_for_beyond_its_own_exit(hooks: Hooks) -> None:
    spec = hooks.spec(timeout=5)
    hooks.behave("svc", "start", "daemon")
    event = Event("svc", "start", V1, "MASTER", "BACKUP", 1, 0.0)
    began = time.monotonic()
    outcome = run(CommandManager(spec).start(event))
    assert (outcome.ok, outcome.detail) == (True, "started")
    assert time.monotonic() - began < 2  # the child holds the output for 60 s
    assert not gone(int((hooks.dir / "svc" / "start.child").read_text()))  # the service lives


# -- hostile values -----------------------------------------------------------------


def test_hostile_values_are_literal_arguments_never_shell(hooks: Hooks, tmp_path: Path) -> None:
    marks = [tmp_path / f"pwned{i}" for i in range(5)]
    spec = hooks.spec(env={"HOOK_X": f"$(touch {marks[0]})"})
    event = Event(
        service="svc",
        action="start",
        vhid=f"1@lab0;touch {marks[1]}",
        state=f"$(touch {marks[2]})",
        old_state=f"`touch {marks[3]}`",
        seq=1,
        time=0.0,
    )
    outcome = run(CommandManager(spec).start(event))
    assert outcome.ok
    (call,) = hooks.calls()
    assert call["args"] == [f"1@lab0;touch {marks[1]}", f"$(touch {marks[2]})"]
    assert call["env"]["CARPCTL_INTERFACE"] == f"lab0;touch {marks[1]}"
    assert call["env"]["CARPCTL_OLD_STATE"] == f"`touch {marks[3]}`"
    assert call["env"]["HOOK_X"] == f"$(touch {marks[0]})"
    # An argv word with shell syntax is one literal argument too.
    done = run(run_argv(["/bin/echo", f"; touch {marks[4]}"], timeout=5))
    assert (done.ok, done.output) == (True, f"; touch {marks[4]}")
    assert not any(m.exists() for m in marks)
    assert not any(Path("/", m.name).exists() for m in marks)


@pytest.mark.parametrize(
    ("vhid", "old", "new"),
    [("1@lab0;touch X", "BACKUP", "MASTER"), ("$(touch X)@lab0", "BACKUP", "MASTER"),
     ("1@lab0", "BACKUP", "MASTER;touch X"), ("1@lab0", "$(touch X)", "MASTER"),
     ("1@lab0", "BACKUP", "master")],
)  # fmt: skip
def test_the_reactor_refuses_hostile_events(
    hooks: Hooks, tmp_path: Path, vhid: str, old: str, new: str
) -> None:
    async def scenario() -> None:
        d = driven([hooks.spec()])
        d.reactor.start()
        with pytest.raises(ValueError, match=r"VHID@INTERFACE|is not a valid Role"):
            d.reactor.role_changed(vhid.replace("X", str(tmp_path / "x")), old, new, 0.0)
        await d.reactor.idle()
        assert d.reactor.roles() == {}
        await d.reactor.stop()

    run(scenario())
    assert hooks.calls() == []
    assert not (tmp_path / "x").exists()


def test_the_reactor_reconciles_by_itself_every_interval(hooks: Hooks) -> None:
    async def scenario() -> None:
        d = driven([hooks.spec(vhids=[V1], status=True)], reconcile_interval=0.2)
        d.reactor.start()
        d.role(V1, "BACKUP", old="INIT")
        await d.reactor.idle()
        (hooks.dir / "svc" / "running").touch()  # started behind the BACKUP's back
        await eventually(lambda: not hooks.running(), within=3)
        await d.reactor.stop()

    run(scenario())
    assert hooks.actions()[-1] == "stop"


def test_a_snapshot_of_roles_changes_only_what_differs(hooks: Hooks) -> None:
    async def scenario() -> None:
        d = driven([hooks.spec(vhids=[V1, V2])], vhids=[V1, V2])
        d.reactor.start()
        d.reactor.set_roles({V1: "MASTER", V2: "MASTER"}, at=100.0)
        await d.reactor.idle()
        assert hooks.running()
        d.reactor.set_roles({V1: "MASTER", V2: "BACKUP"}, at=200.0)
        await d.reactor.idle()
        assert d.reactor.roles() == {V1: "MASTER", V2: "BACKUP"}
        await d.reactor.stop()

    run(scenario())
    *_, start, stop = hooks.calls()
    assert (start["args"], start["env"]["CARPCTL_TIME"]) == ([V2, "MASTER"], "100.000000")
    assert (stop["args"], stop["env"]["CARPCTL_OLD_STATE"]) == ([V2, "BACKUP"], "MASTER")


def test_carpctls_own_systemd_plumbing_is_not_inherited(
    hooks: Hooks, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", "/run/systemd/notify")
    monkeypatch.setenv("WATCHDOG_USEC", "10000000")
    event = Event("svc", "start", V1, "MASTER", "BACKUP", 1, 0.0)
    assert run(CommandManager(hooks.spec()).start(event)).ok
    (call,) = hooks.calls()
    assert not any(k.startswith(("NOTIFY_", "WATCHDOG_")) for k in call["env"])


def test_a_restart_on_a_bsd_master_leaves_services_alone_until_roles_are_known(
    hooks: Hooks,
) -> None:
    (hooks.dir / "svc").mkdir()
    (hooks.dir / "svc" / "running").touch()  # running under the previous daemon

    async def scenario() -> None:
        d = driven([hooks.spec(vhids=[V1], status=True)])  # no [[vhid]]: the kernel's
        d.reactor.start()
        await d.reactor.reconcile()
        assert d.row()["why"] == f"waiting for the role of: {V1}"
        d.reactor.set_roles({V1: "MASTER"}, at=0.0)  # the first ifconfig poll
        await d.reactor.idle()
        assert d.row()["desired"] == "running"
        await d.reactor.stop()

    run(scenario())
    assert hooks.actions() == ["status"]
    assert hooks.running()


def test_a_hung_status_query_never_delays_a_role_change(hooks: Hooks) -> None:
    async def scenario() -> None:
        d = driven([hooks.spec(vhids=[V1], status=True, timeout=5)], vhids=[V1])
        d.reactor.start()
        await d.reactor.reconcile()  # known: stopped
        hooks.behave("svc", "status", "sleep", "1.5")
        pass_done = d.reactor.reconcile()
        await eventually(lambda: hooks.actions().count("status") == 2)  # hanging now
        began = time.monotonic()
        d.role(V1, "MASTER")
        await eventually(hooks.running, within=1.0)
        assert time.monotonic() - began < 1.0
        await pass_done
        assert d.row()["actual"] == "running"
        await d.reactor.stop()

    run(scenario())
