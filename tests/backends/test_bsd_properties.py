"""Any run of reconciles, kill -9s in any window, restarts and foreign changes
ends with the kernel at: its starting value + everyone else's changes +
carpctl's last desired share. Nothing doubled, nothing leaked, nothing of
anyone else's undone.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from fakekernel import FakeKernel
from hypothesis import assume, event, given, settings
from hypothesis import strategies as st

from carpctl.backends import FreeBSDBackend, JournaledDemotion, OpenBSDBackend, Runner

from .bsdcrash import Crash, CrashingRunner, RecordingLog, step_of

SHARE = st.one_of(st.integers(0, 500), st.sampled_from([0, 129, 150, 300]))  # 2 OpenBSD writes
RECONCILE = st.tuples(st.just("reconcile"), SHARE)
CRASH = st.tuples(st.just("crash"), SHARE, st.integers(0, 1), st.sampled_from(["before", "after"]))
FOREIGN = st.tuples(st.just("foreign"), st.integers(-300, 300))
RESTART = st.tuples(st.just("restart"))
OPS = st.lists(st.one_of(RECONCILE, CRASH, CRASH, FOREIGN, RESTART), min_size=2, max_size=12)


class Run:
    """The system under test and what the kernel must hold.

    Invariant: kernel == foreign + carpctl's believed share + excess, where
    excess is what ambiguous recoveries left behind (0 <= excess <= bound).
    OpenBSD's limits keep every count within 0..255.
    """

    def __init__(self, directory: Path, os_name: str, initial: int, limits: Limits) -> None:
        self.os_name = os_name
        self.kernel = FakeKernel.create(directory / "kernel", os_name, demotion=initial)
        self.state_dir = directory / "state"
        self.max_share, (self.low, self.high) = limits[os_name]
        self.foreign = initial  # everything not carpctl's
        self.desired = 0
        self.excess = 0
        self.bound = 0
        self.live: JournaledDemotion | None = None

    def backend(self, runner: Runner | None = None) -> JournaledDemotion:
        runner = runner or self.kernel.runner()
        cls = FreeBSDBackend if self.os_name == "freebsd" else OpenBSDBackend
        return cls(
            self.state_dir, runner=runner, search_path=self.kernel.search_path, log=RecordingLog()
        )

    def reconcile(self, raw: int) -> None:
        self.live = self.live or self.backend()
        self.desired = raw % (self.max_share + 1)
        applied = self.live.reconcile(self.desired)
        assert applied.complete, applied
        self.check()

    def crash(self, raw: int, at: int, window: str) -> int | None:
        """reconcile, killed at its ``at``-th write; the step it died on, if it did."""
        runner = CrashingRunner(self.kernel.runner(), at=at, window=window)
        self.desired = raw % (self.max_share + 1)
        self.live = None  # a process of its own, so it can die
        try:
            self.backend(runner).reconcile(self.desired)
        except Crash:
            assert runner.crashed is not None
            event(f"{self.os_name}: killed {window} write {at}")
            return step_of(runner.crashed)
        self.check()
        return None

    def meddle(self, raw: int) -> int:
        change = max(self.low - self.foreign, min(self.high - self.foreign, raw))
        self.kernel.adjust(change)
        self.foreign += change
        return change

    def recover(self) -> int:
        """Restart; carpctl's believed share, checked against the invariant."""
        view = self.backend().read()
        truth = self.kernel.demotion - self.foreign  # carpctl's share, really
        assert view.total == self.kernel.demotion
        self.excess = truth - view.carpctl
        assert 0 <= self.excess <= self.bound
        return view.carpctl

    def check(self) -> None:
        view = self.backend().read()
        assert (view.total, view.carpctl) == (self.kernel.demotion, self.desired)
        assert view.foreign == self.foreign + self.excess

    def finish(self, final: int) -> None:
        self.live = None  # and a last restart
        self.reconcile(final)
        assert self.kernel.demotion == self.foreign + self.desired + self.excess


Limits = dict[str, tuple[int, tuple[int, int]]]
EXACT: Limits = {"freebsd": (500, (-300, 300)), "openbsd": (150, (0, 105))}
BOUNDED: Limits = {"freebsd": (500, (-300, 300)), "openbsd": (60, (0, 40))}


@settings(max_examples=75, deadline=None)
@given(
    os_name=st.sampled_from(["freebsd", "openbsd"]),
    initial=st.integers(0, 40),
    ops=OPS,
    final=st.integers(0, 500),
)
def test_crashes_restarts_and_foreign_changes_never_double_or_leak(
    os_name: str, initial: int, ops: list[tuple[object, ...]], final: int
) -> None:
    with tempfile.TemporaryDirectory() as directory:
        run = Run(Path(directory), os_name, initial, EXACT)
        for op in ops:
            if op[0] == "reconcile":
                run.reconcile(int(str(op[1])))
            elif op[0] == "crash":
                if run.crash(int(str(op[1])), int(str(op[2])), str(op[3])) is not None:
                    run.recover()  # the restart settles the record: exactly, with bound 0
            elif op[0] == "foreign":
                run.meddle(int(str(op[1])))
            else:
                run.live = None
        run.finish(final)
        assert run.excess == 0


@settings(max_examples=40, deadline=None)
@given(
    os_name=st.sampled_from(["freebsd", "openbsd"]),
    initial=st.integers(0, 40),
    before=st.integers(0, 500),
    crashes=st.lists(st.tuples(CRASH, st.integers(-300, 300)), min_size=1, max_size=4),
    final=st.integers(0, 500),
)
def test_a_foreign_change_while_carpctl_is_down_is_never_undone(
    os_name: str,
    initial: int,
    before: int,
    crashes: list[tuple[tuple[str, int, int, str], int]],
    final: int,
) -> None:
    """Whether the interrupted write happened cannot be known then: what carpctl
    may leave behind is at most that write, and never taken from others' shares."""
    with tempfile.TemporaryDirectory() as directory:
        run = Run(Path(directory), os_name, initial, BOUNDED)
        run.reconcile(before)
        for (_, raw, at, window), foreign in crashes[: 4 if os_name == "freebsd" else 2]:
            step = run.crash(raw, at, window)
            if step is None:
                continue
            change = run.meddle(foreign)  # while carpctl is down
            # A change that exactly mimics the other outcome cannot be told apart at all.
            assume(change != (step if window == "before" else -step))
            run.bound += abs(step) if change else 0
            run.recover()
            event("left something behind" if run.excess else "left nothing behind")
        run.finish(final)
