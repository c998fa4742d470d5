"""FreeBSD: carpctl's share of net.inet.carp.demotion survives kill -9 and restarts."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from fakekernel import FakeKernel

from carpctl.backends import (
    BackendError,
    CommandError,
    FreeBSDBackend,
    Runner,
    StateError,
    SubprocessRunner,
)

from .bsdcrash import Crash, CrashingRunner, RecordingLog

START = 7  # the kernel's value before carpctl: someone else's


def backend(
    kernel: FakeKernel,
    state_dir: Path,
    runner: Runner | None = None,
    log: RecordingLog | None = None,
) -> FreeBSDBackend:
    return FreeBSDBackend(
        state_dir,
        runner=runner or kernel.runner(),  # in-process; the end-to-end tests pass real processes
        search_path=kernel.search_path,
        log=log or RecordingLog(),
    )


def writes(kernel: FakeKernel) -> list[list[str]]:
    return [c for c in kernel.calls if any("=" in a for a in c)]


@pytest.fixture
def kernel(freebsd: FakeKernel) -> FakeKernel:
    freebsd.adjust(START)
    return freebsd


def test_reconcile_applies_the_share_and_a_restart_does_not_apply_it_again(
    kernel: FakeKernel, state_dir: Path
) -> None:
    applied = backend(kernel, state_dir, kernel.subprocess_runner()).reconcile(50)
    assert (applied.applied, applied.total, applied.steps, applied.complete) == (
        50,
        57,
        (50,),
        True,
    )
    assert kernel.demotion == START + 50
    record = json.loads((state_dir / "kernel-demotion.json").read_text())
    assert (record["applied"], record["pending"], record["backend"]) == (50, None, "freebsd")

    again = backend(
        kernel, state_dir, kernel.subprocess_runner()
    )  # kill -9 and restart: no shutdown at all
    view = again.read()
    assert (view.total, view.carpctl, view.foreign, view.recovery) == (57, 50, START, ())
    assert again.reconcile(50).steps == ()
    assert len(writes(kernel)) == 1
    assert again.reconcile(0).steps == (-50,)
    assert kernel.demotion == START


@pytest.mark.parametrize("window", ["before", "after"])
@pytest.mark.parametrize(("first", "second"), [(0, 50), (50, 0), (50, 80), (80, 30)])
def test_a_crash_in_either_window_neither_doubles_nor_leaks(
    kernel: FakeKernel, state_dir: Path, window: str, first: int, second: int
) -> None:
    backend(kernel, state_dir).reconcile(first)
    crashing = CrashingRunner(kernel.runner(), window=window)
    with pytest.raises(Crash):
        backend(kernel, state_dir, crashing).reconcile(second)
    assert kernel.demotion == START + (second if window == "after" else first)

    log = RecordingLog()
    restarted = backend(kernel, state_dir, log=log)
    view = restarted.read()
    assert view.carpctl == (second if window == "after" else first)
    assert [r.kind for r in view.recovery] == ["written" if window == "after" else "not-written"]
    assert log.recoveries() == [view.recovery[0].kind]
    assert backend(kernel, state_dir).reconcile(second).applied == second
    assert kernel.demotion == START + second
    backend(kernel, state_dir).reconcile(0)
    assert kernel.demotion == START


def test_an_operators_direct_write_is_not_carpctls_and_is_never_undone(
    kernel: FakeKernel, state_dir: Path
) -> None:
    carpctl = backend(kernel, state_dir, kernel.subprocess_runner())
    carpctl.reconcile(50)
    assert kernel.sysctl("net.inet.carp.demotion=+20")[0] == 0  # the operator, by hand
    view = carpctl.read()
    assert (view.total, view.carpctl, view.foreign) == (77, 50, START + 20)
    carpctl.reconcile(0)
    assert kernel.demotion == START + 20
    carpctl.reconcile(30)
    assert kernel.demotion == START + 20 + 30
    assert backend(kernel, state_dir, kernel.subprocess_runner()).read().foreign == START + 20


def test_pfsync_bulk_demotion_meanwhile_is_left_alone(kernel: FakeKernel, state_dir: Path) -> None:
    carpctl = backend(kernel, state_dir, kernel.subprocess_runner())
    carpctl.reconcile(50)
    kernel.adjust(240)  # pfsync bulk start
    assert carpctl.read().foreign == START + 240
    carpctl.reconcile(10)
    assert kernel.demotion == START + 240 + 10
    kernel.adjust(-240)  # pfsync bulk done
    backend(kernel, state_dir, kernel.subprocess_runner()).reconcile(0)
    assert kernel.demotion == START


@pytest.mark.parametrize("window", ["before", "after"])
def test_a_change_by_someone_else_during_the_crash_is_resolved_towards_the_smaller_share(
    kernel: FakeKernel, state_dir: Path, window: str
) -> None:
    backend(kernel, state_dir).reconcile(50)
    with pytest.raises(Crash):
        backend(kernel, state_dir, CrashingRunner(kernel.runner(), window=window)).reconcile(80)
    kernel.adjust(240)  # pfsync, while carpctl was down
    log = RecordingLog()
    restarted = backend(kernel, state_dir, log=log)
    view = restarted.read()
    (recovery,) = view.recovery
    assert recovery.kind == "ambiguous"
    assert recovery.applied_after == 50  # min(50, 80): never more than it surely has
    level, event, _ = log.lines[0]
    assert level == "warning"
    assert "cannot be known" in event
    assert "up to 30 may remain" in event
    restarted.reconcile(0)
    kernel.adjust(-240)
    residue = kernel.demotion - START
    assert residue == (30 if window == "after" else 0)  # left behind, never taken from others
    assert backend(kernel, state_dir).read().foreign == START + residue


def test_a_reboot_forgets_the_share_instead_of_driving_the_value_negative(
    kernel: FakeKernel, state_dir: Path
) -> None:
    backend(kernel, state_dir, kernel.subprocess_runner()).reconcile(50)
    kernel.reboot()
    log = RecordingLog()
    carpctl = backend(kernel, state_dir, kernel.subprocess_runner(), log=log)
    view = carpctl.read()
    assert (view.total, view.carpctl, [r.kind for r in view.recovery]) == (0, 0, ["reboot"])
    assert carpctl.reconcile(0).steps == ()
    assert kernel.demotion == 0
    assert carpctl.reconcile(50).steps == (50,)


def test_a_refused_write_clears_the_record_an_unknown_outcome_keeps_it(
    kernel: FakeKernel, state_dir: Path
) -> None:
    inner = kernel.runner()

    def refusing(argv: list[str]) -> str:
        if "=" in argv[-1]:
            raise CommandError(argv, "failed (exit 1)", returncode=1, stderr="sysctl: no")
        return inner(argv)

    with pytest.raises(CommandError):
        backend(kernel, state_dir, refusing).reconcile(50)
    assert json.loads((state_dir / "kernel-demotion.json").read_text())["pending"] is None

    def timing_out(argv: list[str]) -> str:
        if "=" in argv[-1]:
            inner(argv)  # it did happen, but carpctl cannot tell
            raise CommandError(argv, "timed out after 5 s", returncode=None)
        return inner(argv)

    with pytest.raises(CommandError) as error:
        backend(kernel, state_dir, timing_out).reconcile(50)
    assert not error.value.completed
    assert json.loads((state_dir / "kernel-demotion.json").read_text())["pending"] is not None
    assert backend(kernel, state_dir).reconcile(50).steps == ()  # settled: it took effect
    assert kernel.demotion == START + 50


def test_errors_name_the_command_and_its_stderr(kernel: FakeKernel, state_dir: Path) -> None:
    run = kernel.subprocess_runner()
    with pytest.raises(CommandError) as error:
        run([f"{kernel.bin}/sysctl", "net.inet.carp.nonesuch"])
    assert error.value.completed
    assert "sysctl net.inet.carp.nonesuch` failed (exit 1)" in str(error.value)
    assert "unknown oid 'net.inet.carp.nonesuch'" in str(error.value)
    with pytest.raises(BackendError, match="sysctl not found on PATH"):
        FreeBSDBackend(state_dir, search_path=str(state_dir))
    with pytest.raises(BackendError, match="is not an executable"):
        FreeBSDBackend(state_dir, sysctl="/nonexistent/sysctl", search_path=kernel.search_path)
    with pytest.raises(ValueError, match="never negative"):
        backend(kernel, state_dir).reconcile(-1)


def test_a_hanging_tool_times_out(tmp_path: Path) -> None:
    slow = tmp_path / "sysctl"
    slow.write_text("#!/bin/sh\nexec sleep 10\n")
    slow.chmod(0o755)
    with pytest.raises(CommandError, match=r"timed out after 0\.2 s") as error:
        SubprocessRunner(timeout=0.2)([str(slow), "-n", "kern.boottime"])
    assert not error.value.completed
    with pytest.raises(CommandError, match="could not be started"):
        SubprocessRunner()([str(tmp_path / "missing")])


def test_a_damaged_or_foreign_record_is_refused(kernel: FakeKernel, state_dir: Path) -> None:
    backend(kernel, state_dir).reconcile(50)
    path = state_dir / "kernel-demotion.json"
    record = json.loads(path.read_text())
    path.write_text(json.dumps({**record, "target": "net.inet.carp.other"}))
    with pytest.raises(StateError, match=r"records 50 applied to freebsd net\.inet\.carp\.other"):
        backend(kernel, state_dir).read()
    path.write_text("{not json")
    with pytest.raises(StateError, match="cannot tell its share"):
        backend(kernel, state_dir).reconcile(0)
    assert kernel.demotion == START + 50  # nothing guessed


def test_an_interrupted_save_leaves_the_old_record(
    kernel: FakeKernel, state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    carpctl = backend(kernel, state_dir, kernel.runner())
    carpctl.reconcile(50)
    before = (state_dir / "kernel-demotion.json").read_text()

    def dying_replace(src: str, dst: str) -> None:
        raise Crash("killed while renaming")

    monkeypatch.setattr("carpctl.statefile.os.replace", dying_replace)
    with pytest.raises(Crash):
        carpctl.reconcile(0)  # dies saving the write-ahead record: the kernel is untouched
    monkeypatch.undo()
    assert (state_dir / "kernel-demotion.json").read_text() == before
    assert sorted(p.name for p in state_dir.iterdir()) == [
        "kernel-demotion.json",
        "kernel-demotion.lock",
    ]
    assert kernel.demotion == START + 50
    backend(kernel, state_dir).reconcile(0)
    assert kernel.demotion == START


def test_two_processes_on_one_state_dir_share_one_record(
    kernel: FakeKernel, state_dir: Path
) -> None:
    errors: list[BaseException] = []

    def reconcile() -> None:
        try:
            backend(kernel, state_dir, kernel.subprocess_runner()).reconcile(50)
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=reconcile) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert kernel.demotion == START + 50
    assert len(writes(kernel)) == 1


@pytest.mark.parametrize("seconds", [120, -120])
def test_a_stepped_clock_is_not_a_reboot(kernel: FakeKernel, state_dir: Path, seconds: int) -> None:
    backend(kernel, state_dir).reconcile(50)  # the kernel has been up for 10 minutes
    kernel.step_clock(seconds)  # ntpd: kern.boottime moves with the wall clock
    view = backend(kernel, state_dir).read()
    assert (view.carpctl, view.recovery) == (50, ())
    record = json.loads((state_dir / "kernel-demotion.json").read_text())
    assert record["boot"] == str(kernel.state()["boottime"])  # follows the step
    backend(kernel, state_dir).reconcile(0)
    assert kernel.demotion == START


def test_a_step_beyond_half_the_uptime_counts_as_a_reboot(
    kernel: FakeKernel, state_dir: Path
) -> None:
    """The trade-off: re-applying the share (shown as not carpctl's) beats
    removing a share the kernel no longer holds."""
    backend(kernel, state_dir).reconcile(50)
    kernel.step_clock(400)
    view = backend(kernel, state_dir).read()
    assert (view.carpctl, view.foreign, [r.kind for r in view.recovery]) == (0, 57, ["reboot"])
