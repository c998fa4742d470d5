"""CARP's timing and priority arithmetic (protocol reference section 4.2).

Priority is the pair (advbase, advskew), compared lexicographically; smaller
advertises more often and is preferred. All functions are pure.
"""

from __future__ import annotations

from enum import StrEnum

MAX_SKEW = 240  # FreeBSD's CARP_MAXSKEW: the largest skew ever advertised
SKEW_UNIT = 1 / 256  # one advskew step, in seconds
BOW_OUT = (255, 255)  # (advbase, advskew) of the leave advertisement

Priority = tuple[int, int]


class Timing(StrEnum):
    """Whose master-down formula a backup uses."""

    FREEBSD = "freebsd"  # 3 * advbase + advskew / 256 (also ucarp)
    OPENBSD = "openbsd"  # 3 * (advbase + advskew / 256)


def effective_skew(advskew: int, demotion: int) -> int:
    """FreeBSD's DEMOTE_ADVSKEW: configured skew plus demotion, clamped to 0..240."""
    return min(MAX_SKEW, max(0, advskew + demotion))


def advertisement_interval(advbase: int, skew: int) -> float:
    """Seconds between a master's advertisements: advbase + skew / 256.

    OpenBSD allows advbase 0; with skew 0 too it uses one skew step.
    """
    return advbase + skew * SKEW_UNIT or SKEW_UNIT


def master_down_interval(advbase: int, advskew: int, timing: Timing) -> float:
    """Seconds a backup waits without hearing the master.

    FreeBSD/ucarp: 3 * advbase + advskew / 256 (demotion ignored). OpenBSD:
    3 * (advbase + advskew / 256), at least 3/256 s. advbase 0 is OpenBSD's
    sub-second form, so it always uses OpenBSD's formula: FreeBSD's would be
    shorter than one advertisement interval.
    """
    if timing is Timing.OPENBSD or advbase == 0:
        return max(3 * (advbase + advskew * SKEW_UNIT), 3 * SKEW_UNIT)
    return 3 * advbase + advskew * SKEW_UNIT
