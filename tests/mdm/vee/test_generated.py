"""Every rule on generated days with injected faults (each injected fault flagged, nothing
flagged where nothing was injected), on NumPy-made days and on the fleet simulator's
realistic households in winter, in summer and over Golden Week."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from openami.fleet.fleet import Fleet
from openami.mdm.vee.config import default_config
from openami.mdm.vee.engine import PartitionResult, validate_partition
from openami.mdm.vee.flags import FAILED, Quality
from openami.mdm.vee.grid import GridBuilder, GridInfo
from openami.mdm.vee.history import trailing_stats
from openami.mdm.vee.rules import RULES
from openami.mdm.vee.synthetic import FAULTS, SyntheticDay, inject, synthetic_day

# where a fault shows up under another rule too, and why
SECONDARY = {
    "missing": {"time_shift", "long_interval"},  # a skewed stamp / a skipped slot: no value
    "register_mismatch": {"spike", "short_interval"},  # registers counted what reads did not
    "spike": {"over_contract"},  # 1.5 x the contract may be 3 x the meter's peak too
    "over_contract": {"spike", "long_interval"},  # a spike, two intervals in one
}
STEP = 1800
SLOTS = 48
# residential amperes, then shops and offices on kVA contracts (x 100 V)
AMPS = np.array([20, 30, 40, 50, 60, 100, 150, 200, 300, 400, 500, 600, 800, 1000])


def top(values: pl.Series) -> int:
    """The largest value of an integer column (0 when empty)."""
    return int(values.to_numpy().max(initial=0))


def run_day(day: SyntheticDay, history: pl.DataFrame | None) -> PartitionResult:
    b = GridBuilder(day.meter_ids, day.info)
    r = day.reads
    b.add(
        r["meter_id"],
        r["channel"],
        r["interval_end"],
        r["value_wh"],
        version=r["version"],
        status=r["status"],
        received_at=r["received_at"],
    )
    now = day.info.day0 + 3 * 86_400
    return validate_partition(b, day.attributes, default_config(), now, history=history)


def flagged_keys(day: SyntheticDay, result: PartitionResult) -> dict[str, set[int]]:
    """rule name -> flat keys (row * slots + slot) flagged on either channel."""
    reads = result.reads.with_columns(
        key=(pl.col("meter_id") - day.meter_ids[0]) * day.info.slots
        + (pl.col("interval_end") - day.info.day0) // day.info.step_s
    )
    out = {}
    for rule in RULES:
        hit = reads.filter((pl.col("flags") & int(rule.flag)) != 0)["key"].unique()
        out[rule.name] = set(hit.to_list())
    return out


def check_detection(day: SyntheticDay, result: PartitionResult) -> None:
    got = flagged_keys(day, result)
    slots = day.info.slots
    owner = {int(k) // slots: f for f, keys in day.faults.items() for k in keys}
    for fault in FAULTS:
        want = set(day.faults[fault].tolist())
        assert want, f"no {fault} injected"
        missed = want - got[fault]
        assert not missed, f"{fault}: {len(missed)} injected rows not flagged"
    for rule, keys in got.items():
        extra = keys - set(day.faults.get(rule, np.zeros(0)).tolist())
        allowed = SECONDARY.get(rule, set())
        wrong = sorted(k for k in extra if owner.get(k // slots) not in allowed)
        assert not wrong, f"{rule} flagged {len(wrong)} rows it should not, e.g. {wrong[:3]}"


def test_synthetic_day_every_fault_found_nothing_else() -> None:
    day = synthetic_day(3_000, seed=7, fault_share=0.01)
    result = run_day(day, day.history)
    check_detection(day, result)
    # and the meters without faults are untouched
    faulty = {int(k) // SLOTS + 1 for keys in day.faults.values() for k in keys}
    clean = result.reads.filter(~pl.col("meter_id").is_in(sorted(faulty)))
    assert clean.height > 0 and top(clean["flags"]) == 0


def test_synthetic_day_without_faults_is_clean() -> None:
    day = synthetic_day(2_000, seed=3, fault_share=0.0)
    result = run_day(day, day.history)
    assert top(result.reads["flags"]) == 0
    assert result.requests == []


# --- the fleet simulator's households -------------------------------------------------------

SEASONS = {
    "winter": date(2026, 1, 12),
    "summer": date(2026, 8, 3),
    "golden_week": date(2026, 4, 28),
}
HISTORY_DAYS = 21
METERS = 300


def fleet_window(first: date, days: int) -> tuple[Fleet, np.ndarray, np.ndarray]:
    start = datetime(first.year, first.month, first.day, tzinfo=UTC)
    fleet = Fleet.simple(METERS, start, seed=11)
    numbers = fleet.origin + np.arange(days * SLOTS, dtype=np.int64)  # first ends at 00:00
    block = fleet.load.energy(np.arange(fleet.n), numbers, meter_ids=fleet.meter_ids)
    imp = block.import_wh.reshape(fleet.n, days, SLOTS)
    exp = block.export_wh.reshape(fleet.n, days, SLOTS)
    return fleet, imp, exp


@pytest.fixture(scope="module", params=list(SEASONS))
def season(request: pytest.FixtureRequest) -> tuple[str, list[SyntheticDay], pl.DataFrame]:
    """A season's window: every day's clean reads, and the trailing statistics VEE built
    for the last day from the days before it."""
    name = str(request.param)
    target = SEASONS[name]
    first = target - timedelta(days=HISTORY_DAYS)
    fleet, imp, exp = fleet_window(first, HISTORY_DAYS + 1)
    pv = fleet.traits.pv_kw > 0
    peak_w = imp.max(axis=(1, 2)) * 2.0
    # customers size their breaker to their use: the smallest contract above 1.2 x the peak
    contract = AMPS[np.minimum(np.searchsorted(AMPS * 100.0, peak_w * 1.2), AMPS.size - 1)]
    imp_base = fleet.import_base.copy()
    exp_base = fleet.export_base.copy()
    days = []
    stats = []
    no_history = pl.DataFrame({"meter_id": fleet.meter_ids, "hist_peak": [None] * METERS})
    for d in range(HISTORY_DAYS + 1):
        day0 = int(datetime(first.year, first.month, first.day, tzinfo=UTC).timestamp())
        info = GridInfo(day0 + d * 86_400, STEP, SLOTS)
        day = inject(
            imp[:, d],
            exp[:, d],
            info,
            meter_ids=fleet.meter_ids,
            has_pv=pv,
            contract_amps=contract,
            history=no_history,
            import_base=imp_base,
            export_base=exp_base,
            faults_to_inject=(),
        )
        imp_base = imp_base + imp[:, d].sum(axis=1)
        exp_base = exp_base + exp[:, d].sum(axis=1)
        days.append(day)
        if d < HISTORY_DAYS:
            result = run_day(day, None)
            assert top(result.reads["flags"]) == 0, f"{name}: day {d} not clean"
            stats.append(result.stats)
    history = trailing_stats(pl.concat(stats))
    return name, days, history


def test_fleet_clean_days_raise_no_flag(
    season: tuple[str, list[SyntheticDay], pl.DataFrame],
) -> None:
    name, days, history = season
    result = run_day(days[-1], history)
    flags = result.reads["flags"]
    assert top(flags & int(FAILED)) == 0, f"{name}: {result.counts}"
    assert top(flags & int(Quality.POWER_DOWN)) == 0


def test_fleet_day_with_every_fault(season: tuple[str, list[SyntheticDay], pl.DataFrame]) -> None:
    _, days, history = season
    clean = days[-1]
    imp_base = clean.reads["value_wh"][
        (clean.reads["channel"] == 3) & (clean.reads["interval_end"] == clean.info.day0)
    ]
    faulty = inject(
        clean.true_imp,
        clean.true_exp,
        clean.info,
        meter_ids=clean.meter_ids,
        has_pv=clean.attributes["has_pv"].to_numpy(),
        contract_amps=clean.attributes["contract_amps"].to_numpy(),
        history=pl.DataFrame({"meter_id": clean.meter_ids}).join(
            history, on="meter_id", how="left", maintain_order="left"
        ),
        import_base=imp_base - clean.true_imp[:, 0],
        seed=5,
        fault_share=0.01,
    )
    check_detection(faulty, run_day(faulty, history))
