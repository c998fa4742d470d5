"""The restart decisions on their own: pure functions of the record and the kernel."""

from __future__ import annotations

import pytest

from carpctl.backends.journal import Pending, Record
from carpctl.backends.recovery import floor, resolve, same_boot, uptime


def pending(applied: int, step: int, before: int) -> Record:
    return Record("freebsd", "net.inet.carp.demotion", "1000", applied, Pending(step, before))


@pytest.mark.parametrize(
    "case",  # applied, step, kernel before the step, kernel now -> kind, share
    [
        (50, 30, 57, 87, "written", 80),
        (50, 30, 57, 57, "not-written", 50),
        (50, 30, 57, 327, "ambiguous", 50),  # +240 by pfsync meanwhile: keep the smaller
        (50, 30, 57, 297, "ambiguous", 50),
        (80, -50, 87, 37, "written", 30),
        (80, -50, 87, 87, "not-written", 80),
        (80, -50, 87, 277, "ambiguous", 30),
        (80, -50, 87, 327, "ambiguous", 30),
    ],
)
def test_resolve(case: tuple[int, int, int, int, str, int]) -> None:
    applied, step, before, now, kind, after = case
    record, recovery = resolve(pending(applied, step, before), now, "net.inet.carp.demotion")
    assert (recovery.kind, record.applied, record.pending) == (kind, after, None)
    assert (recovery.applied_before, recovery.applied_after) == (applied, after)
    if kind == "ambiguous":
        assert f"up to {abs(step)} may remain" in recovery.message


def test_floor() -> None:
    record = Record("openbsd", "group carp", "1000", applied=40)
    assert floor(record, 43, 0, "group carp") is None
    assert floor(record, 40, 0, "group carp") is None
    floored = floor(record, 13, 0, "group carp")
    assert floored is not None
    assert (floored[0].applied, floored[1].kind) == (13, "share-removed")


@pytest.mark.parametrize(
    ("recorded_uptime", "now", "same"),
    [
        (0, "1000", True),
        (0, "1001", True),  # rounding
        (0, "1002", False),
        (600, "1300", True),  # a clock step within half the uptime at the save
        (600, "700", True),
        (600, "1301", False),  # booted after the record: at least the uptime later
        (600, "1600", False),
        (600, "unknown", False),
    ],
)
def test_same_boot(recorded_uptime: int, now: str, same: bool) -> None:
    record = Record("freebsd", "x", "1000", uptime=recorded_uptime)
    assert same_boot(record, now) is same


def test_uptime() -> None:
    assert uptime("1000", 1600.9) == 600
    assert uptime("1000", 900.0) == 0
    assert uptime("opaque", 1600.0) == 0
