"""Estimation: values for the intervals VEE decided to replace, gap by gap, all at once.

A gap is a run of consecutive target slots of one meter (missing after re-collection gave
up, or failed a rule configured to ``estimate``). Per gap, in the order a commercial MDMS
applies them (the AEIC guideline's preference for the meter's own data first):

1. **linear interpolation** for gaps of at most ``max_linear_intervals``: the straight line
   between the interval before and the interval after the gap (one side only: that value
   carried across). Short gaps are inside one stretch of behaviour, where a line is as good
   as anything and needs no history.
2. **reference-day profile** for longer gaps: the meter's mean shape at the same slots on
   the same weekday of recent weeks (``history.reference_profile``), scaled by how this day
   compares with that shape on its own intervals that were read (the ratio of the sums,
   clipped to ``scale_min..scale_max``, unscaled when fewer than ``min_known_intervals``
   were read). A line across an evening peak would miss it; the profile has it.
3. **prorating to the register**: when the cumulative register is known at both ends of the
   gap (at the slot before it, or the opening register at 00:00, and at its last slot, or
   at the slot after it less that slot's interval), the gap's energy is known exactly. The
   estimates are then only weights: they are scaled to the register's change and rounded by
   largest remainder, so they are whole Wh that sum to it exactly (a bill computed from
   intervals then agrees with one from registers). A spike whose register is intact is
   thus replaced by exactly the true value.

Without a usable neighbour or profile, a gap with a known register change is shared out
evenly; with nothing at all it stays missing (flagged, never invented).

Everything is window expressions over the gap's run-length id, evaluated only on the meters
that have something to estimate.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa

from openami.mdm.vee.config import EstimationConfig
from openami.mdm.vee.flags import FLAG_DTYPE, Quality
from openami.mdm.vee.grid import GridInfo
from openami.mdm.vee.rules import EXPORT, IMPORT, Ch, in_meter

__all__ = ["estimate"]

M = "meter_id"
LINEAR, PROFILE, EVEN = 1, 2, 3


def _channel(sub: pl.DataFrame, ch: Ch, info: GridInfo, cfg: EstimationConfig) -> pl.DataFrame:
    value, reg, slot = pl.col(ch.value), pl.col(ch.reg), pl.col("slot")
    target = pl.col(f"target_{ch.value}")
    profile = pl.col(f"{ch.value}_wh")
    known = value.is_not_null() & ~target
    last = info.slots - 1
    frame = sub.with_columns(
        _gap=pl.struct(pl.col(M), target).rle_id(),
        _known=known,
        # the neighbours, across midnight through the opening values
        _prev_val=pl.when(slot == 0)
        .then(pl.col(f"open_{ch.value}"))
        .otherwise(pl.when(known.shift(1)).then(value.shift(1))),
        _prev_reg=pl.when(slot == 0).then(pl.col(f"open_{ch.reg}")).otherwise(reg.shift(1)),
        _next_val=pl.when(slot == last)
        .then(None)
        .otherwise(pl.when(known.shift(-1)).then(value.shift(-1))),
        _next_reg=pl.when(slot == last).then(None).otherwise(reg.shift(-1)),
    )
    gap = "_gap"
    n = pl.len().over(gap)
    k = pl.int_range(1, pl.len() + 1).over(gap)
    scale_num = pl.when(pl.col("_known")).then(value).otherwise(0).sum().over(M)
    scale_den = pl.when(pl.col("_known")).then(profile).otherwise(0.0).sum().over(M)
    scale_n = pl.col("_known").sum().over(M)
    frame = frame.with_columns(
        _n=n,
        _k=k,
        _vb=pl.col("_prev_val").first().over(gap),
        _va=pl.col("_next_val").last().over(gap),
        _rb=pl.col("_prev_reg").first().over(gap),
        _re=pl.coalesce(reg, pl.col("_next_reg") - pl.col("_next_val")).last().over(gap),
        _prof_ok=profile.is_null().sum().over(gap) == 0,
        _scale=pl.when((scale_n >= cfg.min_known_intervals) & (scale_den > 0))
        .then((scale_num / scale_den).clip(cfg.scale_min, cfg.scale_max))
        .otherwise(1.0),
    )
    vb, va = pl.col("_vb").cast(pl.Float64), pl.col("_va").cast(pl.Float64)
    n_f, k_f = pl.col("_n").cast(pl.Float64), pl.col("_k").cast(pl.Float64)
    line = (
        pl.when(vb.is_not_null() & va.is_not_null())
        .then(vb + (va - vb) * k_f / (n_f + 1.0))
        .otherwise(pl.coalesce(vb, va))
    )
    delta = pl.col("_re") - pl.col("_rb")
    frame = frame.with_columns(
        _line=line, _delta=pl.when(delta >= 0).then(delta).otherwise(None)
    ).with_columns(
        _method=pl.when((pl.col("_n") <= cfg.max_linear_intervals) & pl.col("_line").is_not_null())
        .then(pl.lit(LINEAR))
        .when(pl.col("_prof_ok"))
        .then(pl.lit(PROFILE))
        .when(pl.col("_line").is_not_null())
        .then(pl.lit(LINEAR))
        .when(pl.col("_delta").is_not_null())
        .then(pl.lit(EVEN))
        .otherwise(None)
    )
    guess = (
        pl.when(pl.col("_method") == LINEAR)
        .then(pl.col("_line"))
        .when(pl.col("_method") == PROFILE)
        .then(profile * pl.col("_scale"))
        .when(pl.col("_method") == EVEN)
        .then(1.0)
    )
    frame = frame.with_columns(_w=guess.clip(lower_bound=0.0))
    total_w = pl.col("_w").sum().over(gap)
    share = (
        pl.when(total_w > 0)
        .then(pl.col("_delta").cast(pl.Float64) * pl.col("_w") / total_w)
        .otherwise(pl.col("_delta").cast(pl.Float64) / n_f)
    )
    frame = frame.with_columns(_share=share).with_columns(
        _floor=pl.col("_share").floor(),
    )
    remainder = pl.col("_delta") - pl.col("_floor").sum().over(gap).cast(pl.Int64)
    rank = (pl.col("_share") - pl.col("_floor")).rank("ordinal", descending=True).over(gap)
    prorated = pl.col("_floor").cast(pl.Int64) + (rank <= remainder).cast(pl.Int64)
    use_reg = pl.col("_delta").is_not_null() & pl.col("_method").is_not_null()
    est = (
        pl.when(~target | pl.col("_method").is_null())
        .then(None)
        .when(use_reg)
        .then(prorated)
        .otherwise(pl.col("_w").round(0).cast(pl.Int64))
    )
    method_flag = (
        pl.when(pl.col("_method") == PROFILE)
        .then(pl.lit(int(Quality.ESTIMATED_PROFILE), FLAG_DTYPE))
        .otherwise(pl.lit(int(Quality.ESTIMATED_LINEAR), FLAG_DTYPE))
    )
    flags = (
        pl.when(est.is_null())
        .then(pl.lit(0, FLAG_DTYPE))
        .otherwise(
            method_flag
            | pl.when(use_reg)
            .then(pl.lit(int(Quality.PRORATED), FLAG_DTYPE))
            .otherwise(pl.lit(0, FLAG_DTYPE))
        )
    )
    return frame.select("_row", est.alias("est"), flags.alias("estflags"))


def estimate(
    grid: pl.DataFrame,
    info: GridInfo,
    cfg: EstimationConfig,
    profile: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """``grid`` (dense, sorted; with ``target_imp``/``target_exp`` saying which values to
    replace) with ``est_imp``/``est_exp`` (Int64, null where nothing was estimated) and
    ``estflags_imp``/``estflags_exp`` (the estimation bits). ``profile``: ``meter_id``,
    ``slot``, ``imp_wh``, ``exp_wh`` for the meters that may need one (others: none)."""
    n = grid.height
    wanted = grid.select(
        in_meter(pl.col("target_imp") | pl.col("target_exp")).alias("w")
    ).to_series()
    out: dict[str, pa.Array] = {}
    sub = grid.with_row_index("_row").filter(wanted)
    if sub.height:
        if profile is not None and profile.height:
            sub = sub.join(
                profile.select(M, pl.col("slot").cast(pl.Int16), "imp_wh", "exp_wh"),
                on=[M, "slot"],
                how="left",
                maintain_order="left",
            )
        else:
            sub = sub.with_columns(
                imp_wh=pl.lit(None, dtype=pl.Float64), exp_wh=pl.lit(None, dtype=pl.Float64)
            )
    for ch in (IMPORT, EXPORT):
        est = np.zeros(n, dtype=np.int64)
        has = np.zeros(n, dtype=bool)
        flags = np.zeros(n, dtype=np.uint32)
        if sub.height:
            part = _channel(sub, ch, info, cfg)
            rows = part["_row"].to_numpy().astype(np.int64)
            got = part["est"].is_not_null().to_numpy()
            est[rows[got]] = part["est"].to_numpy()[got].astype(np.int64)
            has[rows[got]] = True
            flags[rows] = part["estflags"].to_numpy()
        out[f"est_{ch.value}"] = pa.array(est, mask=~has)
        out[f"estflags_{ch.value}"] = pa.array(flags)
    extra = pl.from_arrow(pa.table(out))
    assert isinstance(extra, pl.DataFrame)
    return grid.hstack(extra)
