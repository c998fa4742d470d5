"""The rise/fall logic of one health check (sans-I/O: no clock, no I/O).

A check's probe yields a ``Result``. OK and WARNING count as passes (a
WARNING is a pass that is worth reporting: exit 1 of a command check);
FAILURE and TIMEOUT count as failures. A check starts UNKNOWN, becomes
PASSING after ``rise`` consecutive passes and FAILING after ``fall``
consecutive failures. From UNKNOWN whichever streak completes first wins,
so a fresh node needs ``rise`` passes before a check calls it ready
(readiness gating), and ``fall`` failures before the check demotes it.

``record`` returns a ``Transition`` when the state changed, else None: a
FAILING check that keeps failing, or a PASSING one that flips from OK to
WARNING, is not a transition.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Result(StrEnum):
    """What one run of a probe found."""

    OK = "ok"
    WARNING = "warning"  # passes, but is reported
    FAILURE = "failure"
    TIMEOUT = "timeout"  # counts as a failure

    @property
    def passed(self) -> bool:
        return self in (Result.OK, Result.WARNING)


class State(StrEnum):
    UNKNOWN = "unknown"  # no verdict yet: neither streak has completed
    PASSING = "passing"
    FAILING = "failing"


@dataclass(frozen=True, slots=True)
class Transition:
    """A change of state, with the result that completed the streak."""

    old: State
    new: State
    result: Result
    count: int  # length of the streak that caused it (== rise or fall)
    detail: str = ""  # the probe's detail for that result, for logs and the ledger


class CheckState:
    """Rise/fall bookkeeping of one check."""

    def __init__(self, rise: int, fall: int) -> None:
        if rise < 1 or fall < 1:
            raise ValueError(f"rise and fall must be at least 1, got rise={rise} fall={fall}")
        self.rise, self.fall = rise, fall
        self.state = State.UNKNOWN
        self.last: Result | None = None
        self.passes = 0  # consecutive passes ending with the last result (0 after a failure)
        self.failures = 0  # consecutive failures ending with the last result (0 after a pass)

    @property
    def consecutive(self) -> int:
        """Length of the current streak (of passes or failures, as the last result was)."""
        return max(self.passes, self.failures)

    @property
    def decided(self) -> bool:
        """True once the check has a verdict (PASSING or FAILING)."""
        return self.state is not State.UNKNOWN

    def record(self, result: Result, detail: str = "") -> Transition | None:
        """Account one result; the transition it caused, if any."""
        self.last = result
        if result.passed:
            self.passes, self.failures = self.passes + 1, 0
            if self.state is not State.PASSING and self.passes >= self.rise:
                return self._move(State.PASSING, result, self.passes, detail)
        else:
            self.passes, self.failures = 0, self.failures + 1
            if self.state is not State.FAILING and self.failures >= self.fall:
                return self._move(State.FAILING, result, self.failures, detail)
        return None

    def _move(self, new: State, result: Result, count: int, detail: str) -> Transition:
        transition = Transition(self.state, new, result, count, detail)
        self.state = new
        return transition
