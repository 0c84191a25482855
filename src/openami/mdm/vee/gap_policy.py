"""Re-collection before estimation: when to ask the head-end for a gap again, and when to
give up and estimate.

An interval that did not arrive by push is usually still in the meter's load profile buffer
(45 days here), so a commercial MDMS first asks for it again (individual collection) and
estimates only when that failed: an estimate is a guess, a re-collected read is the meter's
own value. The policy is a pure state machine (DESIGN principle 1: time is passed in, no
clock, no I/O): given a gap, what has been done about it and the time now, it answers
``ASK`` (send an individual-collection request now), ``WAIT`` or ``ESTIMATE``.

The order of the tests is the policy:

1. a gap whose newest interval has left the meter's buffer cannot be collected: estimate;
2. within ``grace_s`` of the gap's last interval end the push may still be on its way: wait;
3. never asked: ask;
4. ``wait_s`` after the first request: estimate (the wait is counted from the first request,
   not from when the gap was seen, so an MDMS that was down for a day still asks first);
5. asked fewer than ``max_asks`` times and ``retry_s`` since the last request: ask again;
6. otherwise wait.

``decide`` is the scalar rule (tested property by property); ``action_expr`` is the same rule
as one Polars expression for a frame of gaps, tested to agree with ``decide``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import IntEnum

import polars as pl

from openami.errors import ConfigError

__all__ = ["Gap", "GapAction", "GapPolicy", "GapState"]


class GapAction(IntEnum):
    WAIT = 0
    ASK = 1
    ESTIMATE = 2


@dataclass(frozen=True)
class Gap:
    """A run of consecutive missing intervals of one meter (interval ends, Unix seconds)."""

    meter_id: int
    first_end: int
    last_end: int


@dataclass(frozen=True)
class GapState:
    """What has happened to a gap so far (Unix seconds)."""

    first_seen_at: int
    asks: int = 0
    first_asked_at: int | None = None
    last_asked_at: int | None = None

    def asked(self, now: int) -> GapState:
        """The state after a request was sent at ``now``."""
        first = now if self.first_asked_at is None else self.first_asked_at
        return replace(self, asks=self.asks + 1, first_asked_at=first, last_asked_at=now)


@dataclass(frozen=True)
class GapPolicy:
    grace_s: int = 900
    wait_s: int = 4 * 3600
    retry_s: int = 3600
    max_asks: int = 3
    buffer_s: int = 45 * 86_400

    def __post_init__(self) -> None:
        if self.max_asks < 1:
            raise ConfigError("recollection.max_asks: at least one request before estimating")
        if min(self.grace_s, self.wait_s, self.retry_s, self.buffer_s) < 0:
            raise ConfigError("recollection: times must not be negative")

    def decide(self, gap: Gap, state: GapState, now: int) -> GapAction:
        if now < state.first_seen_at:
            raise ValueError(f"time went backwards: now {now} < first seen {state.first_seen_at}")
        if now - gap.last_end >= self.buffer_s:
            return GapAction.ESTIMATE
        if now < gap.last_end + self.grace_s:
            return GapAction.WAIT
        if state.asks == 0 or state.first_asked_at is None or state.last_asked_at is None:
            return GapAction.ASK
        if now - state.first_asked_at >= self.wait_s:
            return GapAction.ESTIMATE
        if state.asks < self.max_asks and now - state.last_asked_at >= self.retry_s:
            return GapAction.ASK
        return GapAction.WAIT

    def step(self, gap: Gap, state: GapState, now: int) -> tuple[GapAction, GapState]:
        """Decide, and record the request if the answer is to ask."""
        action = self.decide(gap, state, now)
        return action, state.asked(now) if action is GapAction.ASK else state

    def action_expr(self, now: int) -> pl.Expr:
        """``decide`` over a frame with columns ``last_end``, ``asks``, ``first_asked_at``
        and ``last_asked_at`` (nulls where never asked): the ``GapAction`` value per row."""
        last_end = pl.col("last_end")
        never = (
            (pl.col("asks") == 0)
            | pl.col("first_asked_at").is_null()
            | pl.col("last_asked_at").is_null()
        )
        return (
            pl.when(pl.lit(now) - last_end >= self.buffer_s)
            .then(pl.lit(int(GapAction.ESTIMATE)))
            .when(pl.lit(now) < last_end + self.grace_s)
            .then(pl.lit(int(GapAction.WAIT)))
            .when(never)
            .then(pl.lit(int(GapAction.ASK)))
            .when(pl.lit(now) - pl.col("first_asked_at") >= self.wait_s)
            .then(pl.lit(int(GapAction.ESTIMATE)))
            .when(
                (pl.col("asks") < self.max_asks)
                & (pl.lit(now) - pl.col("last_asked_at") >= self.retry_s)
            )
            .then(pl.lit(int(GapAction.ASK)))
            .otherwise(pl.lit(int(GapAction.WAIT)))
            .cast(pl.Int8)
        )
