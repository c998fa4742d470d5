"""What a restarted carpctl concludes from the record an earlier run left.

Pure decisions, no I/O: the kernel's values come in as arguments.
"""

from __future__ import annotations

from dataclasses import dataclass

from carpctl.backends.journal import Record

BOOT_SLACK = 1  # seconds a boot time moves by rounding alone


@dataclass(frozen=True, slots=True)
class Recovery:
    """A conclusion drawn about what an earlier run left behind."""

    kind: str  # written | not-written | ambiguous | reboot | share-removed
    message: str
    applied_before: int
    applied_after: int


def same_boot(record: Record, boot: str) -> bool:
    """Is the kernel that booted at ``boot`` the one the record was made with?

    The BSDs move ``kern.boottime`` when the clock is stepped (NTP), so an
    exact match would mistake a step for a reboot. A new boot happened after
    the record was saved, so its boot time is later than the old one by at
    least the uptime then: a move of less than half that uptime is a clock
    step of the same boot. (Mistaking a step for a reboot re-applies
    carpctl's share, which then shows as not carpctl's; mistaking a reboot
    for a step would take away a share the kernel no longer holds.)
    """
    if not (record.boot.isdigit() and boot.isdigit()):
        return record.boot == boot
    return abs(int(boot) - int(record.boot)) <= max(BOOT_SLACK, record.uptime // 2)


def uptime(boot: str, now: float) -> int:
    return max(0, int(now) - int(boot)) if boot.isdigit() else 0


def resolve(record: Record, now: int, target: str) -> tuple[Record, Recovery]:
    """Settle a pending write from the kernel's value ``now``.

    ``now`` equal to the value before the write plus its step: it happened;
    equal to the value before: it did not. Otherwise someone else changed the
    value meanwhile and nobody can tell; carpctl takes the smaller of the two
    possible shares, so that what it later removes is surely its own. At most
    the step stays behind, shown as not carpctl's.
    """
    pending = record.pending
    assert pending is not None
    step, before, applied = pending.step, pending.kernel_before, record.applied
    interrupted = f"an earlier run was stopped while adding {step:+d} to {target} ({before})"
    if now == before + step:
        kind, after, message = "written", applied + step, f"{interrupted}: it took effect"
    elif now == before:
        kind, after, message = "not-written", applied, f"{interrupted}: it did not"
    else:
        kind, after = "ambiguous", min(applied, applied + step)
        message = (
            f"{interrupted}, and {target} is now {now}: someone else changed it meanwhile, so "
            f"whether carpctl's change took effect cannot be known. carpctl assumes the smaller "
            f"share ({after}); up to {abs(step)} may remain, shown as not carpctl's"
        )
    return record.settle(after), Recovery(kind, message, applied, after)


def floor(record: Record, total: int, low: int, target: str) -> tuple[Record, Recovery] | None:
    """A kernel that keeps its count at ``low`` or above cannot hold less than
    carpctl's share plus ``low``: the difference was removed by someone else."""
    if total - record.applied >= low:
        return None
    kept = max(0, total - low)
    message = (
        f"the kernel's {target} is {total}, below carpctl's share ({record.applied}): "
        f"someone removed part of it; carpctl's share is now {kept}"
    )
    return record.settle(kept), Recovery("share-removed", message, record.applied, kept)
