from __future__ import annotations

from carpctl.core.ledger import Entry, Ledger, SendErrorTracker


def test_ledger_total_is_the_sum_of_named_entries() -> None:
    ledger = Ledger()
    assert ledger.set(Entry("ifdown:1@lab0", "ifdown", 240, since=1.0))
    assert ledger.set(Entry("operator", "operator", 50, since=2.0))
    assert ledger.total == 290
    assert not ledger.set(Entry("operator", "operator", 50, since=3.0))  # same amount
    assert ledger.remove("ifdown:1@lab0")
    assert not ledger.remove("ifdown:1@lab0")  # twice is harmless
    assert ledger.total == 50
    assert [e.name for e in ledger.entries()] == ["operator"]


def test_send_errors_demote_after_three_in_a_row_and_recover_after_three_successes() -> None:
    tracker = SendErrorTracker()
    flips = [tracker.record(ok) for ok in [False, False, True, False, False, False]]
    assert flips == [False, False, False, False, False, True]
    assert tracker.demoted
    flips = [tracker.record(ok) for ok in [True, True, False, True, True, True]]
    assert flips == [False, False, False, False, False, True]
    assert not tracker.demoted
