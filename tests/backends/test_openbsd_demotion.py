"""OpenBSD: carpctl's share of a group's demote count, in steps of 128 within 0..255."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fakekernel import FakeKernel

from carpctl.backends import BackendError, CommandError, OpenBSDBackend, ParseError, Runner

from .bsdcrash import Crash, CrashingRunner, RecordingLog

START = 3


def backend(
    kernel: FakeKernel,
    state_dir: Path,
    runner: Runner | None = None,
    *,
    group: str = "carp",
    log: RecordingLog | None = None,
) -> OpenBSDBackend:
    return OpenBSDBackend(
        state_dir,
        group=group,
        runner=runner or kernel.runner(),
        search_path=kernel.search_path,
        log=log or RecordingLog(),
    )


def demotes(kernel: FakeKernel) -> list[list[str]]:
    return [c[3:] for c in kernel.calls if len(c) > 3 and c[3].endswith("carpdemote")]


@pytest.fixture
def kernel(openbsd: FakeKernel) -> FakeKernel:
    openbsd.adjust(START)
    return openbsd


def test_reconcile_and_restart_with_real_processes(kernel: FakeKernel, state_dir: Path) -> None:
    carpctl = backend(kernel, state_dir, kernel.subprocess_runner())
    assert carpctl.reconcile(50).steps == (50,)
    assert kernel.demotion == START + 50
    restarted = backend(kernel, state_dir, kernel.subprocess_runner())  # after kill -9
    view = restarted.read()
    assert (view.total, view.carpctl, view.foreign) == (START + 50, 50, START)
    assert restarted.reconcile(50).steps == ()
    assert restarted.reconcile(0).steps == (-50,)
    assert kernel.demotion == START
    assert demotes(kernel) == [["carpdemote", "50"], ["-carpdemote", "50"]]


def test_a_share_above_128_takes_two_writes_each_way(kernel: FakeKernel, state_dir: Path) -> None:
    carpctl = backend(kernel, state_dir)
    applied = carpctl.reconcile(200)
    assert (applied.steps, applied.applied, applied.total) == ((128, 72), 200, START + 200)
    assert carpctl.reconcile(0).steps == (-128, -72)
    assert kernel.demotion == START
    assert demotes(kernel) == [
        ["carpdemote", "128"],
        ["carpdemote", "72"],
        ["-carpdemote", "128"],
        ["-carpdemote", "72"],
    ]


@pytest.mark.parametrize("window", ["before", "after"])
@pytest.mark.parametrize("at", [0, 1])
def test_a_crash_at_either_write_of_two_neither_doubles_nor_leaks(
    kernel: FakeKernel, state_dir: Path, window: str, at: int
) -> None:
    crashing = CrashingRunner(kernel.runner(), at=at, window=window)
    with pytest.raises(Crash):
        backend(kernel, state_dir, crashing).reconcile(200)
    written = [128, 72][: at + (window == "after")]
    assert kernel.demotion == START + sum(written)
    restarted = backend(kernel, state_dir)
    assert restarted.read().carpctl == sum(written)
    assert restarted.reconcile(200).applied == 200
    assert kernel.demotion == START + 200
    with pytest.raises(Crash):
        backend(kernel, state_dir, CrashingRunner(kernel.runner(), at=at, window=window)).reconcile(
            0
        )
    backend(kernel, state_dir).reconcile(0)
    assert kernel.demotion == START


def test_a_share_that_would_leave_0_to_255_is_applied_as_far_as_it_fits(
    kernel: FakeKernel, state_dir: Path
) -> None:
    assert kernel.ifconfig("-g", "carp", "carpdemote", "100")[0] == 0  # an operator
    assert kernel.ifconfig("-g", "carp", "carpdemote", "97")[0] == 0
    carpctl = backend(kernel, state_dir)
    applied = carpctl.reconcile(100)
    assert (applied.applied, applied.shortfall, applied.total) == (55, 45, 255)
    assert not applied.complete
    assert "within 0..255" in applied.limit
    assert kernel.demotion == 255
    # the operator takes theirs back: the rest of carpctl's share now fits
    assert kernel.ifconfig("-g", "carp", "-carpdemote", "100")[0] == 0
    assert kernel.ifconfig("-g", "carp", "-carpdemote", "97")[0] == 0
    applied = carpctl.reconcile(100)
    assert (applied.steps, applied.applied, applied.complete) == ((45,), 100, True)
    carpctl.reconcile(0)
    assert kernel.demotion == START


def test_operator_and_pfsync_changes_are_never_undone(kernel: FakeKernel, state_dir: Path) -> None:
    carpctl = backend(kernel, state_dir, kernel.subprocess_runner())
    carpctl.reconcile(40)
    kernel.ifconfig("-g", "carp", "carpdemote", "20")  # the operator
    kernel.adjust(32)  # pfsync start
    view = carpctl.read()
    assert (view.carpctl, view.foreign) == (40, START + 20 + 32)
    carpctl.reconcile(0)
    assert kernel.demotion == START + 20 + 32
    kernel.adjust(-32)  # pfsync done
    assert backend(kernel, state_dir).read().foreign == START + 20


def test_a_count_below_carpctls_share_means_someone_removed_it(
    kernel: FakeKernel, state_dir: Path
) -> None:
    carpctl = backend(kernel, state_dir)
    carpctl.reconcile(40)
    kernel.ifconfig("-g", "carp", "-carpdemote", "30")  # an operator clearing "everything"
    log = RecordingLog()
    view = backend(kernel, state_dir, log=log).read()
    assert (view.total, view.carpctl, view.foreign) == (13, 13, 0)
    assert [r.kind for r in view.recovery] == ["share-removed"]
    assert log.lines[0][0] == "warning"
    backend(kernel, state_dir).reconcile(0)
    assert kernel.demotion == 0


def test_a_count_above_255_from_the_kernel_cannot_be_lowered_by_ifconfig(
    kernel: FakeKernel, state_dir: Path
) -> None:
    carpctl = backend(kernel, state_dir)
    carpctl.reconcile(20)
    kernel.adjust(400)  # kernel-internal adjustments are not held to 255
    applied = carpctl.reconcile(0)
    assert (applied.steps, applied.applied) == ((), 20)
    assert "within 0..255" in applied.limit
    kernel.adjust(-400)
    assert carpctl.reconcile(0).steps == (-20,)
    assert kernel.demotion == START


def test_the_group_is_configurable(kernel: FakeKernel, state_dir: Path) -> None:
    carpctl = backend(kernel, state_dir, group="egress")
    carpctl.reconcile(5)
    assert kernel.state()["groups"] == {"carp": START, "egress": 5}
    assert ["ifconfig", "-g", "egress", "carpdemote", "5"] in kernel.calls
    with pytest.raises(BackendError, match="not an interface group name"):
        backend(kernel, state_dir, group="carp0")
    with pytest.raises(BackendError, match="not an interface group name"):
        backend(kernel, state_dir, group="-carpdemote")
    with pytest.raises(CommandError, match="SIOCGIFGATTR: No such file or directory"):
        backend(kernel, state_dir / "other", group="nosuch").read()


def test_unexpected_group_output_is_a_parse_error(kernel: FakeKernel, state_dir: Path) -> None:
    inner = kernel.runner()

    def odd(argv: list[str]) -> str:
        return "carp: demoted a lot\n" if argv[1:] == ["-g", "carp"] else inner(argv)

    with pytest.raises(ParseError, match="expected 'carp: carp demote count N'"):
        backend(kernel, state_dir, odd).read()


def test_a_reboot_forgets_the_share(kernel: FakeKernel, state_dir: Path) -> None:
    backend(kernel, state_dir).reconcile(60)
    kernel.reboot(demotion=32)  # pfsync's initial bulk update at boot
    carpctl = backend(kernel, state_dir)
    view = carpctl.read()
    assert (view.total, view.carpctl, [r.kind for r in view.recovery]) == (32, 0, ["reboot"])
    assert json.loads((state_dir / "kernel-demotion.json").read_text())["applied"] == 0
    assert carpctl.reconcile(0).steps == ()
