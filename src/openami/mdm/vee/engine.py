"""One VEE pass over a partition: validate, decide about gaps, estimate, and version.

``validate_partition`` is the pure core: a filled ``GridBuilder`` (one day of a set of
meters), the meters' attributes and history, the gap book and the time in; validated reads,
collection requests, the new gap book and the day's statistics out. No I/O: the same
function runs in-process or on a Dask worker, on a lake partition or on generated data.

The gap book has one row per missing slot (``GAP_SCHEMA``), not per gap: gaps change shape
as reads trickle in (a six-interval gap becomes two gaps of one when re-collection brings
four back), while a slot's history (first seen, asked how often, when) does not. A gap's
state is folded from its slots, conservatively: it counts as asked only if every slot was,
and its wait runs from the latest first request among them.

``new_versions`` turns a pass's reads into rows to append to the validated store: a read
gets a new version only when its value or flags changed. An actual read that arrives after
its estimate is a change (actual wins; the estimate stays as the previous version). Two
things do not: a manual edit is never overwritten by a later VEE pass (a person decided),
and an estimate is not re-estimated while the read is still missing (estimates would
otherwise drift from run to run as history moves, each drift a new version).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

import polars as pl

from openami.bus.contract import CollectRequest
from openami.mdm.gaps import MAX_ENTRIES_PER_REQUEST
from openami.mdm.vee.config import VeeConfig
from openami.mdm.vee.estimate import estimate
from openami.mdm.vee.flags import FLAG_DTYPE
from openami.mdm.vee.gap_policy import GapAction
from openami.mdm.vee.grid import GridBuilder, broadcast
from openami.mdm.vee.history import daily_stats
from openami.mdm.vee.rules import ATTRIBUTE_COLUMNS, EXPORT, IMPORT, evaluate
from openami.store.validated import KEY, Origin

__all__ = ["GAP_SCHEMA", "PartitionResult", "new_versions", "validate_partition"]

M = "meter_id"
GAP_SCHEMA = {
    "meter_id": pl.Int64(),
    "interval_end": pl.Int64(),
    "first_seen_at": pl.Int64(),
    "asks": pl.Int16(),
    "first_asked_at": pl.Int64(),
    "last_asked_at": pl.Int64(),
}
ProfileLoader = Callable[[pl.Series], pl.DataFrame | None]


@dataclass(frozen=True)
class PartitionResult:
    # meter_id, channel, interval_end (Unix s), value_wh, flags, origin; sorted by channel,
    # then meter and interval end
    reads: pl.DataFrame
    requests: list[CollectRequest]
    gaps: pl.DataFrame  # the gap book of these meters after this pass (GAP_SCHEMA)
    stats: pl.DataFrame  # the day's statistics per meter (history.STATS_SCHEMA)
    counts: dict[str, int] = field(default_factory=dict)


def _gap_decisions(
    grid: pl.DataFrame, book: pl.DataFrame | None, config: VeeConfig, now: int, step_s: int
) -> tuple[pl.DataFrame, list[CollectRequest], dict[str, int]]:
    """Per missing slot: the action for its gap, and the slot's updated state."""
    missing = grid.lazy().filter(pl.col("imp").is_null() | pl.col("exp").is_null())
    missing = missing.select(M, "interval_end")
    if book is not None and book.height:
        missing = missing.join(
            book.lazy().select(list(GAP_SCHEMA)), on=[M, "interval_end"], how="left"
        )
    else:
        missing = missing.with_columns(
            first_seen_at=pl.lit(None, pl.Int64),
            asks=pl.lit(None, pl.Int16),
            first_asked_at=pl.lit(None, pl.Int64),
            last_asked_at=pl.lit(None, pl.Int64),
        )
    slots = (
        missing.with_columns(
            first_seen_at=pl.col("first_seen_at").fill_null(now),
            asks=pl.col("asks").fill_null(0),
        )
        .sort(M, "interval_end")
        .with_columns(
            _gap=(
                (pl.col(M) != pl.col(M).shift(1))
                | (pl.col("interval_end") != pl.col("interval_end").shift(1) + step_s)
            )
            .fill_null(True)
            .cum_sum()
        )
        .collect()
    )
    asked_all = pl.col("first_asked_at").null_count() == 0
    gaps = (
        slots.group_by("_gap", maintain_order=True)
        .agg(
            pl.col(M).first(),
            first_end=pl.col("interval_end").min(),
            last_end=pl.col("interval_end").max(),
            asks=pl.col("asks").min(),
            first_asked_at=pl.when(asked_all).then(pl.col("first_asked_at").max()),
            last_asked_at=pl.when(asked_all).then(pl.col("last_asked_at").max()),
        )
        .with_columns(action=config.policy.action_expr(now))
    )
    asking = gaps.filter(pl.col("action") == int(GapAction.ASK))
    requests: list[CollectRequest] = []
    # one random prefix per pass and a counter: unique ids without a uuid4 per request
    # (a day's close asks some hundred thousand of them)
    prefix = uuid.uuid4().hex[:16]
    span = MAX_ENTRIES_PER_REQUEST * step_s
    for meter, first, last in asking.select(M, "first_end", "last_end").iter_rows():
        for lo in range(first, last + 1, span):
            hi = min(lo + span - step_s, last)
            requests.append(CollectRequest(meter, lo, hi, f"{prefix}-{len(requests)}"))
    slots = slots.join(gaps.select("_gap", "action"), on="_gap", how="left")
    ask = pl.col("action") == int(GapAction.ASK)
    slots = slots.with_columns(
        asks=pl.when(ask).then(pl.col("asks") + 1).otherwise(pl.col("asks")).cast(pl.Int16),
        first_asked_at=pl.when(ask)
        .then(pl.coalesce("first_asked_at", pl.lit(now)))
        .otherwise(pl.col("first_asked_at")),
        last_asked_at=pl.when(ask).then(pl.lit(now)).otherwise(pl.col("last_asked_at")),
    )
    counts = {f"gaps/{a.name.lower()}": int((gaps["action"] == int(a)).sum()) for a in GapAction}
    return slots, requests, counts


def validate_partition(
    builder: GridBuilder,
    attributes: pl.DataFrame,
    config: VeeConfig,
    now: int,
    *,
    history: pl.DataFrame | None = None,
    profile: pl.DataFrame | ProfileLoader | None = None,
    gaps: pl.DataFrame | None = None,
) -> PartitionResult:
    """VEE for the reads in ``builder`` (which it consumes: its arrays are freed).

    ``attributes``: per meter ``has_pv``, ``occupied``, ``contract_amps`` (any may be
    missing or null: the rules needing them then pass the meter). ``history``: per meter
    ``hist_median``, ``hist_mad``, ``hist_peak`` (``history.trailing_stats``). ``profile``:
    the reference profile (``history.reference_profile``), or a function that loads it for
    the meters given (called only for meters with something to estimate). ``gaps``: the
    gap book from the previous pass. ``now``: Unix seconds."""
    info = builder.info
    per_meter = attributes
    if history is not None and history.height:
        per_meter = per_meter.join(history, on=M, how="full", coalesce=True)
    grid = broadcast(builder.frame(release=True), per_meter, ATTRIBUTE_COLUMNS, info.slots)
    grid, counts = evaluate(grid, info, config)
    slots, requests, gap_counts = _gap_decisions(grid, gaps, config, now, info.step_s)
    counts = {**counts, **gap_counts}
    give_up = slots.filter(pl.col("action") == int(GapAction.ESTIMATE)).select(
        M, "interval_end", _estimate_missing=pl.lit(True)
    )
    if give_up.height:
        grid = grid.join(give_up, on=[M, "interval_end"], how="left", maintain_order="left")
    else:
        grid = grid.with_columns(_estimate_missing=pl.lit(False))
    for ch in (IMPORT, EXPORT):
        v = pl.col(ch.value)
        grid = grid.with_columns(
            (
                (v.is_not_null() & pl.col(f"replace_{ch.value}"))
                | (v.is_null() & pl.col("_estimate_missing").fill_null(False))
            ).alias(f"target_{ch.value}")
        )
    if isinstance(profile, pl.DataFrame) or profile is None:
        reference = profile
    else:
        wanted = grid.filter(pl.col("target_imp") | pl.col("target_exp"))[M].unique()
        reference = profile(wanted) if wanted.len() else None
    grid = estimate(grid, info, config.estimation, reference)
    columns = []
    for ch in (IMPORT, EXPORT):
        est, raw = pl.col(f"est_{ch.value}"), pl.col(ch.value)
        flags = pl.col(f"flags_{ch.value}") | pl.col(f"estflags_{ch.value}")
        origin = (
            pl.when(est.is_not_null())
            .then(pl.lit(int(Origin.ESTIMATED)))
            .when(raw.is_not_null())
            .then(pl.lit(int(Origin.MEASURED)))
            .otherwise(pl.lit(int(Origin.MISSING)))
            .cast(pl.Int8)
        )
        columns.append(
            grid.select(
                M,
                pl.lit(ch.channel, dtype=pl.Int8).alias("channel"),
                "interval_end",
                pl.coalesce(est, raw).alias("value_wh"),
                flags.cast(FLAG_DTYPE).alias("flags"),
                origin.alias("origin"),
            )
        )
        counts[f"estimated/{'import' if ch is IMPORT else 'export'}"] = int(
            grid[f"est_{ch.value}"].is_not_null().sum()
        )
    reads = pl.concat(columns)  # by channel, then meter and interval end
    day = date.fromordinal(date(1970, 1, 1).toordinal() + info.day0 // 86_400)
    stats = daily_stats(grid, day, info.slots)  # of the measured values that passed
    book = slots.select([pl.col(c).cast(t) for c, t in GAP_SCHEMA.items()])
    counts["reads"] = builder.placed
    counts["unknown_meter"] = builder.unknown_meter
    counts["outside_day"] = builder.outside
    return PartitionResult(reads, requests, book, stats, counts)


def new_versions(reads: pl.DataFrame, current: pl.DataFrame | None) -> pl.DataFrame:
    """The rows of ``reads`` to store, each with its version: 1 for a read never stored,
    the current version + 1 for a read whose value or flags changed. Manual edits stay, and
    a stored estimate stays while the read is still missing (``engine`` docstring)."""
    if current is None or current.height == 0:
        return reads.with_columns(version=pl.lit(1, dtype=pl.Int16))
    cur = current.select(
        *KEY,
        pl.col("value_wh").alias("_value"),
        pl.col("flags").alias("_flags"),
        pl.col("version").alias("_version"),
        pl.col("origin").alias("_origin"),
    )
    both = reads.join(cur, on=KEY, how="left", maintain_order="left")
    edited = pl.col("_origin") == int(Origin.EDITED)
    estimate_kept = (pl.col("_origin") == int(Origin.ESTIMATED)) & (
        pl.col("origin") != int(Origin.MEASURED)
    )
    same = (pl.col("value_wh").eq_missing(pl.col("_value"))) & (pl.col("flags") == pl.col("_flags"))
    keep = pl.col("_version").is_not_null() & (edited | estimate_kept | same)
    return (
        both.filter(~keep)
        .with_columns(version=(pl.col("_version").fill_null(0) + 1).cast(pl.Int16))
        .drop("_value", "_flags", "_version", "_origin")
    )
