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

A record from an earlier boot is dropped (the kernel forgot every share;
``recovery.same_boot`` tells a reboot from a stepped clock). Counters the
kernel keeps within bounds (OpenBSD: 0..255, at most 128 per write) are
written in steps, each with its own write-ahead record; what does not fit is
left out and reported. The decisions themselves are in ``recovery.py``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import structlog

from carpctl.backends import recovery
from carpctl.backends.command import CommandError
from carpctl.backends.journal import Journal, Record, StateError
from carpctl.backends.recovery import Recovery


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


class JournaledDemotion:
    """``KernelDemotion`` over any ``Counter``, crash-safe through the journal."""

    def __init__(
        self,
        counter: Counter,
        state_dir: Path | str,
        *,
        log: Any = None,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.counter = counter
        self.journal = Journal(state_dir)
        self._wall = wall
        self._boot: str | None = None  # read once: a reboot ends this process anyway
        self._log = log if log is not None else structlog.get_logger().bind(backend=counter.backend)
        self._limit = ""  # the last shortfall logged, so a standing one is logged once

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
                self._save(record.begin(step, total))
                try:
                    self.counter.add(step)
                except CommandError as error:
                    if error.completed:  # refused: nothing was written
                        self._save(record)
                    raise  # otherwise the pending record stays for the next call to settle
                record = record.settle(record.applied + step)
                self._save(record)
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
        if limit and limit != self._limit:
            self._log.warning(
                "kernel demotion share not fully applied",
                desired=desired,
                carpctl=result.applied,
                reason=limit,
            )
        self._limit = limit
        return result

    # -- internals ------------------------------------------------------------

    def _settle(self) -> tuple[Record, list[Recovery], int]:
        """The record with an earlier run's leftovers resolved, and the kernel's value."""
        counter = self.counter
        if self._boot is None:
            self._boot = counter.boot()
        fresh = Record(counter.backend, counter.target, self._boot)
        loaded = record = self.journal.load()
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
        notes: list[Recovery] = []
        if record is not None and not recovery.same_boot(record, self._boot):
            if record.applied or record.pending:
                message = (
                    f"the kernel's boot time moved from {record.boot} to {self._boot}: it "
                    f"rebooted since carpctl's share ({record.applied}) was applied, and the "
                    "share went with it"
                )
                notes.append(Recovery("reboot", message, record.applied, 0))
            record = None
        elif record is not None and record.pending is not None:
            record, note = recovery.resolve(record, total, counter.target)
            notes.append(note)
        record = replace(record or fresh, boot=self._boot)  # follows a stepped clock
        if counter.low is not None and (
            floored := recovery.floor(record, total, counter.low, counter.target)
        ):
            record, note = floored
            notes.append(note)
        for note in notes:
            quiet = note.kind in {"written", "not-written"}
            log: Callable[..., Any] = self._log.info if quiet else self._log.warning
            log(
                note.message,
                recovery=note.kind,
                carpctl_before=note.applied_before,
                carpctl_after=note.applied_after,
            )
        if notes or (loaded is not None and loaded != record):
            self._save(record)
        return record, notes, total

    def _save(self, record: Record) -> None:
        self.journal.save(replace(record, uptime=recovery.uptime(record.boot, self._wall())))

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
