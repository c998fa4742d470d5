"""Elections in an in-memory network of engines under virtual time."""

from __future__ import annotations

import itertools
import time

import pytest

from carpctl.core.effects import Reason, State
from carpctl.core.errors import DropReason
from carpctl.core.timing import Timing

from .sim import Network, vhid

LATENCY = 0.001


def three_nodes(preempt: bool = False) -> Network:
    net = Network(latency=LATENCY)
    net.add_host("a", 1, vhid(advskew=0, preempt=preempt))
    net.add_host("b", 2, vhid(advskew=100, preempt=preempt))
    net.add_host("c", 3, vhid(advskew=200, preempt=preempt))
    return net


def test_the_most_preferred_node_wins_at_exactly_the_master_down_time() -> None:
    net = three_nodes()
    for name in "abc":
        net.start(name)
    net.run_until(60)
    assert net.masters() == ["a"]
    [change_to_backup, change_to_master] = net.changes_of("a")
    assert change_to_backup.reason == Reason.INIT_COMPLETE
    assert change_to_master.at == pytest.approx(3.0)  # 3 * advbase + 0/256
    assert change_to_master.reason == Reason.MASTER_TIMED_OUT
    assert [c.new for c in net.changes_of("b")] == [State.BACKUP]
    assert net.hosts["a"].holds == {1}
    assert net.hosts["b"].holds == set()
    assert net.rejected == []


def test_master_sends_at_its_advertisement_interval() -> None:
    net = Network()
    net.add_host("a", 1, vhid(advbase=2, advskew=100))
    net.start("a")
    net.run_until(30)
    times = [at for at, _ in net.hosts["a"].sent]
    gaps = {round(b - a, 9) for a, b in itertools.pairwise(times)}
    assert gaps == {2 + 100 / 256}
    assert times[0] == pytest.approx(3 * 2 + 100 / 256)


@pytest.mark.parametrize(
    ("advskew", "timing", "expected"),
    [
        (0, Timing.FREEBSD, 3.0),
        (100, Timing.FREEBSD, 3 + 100 / 256),
        (240, Timing.FREEBSD, 3 + 240 / 256),
        (100, Timing.OPENBSD, 3 * (1 + 100 / 256)),
    ],
)
def test_backup_takes_over_after_the_master_goes_silent_at_the_formula_time(
    advskew: int, timing: Timing, expected: float
) -> None:
    net = Network(latency=LATENCY)
    net.add_host("a", 1, vhid(advskew=0))
    net.add_host("b", 2, vhid(advskew=advskew, timing=timing))
    net.start("a")
    net.run_until(2.5)
    net.start("b")  # joins as BACKUP while a is master
    net.run_until(10.2)
    assert net.masters() == ["a"]
    last_heard = max(at for at, _ in net.hosts["a"].sent) + LATENCY
    net.crash("a")
    net.run_until(30)
    assert net.masters() == ["b"]
    takeover = net.changes_of("b")[-1]
    assert takeover.reason == Reason.MASTER_TIMED_OUT
    assert takeover.at == pytest.approx(last_heard + expected, abs=1e-9)


def test_preempt_off_a_returning_better_node_stays_backup() -> None:
    net = three_nodes(preempt=False)
    net.start("b")
    net.run_until(10)
    assert net.masters() == ["b"]
    net.start("a")
    net.run_until(60)
    assert net.masters() == ["b"]
    assert net.state("a") is State.BACKUP


def test_preempt_on_a_returning_better_node_takes_over_at_the_first_advertisement() -> None:
    net = three_nodes(preempt=True)
    net.start("b")
    net.run_until(10)
    net.start("a")
    net.run_until(60)
    assert net.masters() == ["a"]
    preempting = net.changes_of("a")[-1]
    assert preempting.reason == Reason.PREEMPT
    assert preempting.at < 10 + 1 + 100 / 256 + 2 * LATENCY  # b's next advertisement
    b_yield = net.changes_of("b")[-1]
    assert (b_yield.new, b_yield.reason) == (State.BACKUP, Reason.MORE_FREQUENT)
    assert net.hosts["b"].holds == set()
    assert net.hosts["a"].holds == {1}


def test_bow_out_gives_an_immediate_takeover() -> None:
    net = three_nodes()
    for name in "abc":
        net.start(name)
    net.run_until(20)
    net.stop("a")
    stopped_at = net.now
    net.run_until(20.5)
    assert net.masters() == ["b"]
    takeover = net.changes_of("b")[-1]
    assert takeover.reason == Reason.BOW_OUT
    assert takeover.at == pytest.approx(stopped_at + LATENCY)
    bow_out = net.hosts["a"].sent[-1][1].header
    assert (bow_out.advbase, bow_out.advskew) == (255, 255)
    assert net.hosts["a"].holds == set()
    net.run_until(60)
    assert net.masters() == ["b"]  # c heard b, not a timeout


def test_demotion_moves_mastership_when_the_backup_preempts() -> None:
    net = Network(latency=LATENCY)
    net.add_host("a", 1, vhid(advskew=0, preempt=True))
    net.add_host("b", 2, vhid(advskew=100, preempt=True))
    net.start("a")
    net.start("b")
    net.run_until(10)
    assert net.masters() == ["a"]
    net.demote("a", 1, 150)  # effective skew 150 > b's 100
    demoted_at = net.now
    net.run_until(10.5)
    assert net.masters() == ["b"]
    assert net.changes_of("b")[-1].at == pytest.approx(demoted_at + LATENCY)
    assert net.changes_of("b")[-1].reason == Reason.PREEMPT
    net.demote("a", 1, 0)
    net.run_until(20)
    assert net.masters() == ["a"]


def test_demotion_without_preempt_keeps_the_master_as_on_freebsd() -> None:
    net = Network(latency=LATENCY)
    net.add_host("a", 1, vhid(advskew=0))
    net.add_host("b", 2, vhid(advskew=100))
    net.start("a")
    net.start("b")
    net.run_until(10)
    net.demote("a", 1, 200)
    net.run_until(60)
    assert net.masters() == ["a"]
    assert net.hosts["a"].sent[-1][1].header.advskew == 200


def test_demotion_is_clamped_to_240_on_the_wire() -> None:
    net = Network()
    net.add_host("a", 1, vhid(advskew=100))
    net.start("a")
    net.run_until(5)
    net.demote("a", 1, 1000)
    net.run_until(10)
    assert net.hosts["a"].sent[-1][1].header.advskew == 240
    net.demote("a", 1, -1000)
    net.run_until(15)
    assert net.hosts["a"].sent[-1][1].header.advskew == 0


def test_equal_priorities_started_together_settle_on_one_master() -> None:
    net = Network(latency=LATENCY)
    net.add_host("a", 1, vhid(advskew=50))
    net.add_host("b", 2, vhid(advskew=50))
    net.start("a")
    net.start("b")
    net.run_until(120)
    assert net.masters() == ["a"]  # the lower address keeps it
    assert len(net.changes_of("a")) == 2  # INIT->BACKUP->MASTER, no flapping
    assert net.changes_of("b")[-1].reason == Reason.MORE_FREQUENT


@pytest.mark.parametrize("skews", [(0, 100), (50, 50)])
def test_a_healed_partition_ends_with_exactly_one_master(skews: tuple[int, int]) -> None:
    net = Network(latency=LATENCY)
    net.add_host("a", 1, vhid(advskew=skews[0]))
    net.add_host("b", 2, vhid(advskew=skews[1]))
    net.start("a")
    net.start("b")
    net.run_until(10)
    net.partition(["a"], ["b"])
    net.run_until(30)
    assert net.masters() == ["a", "b"]  # split brain while partitioned
    net.heal()
    net.run_until(35)
    assert net.masters() == ["a"]
    assert net.hosts["b"].holds == set()
    net.run_until(120)
    assert net.masters() == ["a"]


def test_split_brain_is_reported_by_the_master_that_stays() -> None:
    net = Network(latency=LATENCY)
    net.add_host("a", 1, vhid(advskew=0))
    net.add_host("b", 2, vhid(advskew=100))
    net.start("a")
    net.start("b")
    net.partition(["a"], ["b"])
    net.run_until(10)
    net.heal()
    net.run_until(15)
    assert net.hosts["a"].split_brain >= 1
    assert net.hosts["b"].split_brain == 0


def test_two_vhids_on_one_host_fail_over_independently() -> None:
    net = Network(latency=LATENCY)
    net.add_host("a", 1, vhid(1, advskew=0), vhid(2, advskew=100, addresses=("198.51.100.102",)))
    net.add_host("b", 2, vhid(1, advskew=100), vhid(2, advskew=0, addresses=("198.51.100.102",)))
    net.start("a")
    net.start("b")
    net.run_until(10)
    assert (net.masters(1), net.masters(2)) == (["a"], ["b"])
    net.demote("a", 1, 240)
    net.run_until(20)
    assert (net.masters(1), net.masters(2)) == (["a"], ["b"])  # no preempt: nothing moves
    net.stop("b")
    net.run_until(21)
    assert (net.masters(1), net.masters(2)) == (["a"], ["a"])


def test_dual_stack_vhid_advertises_on_both_families_with_separate_timers() -> None:
    addresses = ("198.51.100.100", "2001:db8::100")
    net = Network(latency=LATENCY)
    net.add_host("a", 1, vhid(advskew=0, addresses=addresses))
    net.add_host("b", 2, vhid(advskew=100, addresses=addresses))
    net.start("a")
    net.start("b")
    net.run_until(10)
    assert net.masters() == ["a"]
    families = [ad.family for _, ad in net.hosts["a"].sent]
    assert families.count(4) == families.count(6) > 5
    assert net.rejected == []


def test_only_one_family_heard_lets_the_other_familys_timer_fire() -> None:
    net = Network(latency=LATENCY)
    dual = ("198.51.100.100", "2001:db8::100")
    net.add_host("a", 1, vhid(advskew=0, addresses=dual))
    net.add_host("b", 2, vhid(advskew=100, addresses=dual))
    net.start("a")
    net.start("b")
    net.run_until(10)
    # From now on b hears only IPv4: a's IPv6 advertisements are lost.
    original = net._broadcast

    def ipv4_only(sender, ad):  # type: ignore[no-untyped-def]
        if ad.family == 4:
            original(sender, ad)

    net._broadcast = ipv4_only  # type: ignore[method-assign]
    net.run_until(14)
    assert "b" in net.masters()
    assert net.changes_of("b")[-1].reason == Reason.MASTER_TIMED_OUT


def test_advbase_zero_subsecond_timers() -> None:
    net = Network(latency=LATENCY)
    net.add_host("a", 1, vhid(advbase=0, advskew=10))
    net.add_host("b", 2, vhid(advbase=0, advskew=50))
    net.start("a")
    net.start("b")
    net.run_until(5)
    assert net.masters() == ["a"]
    assert net.changes_of("a")[-1].at == pytest.approx(3 * 10 / 256)
    times = [at for at, _ in net.hosts["a"].sent]
    assert times[1] - times[0] == pytest.approx(10 / 256)
    net.crash("a")
    crash = net.now
    net.run_until(6)
    assert net.masters() == ["b"]
    assert net.changes_of("b")[-1].at - crash < 3 * 50 / 256 + 10 / 256


def test_wrong_password_is_rejected_and_both_become_master() -> None:
    net = Network(latency=LATENCY)
    net.add_host("a", 1, vhid(advskew=0, password="one"))
    net.add_host("b", 2, vhid(advskew=100, password="two"))
    net.start("a")
    net.start("b")
    net.run_until(20)
    assert net.masters() == ["a", "b"]
    assert net.hosts["b"].receiver.drops[DropReason.BADAUTH] > 10
    assert net.hosts["b"].receiver.accepted == 0


def test_counter_follows_the_freebsd_scheme() -> None:
    net = Network(latency=LATENCY)
    net.add_host("a", 1, vhid(advskew=0))
    net.start("a")
    net.run_until(8)
    alone = [ad.header.counter for _, ad in net.hosts["a"].sent]
    assert len(set(alone)) == len(alone)
    assert any(b != a + 1 for a, b in itertools.pairwise(alone))  # random each
    net.add_host("b", 2, vhid(advskew=100, preempt=True))
    net.start("b")
    net.run_until(20)
    assert net.hosts["b"].sent == []  # b never became master
    assert net.hosts["b"].machines[1].master_seen is not None
    net.stop("a")
    bow_out = net.hosts["a"].sent[-1][1].header
    assert bow_out.is_bow_out
    net.run_until(24)
    b_counters = [ad.header.counter for _, ad in net.hosts["b"].sent]
    # b adopted the last counter it accepted and counts on from it.
    first = (bow_out.counter + 1) % (1 << 64)
    assert b_counters == [(first + i) % (1 << 64) for i in range(len(b_counters))]


def test_minutes_of_simulated_time_run_without_real_time() -> None:
    """Ten crash/return cycles: b covers every crash, a preempts back each time.

    The wall-clock cost is printed, not asserted (machines are noisy); it is
    a few tens of milliseconds here.
    """
    net = three_nodes(preempt=True)
    for name in "abc":
        net.start(name)
    started = time.perf_counter()
    for minute in range(1, 11):
        net.run_until(minute * 60 - 30)
        assert net.masters() == ["a"]
        net.crash("a")
        net.run_until(minute * 60)
        assert net.masters() == ["b"]
        net.restart("a")
    net.run_until(11 * 60)
    elapsed = time.perf_counter() - started
    assert net.masters() == ["a"]
    takeovers = [c for c in net.changes_of("b") if c.new is State.MASTER]
    assert len(takeovers) == 10
    assert all(c.reason == Reason.MASTER_TIMED_OUT for c in takeovers)
    print(f"11 simulated minutes in {elapsed:.3f} s")
