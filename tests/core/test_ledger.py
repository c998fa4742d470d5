from __future__ import annotations

import pytest

from carpctl.core.ledger import (
    MAINTENANCE_DEMOTION,
    Entry,
    Ledger,
    LedgerError,
    SendErrorTracker,
    Source,
)


def test_ledger_total_is_the_sum_of_named_entries() -> None:
    ledger = Ledger()
    assert ledger.set(Entry("ifdown:1@lab0", Source.IFDOWN, 240, since=1.0))
    assert ledger.set(Entry("operator", Source.OPERATOR, 50, since=2.0))
    assert ledger.total == 290
    assert not ledger.set(Entry("operator", Source.OPERATOR, 50, since=3.0))  # same amount
    assert ledger.remove("ifdown:1@lab0")
    assert not ledger.remove("ifdown:1@lab0")  # twice is harmless
    assert ledger.total == 50
    assert [e.name for e in ledger.entries()] == ["operator"]


def test_operator_share_is_relative_and_never_negative() -> None:
    ledger = Ledger()
    ledger.adjust_operator(50, 10.0, reason="patching")
    ledger.adjust_operator(25, 11.0)
    operator = ledger.get("operator")
    assert operator is not None
    assert (operator.amount, operator.since, operator.reason) == (75, 10.0, "patching")
    with pytest.raises(LedgerError, match="negative"):
        ledger.adjust_operator(-100, 12.0)
    assert ledger.total == 75  # the refused request changed nothing
    assert ledger.adjust_operator(-75, 13.0) is None
    assert ledger.entries() == []


def test_demote_for_a_duration_is_its_own_expiring_entry() -> None:
    ledger = Ledger()
    ledger.adjust_operator(50, 100.0)
    timed = ledger.adjust_operator(30, 100.0, duration=60)
    assert timed is not None
    assert timed.expires == 160.0
    assert (ledger.total, ledger.next_expiry()) == (80, 160.0)
    assert ledger.expire(159.9) == []
    assert ledger.expire(160.0) == [timed]
    assert ledger.total == 50


def test_set_as_name_is_idempotent() -> None:
    ledger = Ledger()
    first = ledger.set_operator("db", 40, 1.0, reason="replica lag")
    again = ledger.set_operator("db", 40, 5.0, reason="replica lag")
    assert first == again  # same amount: same since
    assert ledger.total == 40
    ledger.set_operator("db", 0, 6.0)
    assert ledger.total == 0
    with pytest.raises(LedgerError):
        ledger.set_operator("bad name!", 10, 7.0)


def test_maintenance_is_the_largest_demotion() -> None:
    ledger = Ledger()
    ledger.set_maintenance(True, 1.0, reason="kernel upgrade")
    assert ledger.total == MAINTENANCE_DEMOTION
    ledger.set_maintenance(False, 2.0)
    assert ledger.total == 0


@pytest.mark.parametrize("amount", [1001, -1001, 99999999999])
def test_absurd_amounts_are_refused(amount: int) -> None:
    ledger = Ledger()
    with pytest.raises(LedgerError):
        ledger.adjust_operator(amount, 1.0)
    assert ledger.total == 0


def test_only_operator_and_maintenance_entries_persist_and_expired_ones_are_dropped() -> None:
    ledger = Ledger()
    ledger.adjust_operator(50, 1.0)
    ledger.adjust_operator(10, 1.0, duration=100)
    ledger.set_maintenance(True, 2.0)
    ledger.set(Entry("check:web", Source.CHECK, 20, since=3.0))
    saved = [Entry.from_json(e.to_json()) for e in ledger.persistent()]
    assert {e.source for e in saved} == {Source.OPERATOR, Source.MAINTENANCE}
    fresh = Ledger()
    kept = fresh.restore(saved, now=200.0)  # the 100 s entry expired while we were down
    assert {e.name for e in kept} == {"operator", "maintenance"}
    assert fresh.total == 50 + MAINTENANCE_DEMOTION


@pytest.mark.parametrize(
    "raw", [{}, {"name": "x"}, {"name": "x", "source": "nope", "amount": 1, "since": 0}, "text"]
)
def test_a_corrupt_persisted_entry_is_a_value_error(raw: object) -> None:
    with pytest.raises(ValueError, match="not a ledger entry"):
        Entry.from_json(raw)


def test_send_errors_demote_after_three_in_a_row_and_recover_after_three_successes() -> None:
    tracker = SendErrorTracker()
    flips = [tracker.record(ok) for ok in [False, False, True, False, False, False]]
    assert flips == [False, False, False, False, False, True]
    assert tracker.demoted
    flips = [tracker.record(ok) for ok in [True, True, False, True, True, True]]
    assert flips == [False, False, False, False, False, True]
    assert not tracker.demoted


def test_observers_hear_every_entry_that_appears_changes_or_goes() -> None:
    ledger = Ledger()
    heard: list[tuple[str | None, int | None, int]] = []
    ledger.observers.append(
        lambda before, after, total: heard.append(
            ((after or before).name if (after or before) else None, after and after.amount, total)
        )
    )
    ledger.adjust_operator(50, 1.0)
    ledger.adjust_operator(10, 2.0)
    ledger.set_operator("db", 5, 3.0)
    ledger.set_operator("db", 5, 4.0)  # same amount: nothing to tell
    ledger.adjust_operator(20, 5.0, duration=1)
    ledger.expire(10.0)
    ledger.remove("operator")
    assert heard == [
        ("operator", 50, 50),
        ("operator", 60, 60),
        ("operator:db", 5, 65),
        (heard[3][0], 20, 85),
        (heard[3][0], None, 65),
        ("operator", None, 5),
    ]
