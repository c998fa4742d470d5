"""carpctl's share of the kernel's demotion, applied so that crashes never leak it.

The kernels keep one relative counter (FreeBSD ``net.inet.carp.demotion``,
OpenBSD a group's ``carp demote count``) shared with others: the kernel
itself (a parent interface down, send errors), pfsync, and operators who
write to it directly. carpctl owns only its share, the total of its ledger,
and keeps what it has applied in a write-ahead record (``journal.py``):

1. save ``{applied: A, pending: {step: S, kernel_before: K}}``;
2. add S to the kernel;
3. save ``{applied: A + S, pending: null}``.

A run that finds a pending record (the previous one was killed between 1
and 3) reads the kernel's value N and decides:

* N == K + S: the write happened, carpctl's share is A + S;
* N == K: it did not, the share is A;
* anything else: someone else changed the value meanwhile, and whether the
  write happened cannot be known. carpctl takes the *smaller* of the two
  shares, min(A, A + S), and says so. Believing a share smaller than the
  truth can leave at most |S| behind, shown as not carpctl's; believing a
  larger one would later take away someone else's demotion, which carpctl
  never does.

A record from an earlier boot is dropped (the kernel forgot every share).
Counters the kernel keeps within bounds (OpenBSD: 0..255, at most 128 per
write) are written in steps, each with its own write-ahead record; what does
not fit is left out and reported.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import structlog

from carpctl.backends.command import CommandError
from carpctl.backends.journal import Journal, Record, StateError

BOOT_SLACK = 1  # seconds a boot time may move (a stepped clock) and still be the same boot


class Counter(Protocol):
    """One kernel demotion counter and how to change it."""

    backend: str  # "freebsd", "openbsd": recorded, so a record is never used on another
    target: str  # what is written: "net.inet.carp.demotion", "group carp"
    low: int | None  # the kernel refuses writes that leave low..high
    high: int | None
    max_step: int | None  # the most one write may change

    def read(self) -> int: ...

    def add(self, step: int) -> None: ...

    def boot(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Recovery:
    """A conclusion drawn about what an earlier run left behind."""

    kind: str  # written | not-written | ambiguous | reboot | share-removed
    message: str
    applied_before: int
    applied_after: int


@dataclass(frozen=True, slots=True)
class KernelView:
    total: int  # the kernel's value
    carpctl: int  # carpctl's applied share of it
    recovery: tuple[Recovery, ...] = ()

    @property
    def foreign(self) -> int:
        """Not carpctl's: the kernel's own, pfsync's, operators' direct writes."""
        return self.total - self.carpctl


@dataclass(frozen=True, slots=True)
class Applied:
    desired: int  # carpctl's share as asked
    applied: int  # carpctl's share now in the kernel
    total: int  # the kernel's value afterwards
    steps: tuple[int, ...] = ()  # the writes this call made, in order
    limit: str = ""  # why applied is not desired (the kernel's range)
    recovery: tuple[Recovery, ...] = field(default=())

    @property
    def complete(self) -> bool:
        return self.applied == self.desired

    @property
    def shortfall(self) -> int:
        return self.desired - self.applied

    @property
    def foreign(self) -> int:
        return self.total - self.applied


class KernelDemotion(Protocol):
    def reconcile(self, desired: int) -> Applied: ...

    def read(self) -> KernelView: ...


def same_boot(recorded: str, current: str) -> bool:
    if recorded.isdigit() and current.isdigit():
        return abs(int(recorded) - int(current)) <= BOOT_SLACK
    return recorded == current


class JournaledDemotion:
    """``KernelDemotion`` over any ``Counter``, crash-safe through the journal."""

    def __init__(self, counter: Counter, state_dir: Path | str, *, log: Any = None) -> None:
        self.counter = counter
        self.journal = Journal(state_dir)
        self._boot: str | None = None  # read once: a reboot ends this process anyway
        self._log = log if log is not None else structlog.get_logger().bind(backend=counter.backend)

    def read(self) -> KernelView:
        with self.journal.locked():
            record, notes, total = self._settle()
        return KernelView(total, record.applied, tuple(notes))

    def reconcile(self, desired: int) -> Applied:
        """Make carpctl's share ``desired`` (the ledger's total), touching nothing else."""
        if desired < 0:
            raise ValueError(f"carpctl's demotion share is never negative, got {desired}")
        with self.journal.locked():
            record, notes, total = self._settle()
            steps: list[int] = []
            limit = ""
            while record.applied != desired:
                step, limit = self._next_step(total, record.applied, desired)
                if step == 0:
                    break
                self.journal.save(record.begin(step, total))
                try:
                    self.counter.add(step)
                except CommandError as error:
                    if error.completed:  # refused: nothing was written
                        self.journal.save(record)
                    raise  # otherwise the pending record stays for the next call to settle
                record = record.settle(record.applied + step)
                self.journal.save(record)
                steps.append(step)
                total = self.counter.read()
        result = Applied(desired, record.applied, total, tuple(steps), limit, tuple(notes))
        if steps:
            self._log.info(
                "kernel demotion changed",
                target=self.counter.target,
                steps=steps,
                carpctl=result.applied,
                total=total,
            )
        if limit:
            self._log.warning(
                "kernel demotion share not fully applied",
                desired=desired,
                carpctl=result.applied,
                reason=limit,
            )
        return result

    # -- internals ------------------------------------------------------------

    def _settle(self) -> tuple[Record, list[Recovery], int]:
        """The record with an earlier run's leftovers resolved, and the kernel's value."""
        counter = self.counter
        if self._boot is None:
            self._boot = counter.boot()
        notes: list[Recovery] = []
        fresh = Record(counter.backend, counter.target, self._boot)
        record = self.journal.load()
        if record is not None and (record.backend, record.target) != (
            counter.backend,
            counter.target,
        ):
            raise StateError(
                f"{self.journal.path} records {record.applied} applied to {record.backend} "
                f"{record.target}, but carpctl now writes {counter.backend} {counter.target}. "
                f"Remove carpctl's share there by hand, then remove the file"
            )
        total = counter.read()
        if record is not None and not same_boot(record.boot, self._boot):
            notes.append(
                self._note(
                    record,
                    fresh,
                    "reboot",
                    f"the kernel booted since the record of carpctl's share ({record.applied}) "
                    "was made: the share went with it",
                ),
            )
            record = fresh
        elif record is not None and record.pending is not None:
            resolved, kind, message = self._resolve(record, total)
            notes.append(self._note(record, resolved, kind, message))
            record = resolved
        record = record or fresh
        if counter.low is not None and total - record.applied < counter.low:
            kept = max(0, total - counter.low)
            message = (
                f"the kernel's {counter.target} is {total}, below carpctl's share "
                f"({record.applied}): someone removed part of it; carpctl's share is now {kept}"
            )
            notes.append(self._note(record, record.settle(kept), "share-removed", message))
            record = record.settle(kept)
        if notes:
            self.journal.save(record)
        return record, notes, total

    def _resolve(self, record: Record, now: int) -> tuple[Record, str, str]:
        pending = record.pending
        assert pending is not None
        step, before = pending.step, pending.kernel_before
        target = self.counter.target
        interrupted = f"an earlier run was stopped while adding {step:+d} to {target} ({before})"
        if now == before + step:
            return record.settle(record.applied + step), "written", f"{interrupted}: it took effect"
        if now == before:
            return record.settle(record.applied), "not-written", f"{interrupted}: it did not"
        smaller = min(record.applied, record.applied + step)
        message = (
            f"{interrupted}, and {target} is now {now}: someone else changed it meanwhile, so "
            f"whether carpctl's change took effect cannot be known. carpctl assumes the smaller "
            f"share ({smaller}); up to {abs(step)} may remain, shown as not carpctl's"
        )
        return record.settle(smaller), "ambiguous", message

    def _note(self, before: Record, after: Record, kind: str, message: str) -> Recovery:
        quiet = kind in {"written", "not-written"}
        log: Callable[..., Any] = self._log.info if quiet else self._log.warning
        log(message, recovery=kind, carpctl_before=before.applied, carpctl_after=after.applied)
        return Recovery(kind, message, before.applied, after.applied)

    def _next_step(self, total: int, applied: int, desired: int) -> tuple[int, str]:
        """The next write towards ``desired`` that the kernel accepts, or 0 and why not."""
        counter = self.counter
        remaining = desired - applied
        step = remaining
        if counter.max_step is not None:
            step = max(-counter.max_step, min(counter.max_step, step))
        if counter.high is not None and step > 0:
            step = min(step, counter.high - total)
        if counter.low is not None and step < 0:
            step = max(step, counter.low - total)
        if counter.high is not None and step < 0 and total + step > counter.high:
            step = 0  # the kernel refuses any write that ends above its range
        if step * remaining <= 0:
            return 0, (
                f"the kernel keeps {counter.target} within {counter.low}..{counter.high}: "
                f"it is {total}, and carpctl's share can only be {applied} of {desired}"
            )
        return step, ""
