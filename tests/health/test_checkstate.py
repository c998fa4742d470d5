"""Rise/fall of one check: exhaustively for short histories, by property for long ones."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carpctl.core.checkstate import CheckState, Result, State, Transition

OK, WARN, FAIL, TIMEOUT = Result.OK, Result.WARNING, Result.FAILURE, Result.TIMEOUT


def model(history: list[Result], rise: int, fall: int) -> list[State]:
    """The state after each result, stated declaratively.

    After result i the state is the kind of the latest streak that had
    reached its threshold (rise for passes, fall for failures) at some
    j <= i; UNKNOWN if none has.
    """
    states = []
    for i in range(len(history)):
        state = State.UNKNOWN
        for j in range(i + 1):
            kind = history[j].passed
            run = 0
            while run <= j and history[j - run].passed == kind:
                run += 1
            if run >= (rise if kind else fall):
                state = State.PASSING if kind else State.FAILING
        states.append(state)
    return states


def replay(history: list[Result], rise: int, fall: int) -> tuple[CheckState, list[State], list]:
    check = CheckState(rise, fall)
    states, transitions = [], []
    for result in history:
        transition = check.record(result)
        transitions.append(transition)
        states.append(check.state)
    return check, states, transitions


@pytest.mark.parametrize(("rise", "fall"), [(1, 1), (1, 3), (2, 2), (3, 1), (3, 2)])
def test_every_short_history_matches_the_model(rise: int, fall: int) -> None:
    # every history of the four results up to length 5, and of OK/FAILURE up to 10
    histories = itertools.chain(
        *(itertools.product(list(Result), repeat=n) for n in range(6)),
        *(itertools.product((OK, FAIL), repeat=n) for n in range(6, 11)),
    )
    for history in histories:
        _, states, transitions = replay(list(history), rise, fall)
        assert states == model(list(history), rise, fall), history
        previous = State.UNKNOWN
        for state, transition in zip(states, transitions, strict=True):
            # a transition is reported exactly when the state changed
            assert (transition is not None) == (state is not previous)
            previous = state


@given(
    st.lists(st.sampled_from(list(Result)), max_size=60),
    st.integers(1, 6),
    st.integers(1, 6),
)
def test_long_histories_match_the_model_and_transitions_are_well_formed(
    history: list[Result], rise: int, fall: int
) -> None:
    check, states, transitions = replay(history, rise, fall)
    assert states == model(history, rise, fall)
    previous = State.UNKNOWN
    for result, transition in zip(history, transitions, strict=True):
        if transition is None:
            continue
        assert transition.old is previous
        assert transition.new is not previous
        assert transition.result is result
        # the streak that moves a check is exactly as long as its threshold
        expected = rise if result.passed else fall
        assert transition.count == expected
        assert transition.new is (State.PASSING if result.passed else State.FAILING)
        previous = transition.new
    if history:
        assert check.last is history[-1]
        assert check.consecutive >= 1
        assert (check.passes > 0) == history[-1].passed


def test_readiness_gating_a_fresh_check_needs_rise_passes() -> None:
    check = CheckState(rise=3, fall=2)
    assert check.record(OK) is None
    assert check.record(WARN) is None  # a warning is a pass
    assert check.state is State.UNKNOWN
    assert not check.decided
    assert check.record(OK) == Transition(State.UNKNOWN, State.PASSING, OK, 3)
    assert check.decided


def test_from_unknown_the_first_completed_streak_wins() -> None:
    check = CheckState(rise=3, fall=2)
    check.record(OK)
    check.record(OK)
    assert check.record(FAIL) is None  # the pass streak is broken, not completed
    transition = check.record(TIMEOUT, "no answer within 1 s")
    assert transition == Transition(
        State.UNKNOWN, State.FAILING, TIMEOUT, 2, "no answer within 1 s"
    )


def test_flapping_below_the_thresholds_changes_nothing() -> None:
    check = CheckState(rise=2, fall=2)
    check.record(OK)
    check.record(OK)
    assert check.state is State.PASSING
    for result in [FAIL, OK, TIMEOUT, WARN, FAIL, OK] * 5:
        assert check.record(result) is None
    assert check.state is State.PASSING
    assert check.record(FAIL) is None
    assert check.record(FAIL) is not None
    assert check.state is State.FAILING
    assert check.record(FAIL) is None  # still failing: no new transition
    assert check.consecutive == 3


def test_warning_and_ok_alternating_is_one_passing_streak() -> None:
    check = CheckState(rise=1, fall=1)
    assert check.record(WARN) == Transition(State.UNKNOWN, State.PASSING, WARN, 1)
    assert check.record(OK) is None
    assert check.record(WARN) is None
    assert check.consecutive == 3


@pytest.mark.parametrize(("rise", "fall"), [(0, 1), (1, 0), (-1, 2)])
def test_rise_and_fall_must_be_positive(rise: int, fall: int) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        CheckState(rise, fall)


def test_result_and_state_values_are_the_wire_names() -> None:
    assert [r.value for r in Result] == ["ok", "warning", "failure", "timeout"]
    assert [r.passed for r in Result] == [True, True, False, False]
    assert [s.value for s in State] == ["unknown", "passing", "failing"]
