"""The re-collection state machine: properties over random policies, gaps and timelines."""

from __future__ import annotations

import itertools

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openami.errors import ConfigError
from openami.mdm.vee.gap_policy import Gap, GapAction, GapPolicy, GapState

DAY = 86_400
T0 = 1_785_715_200

policies = st.builds(
    GapPolicy,
    grace_s=st.integers(0, 7_200),
    wait_s=st.integers(0, 2 * DAY),
    retry_s=st.integers(0, 12 * 3600),
    max_asks=st.integers(1, 5),
    buffer_s=st.integers(3 * DAY, 60 * DAY),
)


@st.composite
def gaps(draw: st.DrawFn) -> Gap:
    first = T0 + draw(st.integers(0, 96)) * 1800
    return Gap(7, first, first + draw(st.integers(0, 47)) * 1800)


@st.composite
def states(draw: st.DrawFn, gap: Gap) -> GapState:
    seen = gap.last_end + draw(st.integers(0, 3 * DAY))
    asks = draw(st.integers(0, 6))
    if asks == 0:
        return GapState(seen)
    first = seen + draw(st.integers(0, DAY))
    last = first + draw(st.integers(0, DAY))
    return GapState(seen, asks, first, last)


def test_the_usual_course() -> None:
    policy = GapPolicy(grace_s=900, wait_s=4 * 3600, retry_s=3600, max_asks=3)
    gap = Gap(1, T0, T0 + 3600)
    state = GapState(first_seen_at=T0 + 3600 + 60)
    assert policy.decide(gap, state, T0 + 3600 + 60) is GapAction.WAIT  # push may be late
    action, state = policy.step(gap, state, T0 + 3600 + 900)
    assert action is GapAction.ASK and state.asks == 1
    assert policy.decide(gap, state, T0 + 3600 + 900 + 1800) is GapAction.WAIT
    action, state = policy.step(gap, state, T0 + 3600 + 900 + 3600)
    assert action is GapAction.ASK and state.asks == 2
    assert state.first_asked_at == T0 + 3600 + 900
    assert policy.decide(gap, state, T0 + 3600 + 900 + 4 * 3600) is GapAction.ESTIMATE


def test_a_gap_outside_the_meters_buffer_is_estimated_at_once() -> None:
    policy = GapPolicy(buffer_s=45 * DAY)
    gap = Gap(1, T0, T0)
    assert policy.decide(gap, GapState(T0), T0 + 45 * DAY) is GapAction.ESTIMATE
    assert policy.decide(gap, GapState(T0), T0 + 45 * DAY - 1) is GapAction.ASK


def test_time_going_backwards_is_a_caller_bug() -> None:
    with pytest.raises(ValueError, match="backwards"):
        GapPolicy().decide(Gap(1, T0, T0), GapState(T0 + 10), T0 + 5)


def test_a_policy_that_never_asks_is_refused() -> None:
    with pytest.raises(ConfigError):
        GapPolicy(max_asks=0)
    with pytest.raises(ConfigError):
        GapPolicy(wait_s=-1)


@given(policies, gaps(), st.data())
def test_never_estimated_before_asking_and_waiting(
    policy: GapPolicy, gap: Gap, data: st.DataObject
) -> None:
    state = data.draw(states(gap))
    now = state.first_seen_at + data.draw(st.integers(0, 3 * DAY))
    action = policy.decide(gap, state, now)
    if now - gap.last_end >= policy.buffer_s:
        assert action is GapAction.ESTIMATE  # nothing left to ask the meter for
        return
    if action is GapAction.ESTIMATE:
        assert state.asks >= 1 and state.first_asked_at is not None
        assert now - state.first_asked_at >= policy.wait_s
    if action is GapAction.ASK:
        assert now >= gap.last_end + policy.grace_s
        assert state.asks == 0 or state.asks < policy.max_asks


@settings(max_examples=300)
@given(policies, gaps(), st.lists(st.integers(1, 6 * 3600), min_size=1, max_size=40), st.data())
def test_a_timeline_asks_then_estimates(
    policy: GapPolicy, gap: Gap, steps: list[int], data: st.DataObject
) -> None:
    now = gap.last_end + data.draw(st.integers(0, 3600))
    state = GapState(first_seen_at=now)
    asked_at: list[int] = []
    estimated_at: int | None = None
    for dt in [0, *steps]:
        now += dt
        action, state = policy.step(gap, state, now)
        if estimated_at is not None:
            assert action is GapAction.ESTIMATE  # giving up is final
            continue
        if action is GapAction.ASK:
            asked_at.append(now)
        elif action is GapAction.ESTIMATE:
            estimated_at = now
    in_buffer = (estimated_at or now) - gap.last_end < policy.buffer_s
    assert len(asked_at) <= policy.max_asks
    assert all(b - a >= policy.retry_s for a, b in itertools.pairwise(asked_at))
    assert all(t >= gap.last_end + policy.grace_s for t in asked_at)
    if estimated_at is not None and in_buffer:
        assert asked_at and estimated_at - asked_at[0] >= policy.wait_s
    # and it does come to an end: once the wait is over, the next look estimates
    later = max(now, (asked_at[0] if asked_at else now)) + policy.wait_s
    later = max(later, gap.last_end + policy.grace_s)
    if not asked_at:
        action, state = policy.step(gap, state, later)
        assert action in (GapAction.ASK, GapAction.ESTIMATE)
        later += policy.wait_s
    assert policy.decide(gap, state, later) is GapAction.ESTIMATE


@given(policies, st.lists(st.tuples(gaps(), st.data()), min_size=1, max_size=30), st.data())
def test_the_frame_expression_agrees_with_decide(
    policy: GapPolicy, drawn: list[tuple[Gap, st.DataObject]], data: st.DataObject
) -> None:
    rows = []
    for gap, inner in drawn:
        state = inner.draw(states(gap))
        rows.append((gap, state))
    now = max(s.first_seen_at for _, s in rows) + data.draw(st.integers(0, 3 * DAY))
    frame = pl.DataFrame(
        {
            "last_end": [g.last_end for g, _ in rows],
            "asks": [s.asks for _, s in rows],
            "first_asked_at": [s.first_asked_at for _, s in rows],
            "last_asked_at": [s.last_asked_at for _, s in rows],
        },
        schema={
            "last_end": pl.Int64,
            "asks": pl.Int16,
            "first_asked_at": pl.Int64,
            "last_asked_at": pl.Int64,
        },
    )
    got = frame.select(policy.action_expr(now)).to_series().to_list()
    assert got == [int(policy.decide(g, s, now)) for g, s in rows]
