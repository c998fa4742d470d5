"""The demotion ledger: demotion as a sum of named entries (design section 6).

Never a bare running number: each entry says where it came from, since
when, until when and why, so status can show why a node is demoted, and
removing an entry twice is harmless. Operator shares and maintenance are
the entries that persist across restarts. Times are wall-clock seconds
passed in by the caller (they must survive a reboot); nothing here reads a
clock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

MAX_AMOUNT = 1000  # anything above 240 already demotes fully (FreeBSD clamps the skew)
MAINTENANCE_DEMOTION = 240  # the most a skew can be demoted: never master while a peer is up
OPERATOR = "operator"
MAINTENANCE = "maintenance"


class Source(StrEnum):
    IFDOWN = "ifdown"
    SENDERR = "senderr"
    OPERATOR = "operator"
    MAINTENANCE = "maintenance"
    CHECK = "check"
    SERVICE = "service"
    STARTUP = "startup"


PERSISTENT = frozenset({Source.OPERATOR, Source.MAINTENANCE})


class LedgerError(ValueError):
    """An operator request the ledger refuses; nothing changed."""


@dataclass(frozen=True, slots=True)
class Entry:
    name: str  # unique key, e.g. "ifdown:1@lab0", "check:web", "operator", "operator:db"
    source: Source
    amount: int
    since: float
    expires: float | None = None
    reason: str = ""

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "source": str(self.source)}

    @classmethod
    def from_json(cls, raw: Any) -> Entry:
        """Rebuild a persisted entry; ValueError if it is not one."""
        try:
            entry = cls(
                name=str(raw["name"]),
                source=Source(raw["source"]),
                amount=int(raw["amount"]),
                since=float(raw["since"]),
                expires=None if raw.get("expires") is None else float(raw["expires"]),
                reason=str(raw.get("reason", "")),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"not a ledger entry: {raw!r} ({error})") from None
        _check_amount(entry.amount)
        return entry


def _check_amount(amount: int) -> None:
    if not -MAX_AMOUNT <= amount <= MAX_AMOUNT:
        raise LedgerError(f"a demotion must be within -{MAX_AMOUNT}..{MAX_AMOUNT}, got {amount}")


LedgerObserver = Callable[["Entry | None", "Entry | None", int], None]  # before, after, total


class Ledger:
    def __init__(self) -> None:
        self._entries: dict[str, Entry] = {}
        self._serial = 0  # names the operator's expiring entries
        # Told of every entry that appears, changes amount or goes (for logs and
        # the journal): (before, after, new total); None for "absent".
        self.observers: list[LedgerObserver] = []

    def _changed(self, before: Entry | None, after: Entry | None) -> None:
        same = before is not None and after is not None and before.amount == after.amount
        if not same:
            for observer in self.observers:
                observer(before, after, self.total)

    # -- plain entries ------------------------------------------------------

    def set(self, entry: Entry) -> bool:
        """Add or replace ``entry``; True when the total changed."""
        _check_amount(entry.amount)
        before, previous = self.total, self._entries.get(entry.name)
        self._entries[entry.name] = entry
        self._changed(previous, entry)
        return self.total != before

    def remove(self, name: str) -> bool:
        """Drop the named entry if present; True when the total changed."""
        before = self.total
        previous = self._entries.pop(name, None)
        if previous is not None:
            self._changed(previous, None)
        return self.total != before

    def get(self, name: str) -> Entry | None:
        return self._entries.get(name)

    @property
    def total(self) -> int:
        return sum(e.amount for e in self._entries.values())

    def entries(self) -> list[Entry]:
        return sorted(self._entries.values(), key=lambda e: (e.since, e.name))

    # -- time ---------------------------------------------------------------

    def expire(self, now: float) -> list[Entry]:
        """Remove and return the entries whose expiry has passed."""
        gone = [e for e in self._entries.values() if e.expires is not None and e.expires <= now]
        for entry in gone:
            del self._entries[entry.name]
            self._changed(entry, None)
        return gone

    def next_expiry(self) -> float | None:
        return min(
            (e.expires for e in self._entries.values() if e.expires is not None), default=None
        )

    # -- what operators ask for ---------------------------------------------

    def adjust_operator(
        self, delta: int, now: float, *, reason: str = "", duration: float | None = None
    ) -> Entry | None:
        """``carpctl demote +N/-N``: a relative change of the operator's share.

        With ``duration`` the change is an entry of its own that expires.
        The standing share never goes below zero: ``-N`` takes back what
        ``+N`` gave, it does not promote the node over its configuration.
        Returns the entry now in force (None when the share dropped to 0).
        """
        _check_amount(delta)
        if duration is not None:
            if delta <= 0:
                raise LedgerError("a demotion --for a duration must be positive")
            self._serial += 1
            entry = Entry(
                f"{OPERATOR}:{self._serial}-{int(now)}",
                Source.OPERATOR,
                delta,
                now,
                now + _positive(duration),
                reason,
            )
            self.set(entry)
            return entry
        current = self._entries.get(OPERATOR)
        share = (current.amount if current else 0) + delta
        if share < 0:
            raise LedgerError(
                f"the operator share is {current.amount if current else 0}: "
                f"{delta} would make it negative"
            )
        if share == 0:
            self.remove(OPERATOR)
            return None
        entry = Entry(
            OPERATOR,
            Source.OPERATOR,
            share,
            current.since if current else now,
            None,
            reason or (current.reason if current else ""),
        )
        self.set(entry)
        return entry

    def set_operator(
        self, name: str, amount: int, now: float, *, reason: str = "", duration: float | None = None
    ) -> Entry | None:
        """``carpctl demote --set N --as NAME``: idempotent; 0 removes the entry."""
        if not name or not name.replace("-", "").replace("_", "").isalnum():
            raise LedgerError(f"an entry name is letters, digits, '-' and '_', got {name!r}")
        _check_amount(amount)
        if amount < 0:
            raise LedgerError(f"a named share cannot be negative, got {amount}")
        key = f"{OPERATOR}:{name}"
        if amount == 0:
            self.remove(key)
            return None
        current = self._entries.get(key)
        since = current.since if current and current.amount == amount else now
        expires = None if duration is None else now + _positive(duration)
        entry = Entry(key, Source.OPERATOR, amount, since, expires, reason)
        self.set(entry)
        return entry

    def set_maintenance(
        self, on: bool, now: float, *, reason: str = "", duration: float | None = None
    ) -> Entry | None:
        """``carpctl maintenance on|off``: the largest demotion, until turned off."""
        if not on:
            self.remove(MAINTENANCE)
            return None
        expires = None if duration is None else now + _positive(duration)
        current = self._entries.get(MAINTENANCE)
        entry = Entry(
            MAINTENANCE,
            Source.MAINTENANCE,
            MAINTENANCE_DEMOTION,
            current.since if current else now,
            expires,
            reason,
        )
        self.set(entry)
        return entry

    # -- persistence --------------------------------------------------------

    def persistent(self) -> list[Entry]:
        """The entries that must survive a restart (operator shares, maintenance)."""
        return [e for e in self.entries() if e.source in PERSISTENT]

    def restore(self, entries: list[Entry], now: float) -> list[Entry]:
        """Put persisted entries back, dropping those that expired meanwhile."""
        kept = [
            e for e in entries if e.source in PERSISTENT and (e.expires is None or e.expires > now)
        ]
        for entry in kept:
            self._entries[entry.name] = entry
            self._changed(None, entry)
        self._serial = max(self._serial, len(self._entries))
        return kept


def _positive(duration: float) -> float:
    if not duration > 0:
        raise LedgerError(f"a duration must be positive, got {duration}")
    return duration


class SendErrorTracker:
    """FreeBSD's rule: demote after 3 consecutive send errors, undo after 3 successes."""

    THRESHOLD = 3

    def __init__(self) -> None:
        self.demoted = False
        self._streak = 0  # consecutive results opposite to the current verdict

    def record(self, ok: bool) -> bool:
        """Record one send; True when ``demoted`` flipped."""
        if ok != self.demoted:  # the result agrees with the current verdict
            self._streak = 0
            return False
        self._streak += 1
        if self._streak < self.THRESHOLD:
            return False
        self.demoted, self._streak = not self.demoted, 0
        return True
