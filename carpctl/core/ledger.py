"""The demotion ledger: demotion as a sum of named entries (design section 6).

Never a bare running number: each entry says where it came from, so status
can show why a node is demoted, and removing an entry twice is harmless.
Time is passed in; nothing here reads a clock.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Entry:
    name: str  # unique key, e.g. "ifdown:1@lab0", "senderr:1@lab0", "operator"
    source: str  # ifdown | senderr | operator | maintenance | check | service
    amount: int
    since: float
    reason: str = ""


class Ledger:
    def __init__(self) -> None:
        self._entries: dict[str, Entry] = {}

    def set(self, entry: Entry) -> bool:
        """Add or replace ``entry``; True when the total changed."""
        before = self.total
        self._entries[entry.name] = entry
        return self.total != before

    def remove(self, name: str) -> bool:
        """Drop the named entry if present; True when the total changed."""
        before = self.total
        self._entries.pop(name, None)
        return self.total != before

    @property
    def total(self) -> int:
        return sum(e.amount for e in self._entries.values())

    def entries(self) -> list[Entry]:
        return sorted(self._entries.values(), key=lambda e: (e.since, e.name))


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
