"""Estimation against withheld true values: realistic households from the fleet simulator,
a week of days, one gap per meter and day, each method's mean absolute error reported.

Short gaps (1-4 intervals) go to linear interpolation, long ones (8-16) to the reference
profile; each is run with the registers (estimates prorated to their change) and without
(channel 3/4 withheld too), and long gaps once more forced onto a line, to show what the
profile buys."""

from __future__ import annotations

from datetime import UTC, date, datetime

import numpy as np
import polars as pl
import pytest

from openami.fleet.fleet import Fleet
from openami.mdm.vee.config import load_config
from openami.mdm.vee.engine import GAP_SCHEMA, validate_partition
from openami.mdm.vee.flags import Quality
from openami.mdm.vee.grid import GridBuilder, GridInfo
from openami.mdm.vee.history import reference_profile
from openami.mdm.vee.synthetic import inject

STEP, SLOTS = 1800, 48
METERS = 300
WEEKS = 4
FIRST = date(2026, 5, 11)  # a Monday; four weeks of history, then a week to estimate
TARGET_DAYS = 7


def _window() -> tuple[Fleet, np.ndarray, np.ndarray, int]:
    start = datetime(FIRST.year, FIRST.month, FIRST.day, tzinfo=UTC)
    fleet = Fleet.simple(METERS, start, seed=21)
    days = WEEKS * 7 + TARGET_DAYS
    numbers = fleet.origin + np.arange(days * SLOTS, dtype=np.int64)
    block = fleet.load.energy(np.arange(fleet.n), numbers, meter_ids=fleet.meter_ids)
    return (
        fleet,
        block.import_wh.reshape(METERS, days, SLOTS),
        block.export_wh.reshape(METERS, days, SLOTS),
        int(start.timestamp()),
    )


def _history(fleet: Fleet, imp: np.ndarray, exp: np.ndarray, day0: int, upto: int) -> pl.DataFrame:
    """The validated reads (all clean here) of the days before day ``upto``."""
    days = np.arange(upto)
    ends = day0 + (days[:, None] * 86_400 + np.arange(SLOTS)[None, :] * STEP).reshape(-1)
    frames = []
    for channel, values in ((1, imp), (2, exp)):
        frames.append(
            pl.DataFrame(
                {
                    "meter_id": np.repeat(fleet.meter_ids, ends.size),
                    "channel": np.full(METERS * ends.size, channel, dtype=np.int8),
                    "interval_end": np.tile(ends, METERS),
                    "value_wh": values[:, :upto].reshape(-1),
                    "flags": np.zeros(METERS * ends.size, dtype=np.uint32),
                }
            )
        )
    return pl.concat(frames)


def test_mean_absolute_error_per_method(capsys: pytest.CaptureFixture[str]) -> None:
    fleet, imp, exp, day0 = _window()
    rng = np.random.default_rng(4)
    pv = fleet.traits.pv_kw > 0
    errors: dict[str, list[float]] = {}
    truths: dict[str, list[float]] = {}
    gap_sums_exact = True
    forced_line = load_config(overrides={"estimation": {"max_linear_intervals": SLOTS}})
    default = load_config()
    for t in range(TARGET_DAYS):
        d = WEEKS * 7 + t
        info = GridInfo(day0 + d * 86_400, STEP, SLOTS)
        profile = reference_profile(
            _history(fleet, imp, exp, day0, d), info.day0, STEP, weeks=WEEKS
        )
        day = inject(
            imp[:, d],
            exp[:, d],
            info,
            meter_ids=fleet.meter_ids,
            has_pv=pv,
            contract_amps=np.full(METERS, 1000.0),
            faults_to_inject=(),
        )
        long_gap = np.arange(METERS) % 2 == 1
        length = np.where(long_gap, rng.integers(8, 17, METERS), rng.integers(1, 5, METERS))
        start = rng.integers(1, SLOTS - length)  # neighbours on both sides
        slot_of = (day.reads["interval_end"] - info.day0) // STEP
        row_of = day.reads["meter_id"] - 1
        withheld = (slot_of >= start[row_of]) & (slot_of < start[row_of] + length[row_of])
        gap_rows = [(r, k) for r in range(METERS) for k in range(start[r], start[r] + length[r])]
        book = pl.DataFrame(
            {
                "meter_id": [int(fleet.meter_ids[r]) for r, _ in gap_rows],
                "interval_end": [info.day0 + k * STEP for _, k in gap_rows],
                "first_seen_at": [info.day0] * len(gap_rows),
                "asks": [1] * len(gap_rows),
                "first_asked_at": [info.day0] * len(gap_rows),
                "last_asked_at": [info.day0] * len(gap_rows),
            },
            schema=GAP_SCHEMA,
        )
        runs = {
            "with registers": (default, ~withheld),
            "without registers": (default, ~withheld & (day.reads["channel"] <= 2)),
            "line only, no registers": (forced_line, ~withheld & (day.reads["channel"] <= 2)),
        }
        for label, (cfg, keep) in runs.items():
            b = GridBuilder(fleet.meter_ids, info)
            r = {k: v[keep] for k, v in day.reads.items()}
            b.add(r["meter_id"], r["channel"], r["interval_end"], r["value_wh"])
            result = validate_partition(
                b, day.attributes, cfg, info.day0 + 3 * 86_400, profile=profile, gaps=book
            )
            est = result.reads.filter(
                (pl.col("channel") == 1) & ((pl.col("flags") & int(Quality.MISSING)) != 0)
            ).sort("meter_id", "interval_end")
            assert est.height == len(gap_rows)
            assert est["value_wh"].null_count() == 0
            rows = (est["meter_id"].to_numpy() - 1).astype(np.int64)
            slots = ((est["interval_end"].to_numpy() - info.day0) // STEP).astype(np.int64)
            truth = imp[rows, d, slots].astype(np.float64)
            got = est["value_wh"].to_numpy().astype(np.float64)
            flags = est["flags"].to_numpy()
            method = np.where(flags & int(Quality.ESTIMATED_PROFILE), "profile", "linear")
            size = np.where(long_gap[rows], "long", "short")
            if label == "with registers":
                sums = pl.DataFrame({"m": rows, "t": truth, "g": got}).group_by("m").sum()
                gap_sums_exact &= bool((sums["t"] == sums["g"]).all())
            for key in sorted(
                {f"{s} gaps, {m}, {label}" for s, m in zip(size, method, strict=True)}
            ):
                s_, m_ = key.split(", ")[0].split()[0], key.split(", ")[1]
                sel = (size == s_) & (method == m_)
                errors.setdefault(key, []).extend(np.abs(got[sel] - truth[sel]).tolist())
                truths.setdefault(key, []).extend(truth[sel].tolist())
    mae = {k: float(np.mean(v)) for k, v in errors.items()}
    with capsys.disabled():
        print("\nVEE estimation, import Wh per 30-min interval (mean absolute error):")
        for key in sorted(mae):
            mean = float(np.mean(truths[key]))
            print(
                f"  {key:<48} MAE {mae[key]:7.1f} Wh  ({100 * mae[key] / mean:5.1f} % of "
                f"the mean {mean:6.1f} Wh, n={len(errors[key])})"
            )
    assert gap_sums_exact  # prorated estimates add up to the registers' change exactly
    for gap_size, how in (("short", "linear"), ("long", "profile")):
        with_reg = mae[f"{gap_size} gaps, {how}, with registers"]
        without = mae[f"{gap_size} gaps, {how}, without registers"]
        assert with_reg < without
    assert (
        mae["long gaps, profile, without registers"]
        < mae["long gaps, linear, line only, no registers"]
    )
    assert mae["short gaps, linear, without registers"] < 0.6 * float(
        np.mean(truths["short gaps, linear, without registers"])
    )
