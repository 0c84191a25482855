from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np

from openami.fleet.loadshape import HouseholdTraits, LoadProfiles, draw_traits, simulate

JST = timezone(timedelta(hours=9))


def _run(
    n: int = 2000, start: datetime = datetime(2026, 8, 3, tzinfo=JST), days: int = 7, seed: int = 3
) -> tuple[HouseholdTraits, LoadProfiles]:
    rng = np.random.default_rng(seed)
    traits = draw_traits(n, rng)
    return traits, simulate(traits, start, days * 48, 30, rng)


def test_the_same_seed_gives_the_same_fleet_and_another_seed_does_not() -> None:
    _, a = _run(seed=5)
    _, b = _run(seed=5)
    _, c = _run(seed=6)
    assert np.array_equal(a.import_wh, b.import_wh)
    assert not np.array_equal(a.import_wh, c.import_wh)


def test_values_are_whole_non_negative_wh_and_never_both_directions() -> None:
    _, p = _run()
    assert p.import_wh.dtype == np.int64
    assert (p.import_wh >= 0).all() and (p.export_wh >= 0).all()
    assert not ((p.import_wh > 0) & (p.export_wh > 0)).any()


def test_interval_ends_are_half_hours_from_the_start() -> None:
    start = datetime(2026, 8, 3, tzinfo=JST)
    _, p = _run(days=1, start=start)
    assert p.interval_end[0] == int(start.timestamp()) + 1800
    assert (np.diff(p.interval_end) == 1800).all()


def test_weekday_evening_peak_exceeds_the_small_hours() -> None:
    _, p = _run()
    by_slot = p.import_wh[:, :240].sum(axis=0).reshape(5, 48).mean(axis=0)  # Mon..Fri
    evening = by_slot[38:42].mean()  # 19:00-21:00
    small_hours = by_slot[6:10].mean()  # 03:00-05:00
    assert evening > 1.5 * small_hours


def test_only_pv_homes_export_and_only_in_daylight() -> None:
    traits, p = _run()
    exporting = p.export_wh.sum(axis=1) > 0
    assert exporting.any()
    assert (traits.pv_kw[exporting] > 0).all()
    night = np.r_[0:8, 40:48]  # 00:00-04:00 and 20:00-24:00
    assert p.export_wh.reshape(p.export_wh.shape[0], -1, 48)[:, :, night].sum() == 0


def test_bigger_households_use_more_and_winter_more_than_spring() -> None:
    traits, p = _run()
    daily = p.import_wh.sum(axis=1)
    assert daily[traits.household_size >= 4].mean() > daily[traits.household_size == 1].mean()
    _, winter = _run(start=datetime(2026, 1, 12, tzinfo=JST))
    _, spring = _run(start=datetime(2026, 5, 11, tzinfo=JST))
    assert winter.import_wh.sum() > 1.2 * spring.import_wh.sum()


def test_typical_japanese_household_scale() -> None:
    _, p = _run(start=datetime(2026, 5, 11, tzinfo=JST))
    kwh_per_day = p.import_wh.sum() / p.import_wh.shape[0] / 7 / 1000
    assert 5.0 < kwh_per_day < 15.0
