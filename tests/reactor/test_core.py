"""core.reactor under virtual time: verdicts, order, damping, timers, and a hypothesis model."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carpctl.core.reactor import (
    Action,
    Actual,
    ReactorCore,
    Role,
    ServiceRule,
    Step,
    Why,
    parse_vhid_name,
)

M, B, INIT = Role.MASTER, Role.BACKUP, Role.INIT
V1, V2, W1 = "1@eth0", "2@eth0", "1@eth1"


def core_with(roles: dict[str, Role], *rules: ServiceRule, now: float = 0.0) -> ReactorCore:
    core = ReactorCore(rules or (ServiceRule("svc"),), vhids=roles)
    for vhid, role in roles.items():
        core.role_changed(vhid, role, now)
    return core


def perform(core: ReactorCore, now: float, ok: bool = True) -> list[tuple[Action, str]]:
    """Run the plan to its end like the driver does (one step, then ask again)."""
    done = []
    while (step := core.next_step(now)) is not None:
        core.done(step.service, step.action, ok, now)
        done.append((step.action, step.service))
        assert len(done) < 100
    return done


# -- parse_vhid_name ----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "parsed"),
    [("1@eth0", (1, "eth0")), ("255@lab0", (255, "lab0")), ("12@vlan.10", (12, "vlan.10")),
     ("3@em0:1", (3, "em0:1")), ("7@a_b-c", (7, "a_b-c"))],
)  # fmt: skip
def test_vhid_names(text: str, parsed: tuple[int, str]) -> None:
    assert parse_vhid_name(text) == parsed


@pytest.mark.parametrize(
    "text",
    ["0@eth0", "256@eth0", "01@eth0", "1@", "@eth0", "1", "eth0", "1@eth0;touch x",
     "1@$(touch x)", "1@eth0 MASTER", "1@abcdefghijklmnop", "-1@eth0", "1@eth/0", ""],
)  # fmt: skip
def test_bad_vhid_names(text: str) -> None:
    with pytest.raises(ValueError, match="VHID@INTERFACE"):
        parse_vhid_name(text)


def test_role_changed_refuses_bad_names_and_roles() -> None:
    core = ReactorCore([ServiceRule("svc")])
    with pytest.raises(ValueError, match="VHID@INTERFACE"):
        core.role_changed("1@eth0;touch x", M, 0.0)
    with pytest.raises(ValueError, match="is not a valid Role"):
        core.role_changed(V1, "MASTER; rm -rf /", 0.0)  # type: ignore[arg-type]
    assert core.roles == {}
    with pytest.raises(ValueError, match="unique"):
        ReactorCore([ServiceRule("a"), ServiceRule("a")])


# -- verdicts -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("roles", "vhids", "run", "why"),
    [
        ({V1: M}, (), True, Why.MASTER),
        ({V1: M, V2: B}, (), False, Why.NOT_MASTER),
        ({V1: M, V2: M}, (), True, Why.MASTER),
        ({V1: M, V2: B}, (V1,), True, Why.MASTER),
        ({V1: B, V2: M}, (V1,), False, Why.NOT_MASTER),
        ({V1: M, W1: M}, (V1, W1), True, Why.MASTER),
        ({V1: M, W1: B}, (V1, W1), False, Why.NOT_MASTER),
        ({V1: M, W1: INIT}, (V1, W1), False, Why.NOT_MASTER),
        ({V1: M}, (V1, W1), False, Why.UNREPORTED),  # W1 never heard of: unknown
        ({}, (), False, Why.NO_VHID),
        ({V1: INIT}, (), False, Why.NOT_MASTER),
    ],
)
def test_runs_only_when_master_of_all_its_vhids(
    roles: dict[str, Role], vhids: tuple[str, ...], run: bool, why: Why
) -> None:
    core = core_with(roles, ServiceRule("svc", vhids))
    verdict = core.verdict("svc", 1.0)
    assert (verdict.run, verdict.why) == (run, why)
    idle = why in (Why.NO_VHID, Why.UNREPORTED)
    expected = [Action.START] if run else [] if idle else [Action.STOP]
    assert [a for a, _ in perform(core, 1.0)] == expected


def test_not_master_says_which_vhid() -> None:
    core = core_with({V1: M, W1: B}, ServiceRule("router", (V1, W1)))
    assert core.verdict("router", 0.0).detail == "1@eth1 is BACKUP"


def test_a_vhid_only_named_by_a_service_is_unknown_until_reported() -> None:
    core = ReactorCore([ServiceRule("svc", (V1,))])
    core.observed("svc", Actual.RUNNING)  # a BSD daemon restarted on a master
    verdict = core.verdict("svc", 0.0)
    assert (verdict.run, verdict.why, verdict.detail) == (False, Why.UNREPORTED, V1)
    assert core.plan(0.0) == []  # not stopped before the first poll says what we are
    assert not core.role_changed(V1, INIT, 1.0)  # INIT, now reported: not a change of role
    assert [s.action for s in core.plan(1.0)] == [Action.STOP]
    declared = ReactorCore([ServiceRule("svc", (V1,))], vhids=[V1])  # configured: INIT
    assert declared.verdict("svc", 0.0).why is Why.NOT_MASTER


def test_a_service_on_every_vhid_follows_vhids_learned_later() -> None:
    core = core_with({V1: M})
    assert perform(core, 0.0) == [(Action.START, "svc")]
    core.role_changed(V2, B, 1.0)  # a BSD node hears of another vhid
    assert perform(core, 1.0) == [(Action.STOP, "svc")]
    core.role_changed(V2, M, 2.0)
    assert perform(core, 2.0) == [(Action.START, "svc")]


# -- order ----------------------------------------------------------------------


def test_starts_in_config_order_stops_in_reverse() -> None:
    rules = [ServiceRule(n) for n in ("db", "app", "web")]
    core = core_with({V1: M}, *rules)
    assert perform(core, 0.0) == [(Action.START, n) for n in ("db", "app", "web")]
    core.role_changed(V1, B, 1.0)
    assert perform(core, 1.0) == [(Action.STOP, n) for n in ("web", "app", "db")]


def test_stops_come_before_starts() -> None:
    rules = [ServiceRule("a", (V1,)), ServiceRule("b", (V2,)), ServiceRule("c", (V1,))]
    core = core_with({V1: M, V2: B}, *rules)
    perform(core, 0.0)
    core.role_changed(V1, B, 1.0)
    core.role_changed(V2, M, 1.0)
    assert perform(core, 1.0) == [(Action.STOP, "c"), (Action.STOP, "a"), (Action.START, "b")]


def test_known_actual_states_need_no_step() -> None:
    core = core_with({V1: B})
    core.observed("svc", Actual.STOPPED)
    assert core.plan(0.0) == []
    core.observed("svc", Actual.RUNNING)  # running behind our back on a BACKUP
    assert [s.action for s in core.plan(0.0)] == [Action.STOP]
    core.observed("svc", Actual.UNKNOWN)
    assert [s.action for s in core.plan(0.0)] == [Action.STOP]


# -- the event a step answers ------------------------------------------------------


def test_steps_carry_the_devd_style_event() -> None:
    core = ReactorCore([ServiceRule("router", (V1, W1))])
    core.role_changed(V1, M, 0.0, old=B, at=1000.0)
    core.role_changed(W1, M, 0.5, old=B, at=1000.5)
    (start,) = core.plan(1.0)
    assert start == Step(Action.START, "router", W1, M, B, 2, 1000.5)  # the newest MASTER
    core.done("router", Action.START, True, 1.0)
    core.role_changed(W1, B, 2.0, at=1002.0)
    (stop,) = core.plan(2.0)
    assert (stop.vhid, stop.state, stop.old_state, stop.seq) == (W1, B, M, 3)


def test_a_stop_while_still_master_says_backup() -> None:
    core = core_with({V1: M}, ServiceRule("svc", flap_count=1, hold_down=5))
    (stop,) = core.plan(0.0)  # held down at once, with flap_count 1
    assert (stop.action, stop.vhid, stop.state, stop.old_state) == (Action.STOP, V1, B, M)


# -- damping --------------------------------------------------------------------


def test_min_master_delays_the_start_and_sets_a_timer() -> None:
    core = core_with({}, ServiceRule("svc", (V1,), min_master=3.0))
    core.role_changed(V1, M, 10.0)
    verdict = core.verdict("svc", 10.0)
    assert (verdict.run, verdict.why, verdict.until) == (False, Why.SETTLING, 13.0)
    assert core.get_timer() == 13.0
    assert [a for a, _ in perform(core, 10.0)] == [Action.STOP]  # unknown -> make sure
    core.handle_timer(12.9)
    assert perform(core, 12.9) == []
    core.handle_timer(13.0)
    assert core.get_timer() is None
    assert perform(core, 13.0) == [(Action.START, "svc")]


def test_min_master_restarts_when_mastership_is_lost_meanwhile() -> None:
    core = core_with({}, ServiceRule("svc", (V1,), min_master=3.0))
    core.role_changed(V1, M, 0.0)
    core.role_changed(V1, B, 2.0)
    core.role_changed(V1, M, 2.5)
    assert not core.verdict("svc", 3.0).run
    assert core.verdict("svc", 5.5).run


def test_flapping_holds_down_and_the_hold_ends() -> None:
    core = core_with({}, ServiceRule("svc", (V1,), flap_count=3, flap_window=10, hold_down=30))
    for t, role in ((0.0, M), (1.0, B), (2.0, M)):
        core.role_changed(V1, role, t)
    verdict = core.verdict("svc", 2.0)
    assert (verdict.run, verdict.why, verdict.until) == (False, Why.HOLD_DOWN, 32.0)
    assert core.flaps("svc", 2.0) == 3
    assert core.hold_until("svc", 2.0) == 32.0
    assert core.get_timer() == 32.0
    assert [a for a, _ in perform(core, 2.0)] == [Action.STOP]
    core.handle_timer(32.0)
    assert core.flaps("svc", 32.0) == 0
    assert core.hold_until("svc", 32.0) is None
    assert perform(core, 32.0) == [(Action.START, "svc")]


def test_each_flap_while_counted_extends_the_hold_down() -> None:
    core = core_with({}, ServiceRule("svc", (V1,), flap_count=2, flap_window=10, hold_down=5))
    core.role_changed(V1, M, 0.0)
    core.role_changed(V1, B, 1.0)
    assert core.hold_until("svc", 1.0) == 6.0
    core.role_changed(V1, M, 4.0)
    assert core.hold_until("svc", 4.0) == 9.0
    assert not core.verdict("svc", 8.9).run
    assert core.verdict("svc", 9.0).run


def test_changes_outside_the_window_do_not_count() -> None:
    core = core_with({}, ServiceRule("svc", (V1,), flap_count=3, flap_window=10, hold_down=30))
    for t, role in ((0.0, M), (6.0, B), (12.0, M), (18.0, B), (24.0, M)):
        core.role_changed(V1, role, t)
    assert core.verdict("svc", 24.0).run
    assert core.flaps("svc", 24.0) == 2


def test_a_router_failover_is_one_change_not_two() -> None:
    core = core_with({}, ServiceRule("r", (V1, W1), flap_count=2, flap_window=10, hold_down=30))
    core.role_changed(V1, M, 0.0)
    core.role_changed(W1, M, 0.1)
    assert core.flaps("r", 0.1) == 1
    assert core.verdict("r", 0.1).run


def test_repeating_a_role_is_not_a_change() -> None:
    core = core_with({}, ServiceRule("svc", (V1,), flap_count=2, hold_down=30))
    assert core.role_changed(V1, M, 0.0)
    assert not core.role_changed(V1, M, 1.0)
    assert core.verdict("svc", 1.0).run


# -- failures -------------------------------------------------------------------


def test_a_failed_start_is_stopped_and_retried_after_retry_after() -> None:
    core = core_with({V1: M}, ServiceRule("svc", retry_after=60))
    step = core.next_step(0.0)
    assert step is not None
    assert step.action is Action.START
    core.done("svc", Action.START, False, 1.0)
    verdict = core.verdict("svc", 1.0)
    assert (verdict.why, verdict.until) == (Why.START_FAILED, 61.0)
    assert perform(core, 1.0) == [(Action.STOP, "svc")]
    assert core.get_timer() == 61.0
    assert perform(core, 61.0) == [(Action.START, "svc")]


def test_a_failed_stop_waits_for_retry_stops() -> None:
    core = core_with({V1: B})
    assert perform(core, 0.0, ok=False) == [(Action.STOP, "svc")]
    assert core.stop_failed("svc")
    assert core.plan(1.0) == []
    core.retry_stops()
    assert perform(core, 1.0) == [(Action.STOP, "svc")]
    assert core.actual("svc") is Actual.STOPPED


def test_a_died_process_is_blocked_like_a_failed_start() -> None:
    core = core_with({V1: M}, ServiceRule("svc", retry_after=5))
    perform(core, 0.0)
    core.died("svc", 1.0)
    assert core.actual("svc") is Actual.STOPPED
    assert core.plan(1.0) == []
    assert perform(core, 6.0) == [(Action.START, "svc")]


def test_release_stops_everything_for_good() -> None:
    core = core_with({V1: M}, ServiceRule("a"), ServiceRule("b"))
    perform(core, 0.0)
    core.release()
    assert perform(core, 1.0) == [(Action.STOP, "b"), (Action.STOP, "a")]
    core.role_changed(V1, B, 2.0)
    core.role_changed(V1, M, 3.0)
    assert perform(core, 3.0) == []
    assert core.verdict("a", 3.0).why is Why.RELEASED


# -- a model: whatever the events, the plan ends with the right services running ------

VHIDS = (V1, V2, W1)
rule_strategy = st.builds(
    ServiceRule,
    name=st.just(""),
    vhids=st.lists(st.sampled_from(VHIDS), unique=True, max_size=3).map(tuple),
    min_master=st.sampled_from([0.0, 0.0, 2.0]),
    flap_count=st.sampled_from([0, 0, 2, 3]),
    flap_window=st.just(10.0),
    hold_down=st.sampled_from([5.0, 20.0]),
    retry_after=st.just(7.0),
)
event_strategy = st.one_of(
    st.tuples(st.just("role"), st.sampled_from(VHIDS), st.sampled_from(list(Role))),
    st.tuples(st.just("step"), st.booleans(), st.none()),  # perform one step (ok or failing)
    st.tuples(st.just("wait"), st.floats(0.0, 8.0), st.none()),
    st.tuples(st.just("reconcile"), st.none(), st.none()),
)


def master_of_all(core: ReactorCore, name: str) -> bool:
    vhids = core.vhids_of(name)
    return bool(vhids) and all(core.roles[v] is Role.MASTER for v in vhids)


@settings(max_examples=300, deadline=None)
@given(
    rules=st.lists(rule_strategy, min_size=1, max_size=4),
    events=st.lists(event_strategy, max_size=40),
    declared=st.booleans(),
)
def test_whatever_the_events_services_run_only_when_master_of_all(
    rules: list[ServiceRule], events: list[tuple[str, object, object]], declared: bool
) -> None:
    named = [dataclasses.replace(r, name=f"s{i}") for i, r in enumerate(rules)]
    core = ReactorCore(named, vhids=VHIDS if declared else ())
    now = 0.0
    for kind, a, b in events:
        if kind == "role":
            assert isinstance(a, str)
            assert isinstance(b, Role)
            core.role_changed(a, b, now)
        elif kind == "step" and (step := core.next_step(now)) is not None:
            if step.action is Action.START:  # never issued for a role that is gone
                assert master_of_all(core, step.service)
                assert core.verdict(step.service, now).run
            core.done(step.service, step.action, bool(a), now)
        elif kind == "wait":
            assert isinstance(a, float)
            now += a
            core.handle_timer(now)
        elif kind == "reconcile":
            core.retry_stops()
    perform(core, now)  # the driver runs the plan to its end
    for rule in named:
        if core.actual(rule.name) is Actual.RUNNING:
            assert master_of_all(core, rule.name)
    # Long enough later (every hold-down, retry and min_master over), with steps
    # succeeding, exactly the services MASTER of all their vhids run.
    now += 1000.0
    core.handle_timer(now)
    core.retry_stops()
    perform(core, now)
    for rule in named:
        running = core.actual(rule.name) is Actual.RUNNING
        vhids = core.vhids_of(rule.name)
        if vhids and all(core.role(v).reported for v in vhids):
            assert running == master_of_all(core, rule.name)
            assert core.actual(rule.name) is not Actual.UNKNOWN
        else:  # nothing known of its roles: left alone
            assert core.actual(rule.name) is Actual.UNKNOWN
    timer = core.get_timer()
    assert timer is None or timer > now


# -- reload ----------------------------------------------------------------------


def test_adopt_keeps_an_unchanged_service_whole_and_a_changed_ones_actual_state() -> None:
    flappy = ServiceRule("same", (V1,), flap_count=2, flap_window=10, hold_down=30)
    old = core_with({}, flappy, ServiceRule("changed", (V1,)))
    old.role_changed(V1, M, 0.0)
    old.role_changed(V1, B, 1.0)
    old.role_changed(V1, M, 2.0)
    perform(old, 2.0)
    assert old.hold_until("same", 2.0) == 32.0
    assert old.actual("changed") is Actual.RUNNING
    new = ReactorCore([flappy, ServiceRule("changed", (V1,), min_master=5), ServiceRule("added")])
    new.adopt(old)
    assert new.roles == {V1: M}
    assert new.hold_until("same", 3.0) == 32.0  # damping survives a reload
    assert new.flaps("same", 3.0) == 3
    assert new.actual("changed") is Actual.RUNNING
    assert new.eligible_since("changed") == 2.0  # since the vhid became MASTER: not a flap
    assert new.flaps("changed", 3.0) == 0
    assert new.verdict("changed", 7.0).run
    assert new.actual("added") is Actual.UNKNOWN
    assert new.verdict("added", 3.0).run


def test_adopt_can_forget_vhids_no_longer_configured() -> None:
    old = core_with({V1: M, V2: B})
    new = ReactorCore([ServiceRule("svc")], vhids=[V1])
    new.adopt(old, keep_vhids=False)
    assert new.roles == {V1: M}
    assert new.verdict("svc", 1.0).run  # V2 (BACKUP) no longer counts
    kept = ReactorCore([ServiceRule("svc")])
    kept.adopt(old)
    assert kept.roles == {V1: M, V2: B}
    assert not kept.verdict("svc", 1.0).run


def test_a_start_after_a_failed_stop_is_stopped_when_the_role_goes() -> None:
    """Found by hypothesis: a stop that failed long ago must not block the stop
    of a later start (the service would keep running on a node that is INIT)."""
    rule = ServiceRule(name="s0", vhids=("2@eth0",), retry_after=7.0)
    core = ReactorCore([rule], vhids=VHIDS)
    first = core.next_step(0.0)
    assert first is not None
    core.done(first.service, first.action, False, 0.0)  # the initial stop fails
    core.role_changed("2@eth0", Role.MASTER, 0.0)
    start = core.next_step(0.0)
    assert start is not None
    assert start.action is Action.START
    core.done("s0", Action.START, False, 0.0)  # and the start fails too
    core.role_changed("2@eth0", Role.INIT, 0.0)
    assert perform(core, 0.0) == [(Action.STOP, "s0")]
    assert core.actual("s0") is Actual.STOPPED
