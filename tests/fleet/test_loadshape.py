"""The load model: Japanese household and small-commercial electricity, gas and water.

Statistical tests run fixed seeds over fleets large enough that sampling noise is a few per
cent at most; each tolerance says where its number comes from. Published figures used:

- Tokyo Bureau of Environment, household energy surveys (kWh a month, detached / apartment):
  1 person 186-219 / 126-186, 2 persons 253-331 / 201-272, 3 persons 275-386 / 241-313,
  4 persons 324-436 / 286-316; by season (May / August / January), e.g. a 2-person detached
  house 269 / 352 / 461 and a 1-person apartment 153 / 215 / 232.
- Ministry of the Environment, household CO2 statistics FY2021: 4,175 kWh a year per
  household nationally (11.4 kWh/day), all-electric homes included.
- Tokyo Waterworks, household water survey FY2020 (m3 a month): 8.1 14.9 19.9 23.1 27.8
  for 1..5 persons.
- Tokyo Gas, household city-gas sales per household meter: about 335 m3 a year.
- JMA 1991-2020 monthly normals of Tokyo's mean temperature.
"""

from __future__ import annotations

import dataclasses
from datetime import date, datetime, timedelta, timezone

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openami.fleet.loadshape import (
    RESIDENTIAL,
    SMALL_COMMERCIAL,
    EnergyBlock,
    LoadModel,
    TraitMix,
    Traits,
    daily_temperature,
    draw_traits,
)

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

JST = timezone(timedelta(hours=9))
STEP = 1800
PER_DAY = 86_400 // STEP
SEED = 7
# Typical households: on the grid only, neither all-electric nor with PV.
TYPICAL = TraitMix(commercial_share=0.0, all_electric_share=0.0, pv_share=0.0)
# A bit of everything, to exercise every branch of the model at once.
MIXED = TraitMix(
    commercial_share=0.2, all_electric_share=0.2, pv_share=0.3, gas_share=0.6, water_share=0.5
)


def first_number(day: date, step: int = STEP) -> int:
    """Number of the first interval of a Japanese day: the one that ends at 00:00 + step."""
    midnight = datetime(day.year, day.month, day.day, tzinfo=JST)
    return int(midnight.timestamp()) // step + 1


def day_numbers(day: date, days: int = 1, step: int = STEP) -> IntArray:
    first = first_number(day, step)
    return np.arange(first, first + days * (86_400 // step), dtype=np.int64)


def fleet(n: int, mix: TraitMix, seed: int = 11) -> Traits:
    return draw_traits(n, np.random.default_rng(seed), mix)


def everyone(traits: Traits) -> tuple[IntArray, IntArray]:
    """Row indices and meter ids (index + 1, as in the fleet) of all meters."""
    rows = np.arange(len(traits), dtype=np.int64)
    return rows, rows + 1


def run(
    traits: Traits,
    day: date,
    days: int = 1,
    *,
    step: int = STEP,
    seed: int = SEED,
    utilities: bool = False,
) -> EnergyBlock:
    rows, ids = everyone(traits)
    model = LoadModel(traits, seed, step)
    return model.energy(rows, day_numbers(day, days, step), meter_ids=ids, utilities=utilities)


def by_day(values: IntArray, per_day: int = PER_DAY) -> npt.NDArray[np.int64]:
    """(meters, days, intervals of the day)."""
    return values.reshape(values.shape[0], -1, per_day)


def slot(hour: float, step: int = STEP) -> int:
    """Index within the day of the interval that STARTS at ``hour`` (local time)."""
    return int(hour * 3600) // step


# -- the year of a typical household ------------------------------------------------------

# every fifth day of 2025: a stride of 5 cycles through the weekdays and all months
SAMPLE_DAYS = [date(2025, 1, 1) + timedelta(days=d) for d in range(0, 365, 5)]


@pytest.fixture(scope="module")
def typical() -> Traits:
    return fleet(1200, TYPICAL)  # ~450 one-person homes: means known to about 1 %


@pytest.fixture(scope="module")
def typical_year(typical: Traits) -> FloatArray:
    """kWh of each typical household on every fifth day of 2025 (73 days: each weekday and
    each month about equally): shape (meters, days)."""
    rows, ids = everyone(typical)
    model = LoadModel(typical, SEED, STEP)
    daily = []
    for k in range(0, len(SAMPLE_DAYS), 8):  # in chunks: smaller arrays stay in cache
        numbers = np.concatenate([day_numbers(d) for d in SAMPLE_DAYS[k : k + 8]])
        daily.append(by_day(model.energy(rows, numbers, meter_ids=ids).import_wh).sum(axis=2))
    return np.asarray(np.concatenate(daily, axis=1) / 1000.0, dtype=np.float64)


# Published ranges, kWh/day (surveys above; monthly figures / 30.4): the low end is a Tokyo
# apartment, the high end a detached house, widened by 10 % for the year-to-year spread.
PUBLISHED_KWH_DAY = {1: (3.7, 8.0), 2: (6.0, 12.0), 3: (7.1, 14.0), 4: (8.5, 15.8)}


def test_typical_households_use_what_japanese_households_use(
    typical: Traits, typical_year: FloatArray
) -> None:
    annual = typical_year.mean(axis=1)
    size = typical.household_size
    mean_by_size = {k: float(annual[size == k].mean()) for k in range(1, 6)}
    for k, (low, high) in PUBLISHED_KWH_DAY.items():
        assert low < mean_by_size[k] < high, (k, mean_by_size[k])
    # a typical 2-4 person household: about 8-12 kWh a day over the year
    assert 8.0 < float(annual[(size >= 2) & (size <= 4)].mean()) < 12.0
    # bigger households use more, but not in proportion (a fridge is shared); one person
    # uses 55-75 % of what two do in every survey above
    means = [mean_by_size[k] for k in range(1, 6)]
    assert means == sorted(means)
    assert 0.55 < means[0] / means[1] < 0.75
    # homes differ: the middle half of 2-person homes spans more than +-10 %
    two = annual[size == 2]
    q1, q3 = np.quantile(two, [0.25, 0.75])
    assert q3 / q1 > 1.2


def test_winter_and_summer_use_more_than_spring_and_autumn(typical_year: FloatArray) -> None:
    months = np.array([d.month for d in SAMPLE_DAYS])
    monthly = np.array([typical_year[:, months == m].mean() for m in range(1, 13)])
    # Tokyo surveys: August 1.25-1.5x May, January 1.4-1.8x May
    assert 1.15 < monthly[7] / monthly[4] < 1.7
    assert 1.3 < monthly[0] / monthly[4] < 2.0
    # the lowest months are the mild ones (April-June, October), the highest winter
    assert int(np.argmin(monthly)) + 1 in (4, 5, 6, 10)
    assert int(np.argmax(monthly)) + 1 in (12, 1, 2)


def subset(traits: Traits, rows: npt.NDArray[np.intp] | slice) -> Traits:
    return Traits(*(getattr(traits, f.name)[rows] for f in dataclasses.fields(Traits)))


def test_hot_and_cold_days_use_more_through_air_conditioning(typical: Traits) -> None:
    homes = subset(typical, slice(0, 400))
    no_ac = dataclasses.replace(
        homes, cool_kw_per_c=np.zeros(len(homes)), heat_kw_per_c=np.zeros(len(homes))
    )
    for month, sign, least, most in (
        (1, -1.0, 1.25, 2.0),
        (5, 0.0, 1.0, 1.08),
        (8, 1.0, 1.25, 2.0),
    ):
        start = date(2025, month, 1)
        daily = by_day(run(homes, start, 31).import_wh).sum(axis=(0, 2)).astype(np.float64)
        base = by_day(run(no_ac, start, 31).import_wh).sum(axis=(0, 2)).astype(np.float64)
        # May is the surveys' intermediate season: neither heating nor cooling, bar a warm
        # day at the end. January and August: the surveys' 1.25-1.8x of May is mostly this
        assert least <= daily.sum() / base.sum() < most, month
        if sign:
            # day by day, hotter August days use more, colder January days too
            local_days = np.arange(31, dtype=np.int64) + (start - date(1970, 1, 1)).days
            temps = daily_temperature(SEED, local_days)
            # weekends change the shape but not the daily total: the weather dominates
            assert sign * float(np.corrcoef(daily, temps)[0, 1]) > 0.6, month


def test_all_electric_homes_heat_water_at_night_and_use_more() -> None:
    homes = fleet(2000, TraitMix(commercial_share=0.0, all_electric_share=0.5, pv_share=0.0))
    ae = homes.all_electric
    assert 0.45 < ae.mean() < 0.55
    for day in (date(2025, 5, 12), date(2025, 1, 13)):
        kwh = by_day(run(homes, day, 5).import_wh) / 1000.0
        night = kwh[:, :, slot(1) : slot(5)].sum(axis=2).mean(axis=1)  # 01:00-05:00
        daily = kwh.sum(axis=2).mean(axis=1)
        # a heat-pump water heater takes 3-5 kWh in the cheap night hours
        assert night[ae].mean() > 2.5 * night[~ae].mean()
        assert 2.0 < night[ae].mean() - night[~ae].mean() < 6.0
        assert daily[ae].mean() > 1.3 * daily[~ae].mean()


def test_weekday_evenings_peak_and_weekends_spread_over_the_day(typical: Traits) -> None:
    # a mild week without holidays: Monday 12 - Sunday 18 May 2025
    kwh = by_day(run(typical, date(2025, 5, 12), 7).import_wh).mean(axis=0)  # (days, slots)
    weekday, weekend = kwh[:5].mean(axis=0), kwh[5:].mean(axis=0)
    hour = np.arange(PER_DAY) * STEP / 3600.0  # start of each interval

    def mean(profile: FloatArray, start: float, end: float) -> float:
        return float(profile[slot(start) : slot(end)].mean())

    for profile in (weekday, weekend):
        # the evening is the day's peak, between 18:00 and 21:30, at least twice the small
        # hours (fridge and standby; aggregate Japanese residential curves show 2-3x)
        assert 18.0 <= hour[int(np.argmax(profile))] < 21.5
        assert mean(profile, 19, 21) > 2.0 * mean(profile, 3, 5)
    # weekdays: a breakfast peak, then an empty house
    assert mean(weekday, 6.5, 8) > 1.5 * mean(weekday, 3, 5)
    assert mean(weekday, 6.5, 8) > 1.3 * mean(weekday, 10, 15)
    # weekends: people are home at midday, and get up later
    share = {
        name: mean(p, 10, 16) / float(p.mean())
        for name, p in (("weekday", weekday), ("weekend", weekend))
    }
    assert share["weekend"] > 1.25 * share["weekday"]
    morning = slot(5), slot(11)
    assert np.argmax(weekend[morning[0] : morning[1]]) > np.argmax(weekday[morning[0] : morning[1]])
    assert 0.9 < weekend.sum() / weekday.sum() < 1.3


@pytest.mark.parametrize(
    ("holiday", "ordinary"),
    [
        (date(2025, 1, 2), date(2025, 1, 9)),  # New Year (Thursday)
        (date(2025, 5, 5), date(2025, 5, 12)),  # Golden Week (Monday)
        (date(2025, 8, 14), date(2025, 8, 21)),  # Obon (Thursday)
    ],
)
def test_new_year_golden_week_and_obon_look_like_weekends(
    typical: Traits, holiday: date, ordinary: date
) -> None:
    homes = subset(typical, slice(0, 800))

    def midday_share(day: date) -> float:
        profile = run(homes, day).import_wh.sum(axis=0)
        return float(profile[slot(10) : slot(16)].mean() / profile.mean())

    assert midday_share(holiday) > 1.2 * midday_share(ordinary)


def test_shops_and_offices_run_in_opening_hours() -> None:
    step = 3600  # hourly: interval h ENDS at h:00, so a misplaced end shows as an hour's shift
    shops = fleet(1000, TraitMix(commercial_share=1.0, pv_share=0.0))
    assert (shops.kind == SMALL_COMMERCIAL).all()
    kwh = by_day(run(shops, date(2025, 5, 12), 7, step=step).import_wh, 24) / 1000.0
    workday = kwh[:, :5].mean(axis=(0, 1))  # index h: the hour from h:00 to h+1:00
    closed = float(workday[1:5].mean())  # 01:00-05:00
    # closed before 07:00 and after 21:00: lights, fridges and servers only; 07:00-08:00 a
    # few open early. (Were interval h+1 read as STARTING at h+1:00, hour 7 would show the
    # opening at 08:30 and be 3x the closed load.)
    for h in [*range(0, 7), *range(21, 24)]:
        assert workday[h] < 1.3 * closed, h
    assert workday[7] < 1.6 * closed
    # open from 09:00 to 19:00, several times the closed load
    for h in range(9, 19):
        assert workday[h] > 3.0 * closed, h
    # shops and offices peak in the daytime, homes in the evening
    assert 9 <= int(np.argmax(workday)) < 19
    # many close at the weekend: less energy, but the closed load stays
    weekday_total = kwh[:, :5].sum(axis=2).mean()
    weekend_total = kwh[:, 5:].sum(axis=2).mean()
    assert 0.25 < weekend_total / weekday_total < 0.8
    assert kwh[:, 5:, 1:5].mean() == pytest.approx(closed, rel=0.05)
    # the size of a small shop or office: base use is drawn from 30-150 kWh a working day
    assert 75.0 < weekday_total < 110.0


def test_pv_exports_only_in_daylight_and_only_where_there_are_panels() -> None:
    meters = fleet(500, TraitMix(commercial_share=0.1, pv_share=0.5, all_electric_share=0.15))
    has_pv = meters.pv_kw > 0
    assert 0.4 < has_pv.mean() < 0.6
    days = [date(2025, 1, 1) + timedelta(days=d) for d in range(0, 365, 3)]
    rows, ids = everyone(meters)
    model = LoadModel(meters, SEED, STEP)
    exported = model.energy(
        rows, np.concatenate([day_numbers(d) for d in days]), meter_ids=ids
    ).export_wh
    assert (exported[~has_pv] == 0).all()
    assert (exported[has_pv].sum(axis=1) > 0).all()
    per_slot = by_day(exported)
    # Tokyo: the earliest sunrise is 04:25 (June), the latest sunset 19:01 (July)
    assert per_slot[:, :, : slot(4)].sum() == 0
    assert per_slot[:, :, slot(19.5) :].sum() == 0
    # in December the sun rises after 06:30 and sets before 16:40
    december = np.array([d.month == 12 for d in days])
    assert per_slot[:, december, : slot(6.5)].sum() == 0
    assert per_slot[:, december, slot(17) :].sum() == 0
    # export peaks around solar noon (11:40 in Tokyo), when most panels beat the house
    profile = per_slot[has_pv].sum(axis=(0, 1))
    assert 11.0 <= int(np.argmax(profile)) * STEP / 3600 < 13.0
    noon = per_slot[has_pv][:, :, slot(11.5)]
    assert (noon > 0).mean() > 0.6  # of PV meters and days, clouds and winter included


def test_pv_lowers_daytime_import_of_the_same_homes() -> None:
    homes = fleet(400, TraitMix(commercial_share=0.0, all_electric_share=0.0, pv_share=1.0))
    grid_only = dataclasses.replace(homes, pv_kw=np.zeros(len(homes)))
    with_pv = by_day(run(homes, date(2025, 5, 12), 7).import_wh)
    without = by_day(run(grid_only, date(2025, 5, 12), 7).import_wh)
    day, night = slice(slot(10), slot(14)), slice(slot(0), slot(4))
    assert with_pv[:, :, day].sum() < 0.5 * without[:, :, day].sum()
    assert np.array_equal(with_pv[:, :, night], without[:, :, night])


def test_values_are_whole_non_negative_and_never_both_ways() -> None:
    meters = fleet(600, MIXED)
    block = run(meters, date(2025, 6, 2), 14, utilities=True)
    assert block.gas_l is not None and block.water_l is not None
    for values in (block.import_wh, block.export_wh, block.gas_l, block.water_l):
        assert values.dtype == np.int64
        assert values.shape == (600, 14 * PER_DAY)
        assert (values >= 0).all()
    assert not ((block.import_wh > 0) & (block.export_wh > 0)).any()
    assert block.export_wh.any() and block.gas_l.any() and block.water_l.any()
    # without utilities=True only electricity
    plain = run(meters, date(2025, 6, 2), 14)
    assert plain.gas_l is None and plain.water_l is None
    assert np.array_equal(plain.import_wh, block.import_wh)


# -- determinism and where a value comes from ---------------------------------------------


def test_the_same_seed_gives_the_same_values_and_another_seed_does_not() -> None:
    a = fleet(300, MIXED, seed=5)
    b = fleet(300, MIXED, seed=5)
    for f in dataclasses.fields(Traits):
        assert np.array_equal(getattr(a, f.name), getattr(b, f.name)), f.name
    first = run(a, date(2025, 7, 1), 2, seed=1, utilities=True)
    again = run(b, date(2025, 7, 1), 2, seed=1, utilities=True)
    other = run(a, date(2025, 7, 1), 2, seed=2, utilities=True)
    for name in ("import_wh", "export_wh", "gas_l", "water_l"):
        assert np.array_equal(getattr(first, name), getattr(again, name)), name
    # another seed: other noise and weather in most cells (a few small ones may tie)
    net, other_net = first.import_wh - first.export_wh, other.import_wh - other.export_wh
    assert (net != other_net).mean() > 0.9
    assert first.gas_l is not None and other.gas_l is not None
    has_gas = a.has_gas
    assert (first.gas_l[has_gas] != other.gas_l[has_gas]).mean() > 0.8
    assert not np.array_equal(a.household_size, fleet(300, MIXED, seed=6).household_size)


@pytest.fixture(scope="module")
def mixed() -> Traits:
    return fleet(300, MIXED, seed=21)


REFERENCE_DAY = date(2025, 8, 15)  # Friday in Obon, then a weekend: shapes change daily


@pytest.fixture(scope="module")
def reference(mixed: Traits) -> EnergyBlock:
    """Every meter over four days, computed as one block."""
    return run(mixed, REFERENCE_DAY, 4, utilities=True)


@settings(max_examples=40, deadline=None)
@given(
    rows=st.lists(st.integers(0, 299), min_size=1, max_size=25),
    cols=st.lists(st.integers(0, 4 * PER_DAY - 1), min_size=1, max_size=30),
)
def test_a_value_does_not_depend_on_the_block_it_is_computed_in(
    mixed: Traits, reference: EnergyBlock, rows: list[int], cols: list[int]
) -> None:
    """The fleet computes every meter at one interval for pushes, and one meter over a
    range when the head-end collects again: both must give the same numbers. Any choice
    and order of meters and intervals, repeats included, gives the reference's values."""
    meters = np.array(rows, dtype=np.int64)
    numbers = day_numbers(REFERENCE_DAY, 4)[np.array(cols)]
    model = LoadModel(mixed, SEED, STEP)
    block = model.energy(meters, numbers, meter_ids=meters + 1, utilities=True)
    cells = np.ix_(meters, np.array(cols))
    assert np.array_equal(block.import_wh, reference.import_wh[cells])
    assert np.array_equal(block.export_wh, reference.export_wh[cells])
    assert block.gas_l is not None and block.water_l is not None
    assert reference.gas_l is not None and reference.water_l is not None
    assert np.array_equal(block.gas_l, reference.gas_l[cells])
    assert np.array_equal(block.water_l, reference.water_l[cells])
    gas, water = model.utilities(meters, numbers, meter_ids=meters + 1)
    assert np.array_equal(gas, reference.gas_l[cells])
    assert np.array_equal(water, reference.water_l[cells])


def test_push_path_and_recollection_path_agree_over_45_days() -> None:
    meters = fleet(3000, MIXED, seed=8)
    rows, ids = everyone(meters)
    model = LoadModel(meters, SEED, STEP)
    numbers = day_numbers(date(2025, 12, 1), 45)  # through the New Year
    picked = [
        int(np.flatnonzero(meters.pv_kw > 0)[0]),
        int(np.flatnonzero(meters.kind)[0]),
        int(np.flatnonzero(meters.all_electric)[0]),
        2999,
    ]
    # the head-end collecting one meter's last 45 days again
    ranges = {
        m: model.energy(np.array([m]), numbers, meter_ids=np.array([m + 1]), utilities=True)
        for m in picked
    }
    # the fleet pushing every meter, one interval at a time
    for k in (0, 1, 700, 1399, 2159):
        push = model.energy(rows, numbers[k : k + 1], meter_ids=ids, utilities=True)
        for m, one in ranges.items():
            assert push.import_wh[m, 0] == one.import_wh[0, k]
            assert push.export_wh[m, 0] == one.export_wh[0, k]
            assert push.gas_l is not None and one.gas_l is not None
            assert push.gas_l[m, 0] == one.gas_l[0, k]
            assert push.water_l is not None and one.water_l is not None
            assert push.water_l[m, 0] == one.water_l[0, k]


def test_meter_ids_key_the_noise() -> None:
    meters = fleet(200, TYPICAL)
    rows, ids = everyone(meters)
    model = LoadModel(meters, SEED, STEP)
    numbers = day_numbers(date(2025, 5, 12))
    a = model.energy(rows, numbers, meter_ids=ids).import_wh
    b = model.energy(rows, numbers, meter_ids=ids + 1000).import_wh
    assert (a != b).mean() > 0.9
    # two meters with the same traits and different ids do not move in lockstep
    twins = np.zeros(2, dtype=np.int64)
    c = model.energy(twins, numbers, meter_ids=np.array([1, 2])).import_wh
    assert not np.array_equal(c[0], c[1])


# -- interval length ------------------------------------------------------------------------


@pytest.mark.parametrize("step", [0, -1800, 7, 7 * 60, 7 * 3600, 172_800])
def test_an_interval_that_does_not_divide_a_day_is_refused(step: int) -> None:
    with pytest.raises(ValueError, match="does not divide a day"):
        LoadModel(fleet(3, TYPICAL), SEED, step)


def test_daily_energy_does_not_depend_on_the_interval_length() -> None:
    meters = fleet(500, TraitMix(commercial_share=0.1, pv_share=0.0, all_electric_share=0.1))
    totals = {}
    for minutes in (5, 15, 30, 60):
        step = minutes * 60
        block = run(meters, date(2025, 3, 3), 3, step=step, utilities=True)
        assert block.import_wh.shape == (500, 3 * 86_400 // step)
        assert block.gas_l is not None and block.water_l is not None
        totals[minutes] = np.array(
            [block.import_wh.sum(), block.gas_l.sum(), block.water_l.sum()], dtype=np.float64
        )
    # the noise differs between interval lengths; over 500 meters x 3 days the totals agree
    # to well within 3 % (5-minute rounding to whole Wh and litres costs under 1 %)
    for minutes in (5, 15, 60):
        assert np.allclose(totals[minutes], totals[30], rtol=0.03), minutes


# -- gas and water --------------------------------------------------------------------------


def test_gas_and_water_only_where_metered_with_morning_and_evening_peaks() -> None:
    meters = fleet(1500, MIXED, seed=13)
    rows, ids = everyone(meters)
    model = LoadModel(meters, SEED, STEP)
    gas, water = model.utilities(rows, day_numbers(date(2025, 10, 6), 7), meter_ids=ids)
    assert gas.dtype == water.dtype == np.int64
    assert (gas[~meters.has_gas] == 0).all() and (water[~meters.has_water] == 0).all()
    assert (gas[meters.has_gas].sum(axis=1) > 0).all()
    assert (water[meters.has_water].sum(axis=1) > 0).all()
    assert not (meters.has_gas & meters.all_electric).any()
    for values, metered in ((gas, meters.has_gas), (water, meters.has_water)):
        profile = by_day(values[metered]).mean(axis=(0, 1))
        small_hours = profile[slot(2) : slot(4)].mean()
        assert profile[slot(6.5) : slot(8.5)].mean() > 2.0 * small_hours  # breakfast, washing
        assert profile[slot(19.5) : slot(21.5)].mean() > 3.0 * small_hours  # dinner, the bath
        assert profile[slot(19.5) : slot(21.5)].mean() > profile[slot(12) : slot(16)].mean()


def test_water_and_gas_volumes_match_tokyo_households() -> None:
    homes = fleet(
        2000, TraitMix(commercial_share=0.0, all_electric_share=0.0, gas_share=1.0, water_share=1.0)
    )
    rows, ids = everyone(homes)
    model = LoadModel(homes, SEED, STEP)
    numbers = np.concatenate([day_numbers(d) for d in SAMPLE_DAYS])
    gas, water = model.utilities(rows, numbers, meter_ids=ids)
    days = len(SAMPLE_DAYS)
    size = homes.household_size
    # Tokyo Waterworks FY2020, m3 a month -> litres a day; +-10 % (2000 homes, 73 days)
    survey = {1: 8.1, 2: 14.9, 3: 19.9, 4: 23.1, 5: 27.8}
    for k, m3_month in survey.items():
        litres_day = water[size == k].sum(axis=1).mean() / days
        assert litres_day == pytest.approx(m3_month * 1000 / 30.4, rel=0.1), k
    # Tokyo Gas: ~335 m3 a year per household meter; +-20 % (the Tokyo household mix here
    # is the census mix, and winters differ)
    m3_year = gas.sum(axis=1).mean() / days * 365 / 1000
    assert 270 < m3_year < 400
    # more gas in winter (space and bath heating) than in summer
    months = np.repeat([d.month for d in SAMPLE_DAYS], PER_DAY)
    assert gas[:, months == 1].mean() > 1.3 * gas[:, months == 8].mean()
    assert gas[size == 1].mean() < 0.6 * gas[size == 4].mean()


# -- traits and weather ---------------------------------------------------------------------


def test_draw_traits_follows_the_mix() -> None:
    n = 40_000
    mix = TraitMix(
        commercial_share=0.1, all_electric_share=0.2, pv_share=0.3, gas_share=0.5, water_share=0.4
    )
    t = draw_traits(n, np.random.default_rng(1), mix)
    assert len(t) == n
    commercial = t.kind == SMALL_COMMERCIAL
    assert set(np.unique(t.kind)) == {RESIDENTIAL, SMALL_COMMERCIAL}
    home = ~commercial

    def close(share: float, expected: float, of: int) -> bool:  # within 5 standard errors
        return bool(abs(share - expected) < 5 * np.sqrt(expected * (1 - expected) / of))

    assert close(float(commercial.mean()), 0.1, n)
    assert close(float(t.all_electric[home].mean()), 0.2, int(home.sum()))
    assert not t.all_electric[commercial].any()
    assert close(float((t.pv_kw > 0).mean()), 0.3, n)
    gas_candidates = home & ~t.all_electric | commercial
    assert close(float(t.has_gas[gas_candidates].mean()), 0.5, int(gas_candidates.sum()))
    assert not (t.has_gas & t.all_electric).any()
    assert close(float(t.has_water.mean()), 0.4, n)
    # census shares of households of 1..5+ persons; shops and offices have none
    assert (t.household_size[commercial] == 0).all()
    sizes = np.bincount(t.household_size[home], minlength=6)[1:] / home.sum()
    assert np.allclose(sizes, [0.38, 0.28, 0.16, 0.13, 0.05], atol=0.015)
    # rooftop PV of 3-7 kW on homes, larger on shops
    assert t.pv_kw[home & (t.pv_kw > 0)].min() >= 3.0
    assert t.pv_kw[home].max() <= 7.0
    assert t.pv_kw[commercial].max() > 7.0
    assert (t.base_kwh_day > 0).all()
    assert (t.cool_kw_per_c >= 0).all() and (t.heat_kw_per_c >= 0).all()
    # all-electric homes heat with electricity; others partly with gas or kerosene
    both = home & (t.household_size == 3)
    assert (
        t.heat_kw_per_c[both & t.all_electric].mean()
        > 2 * t.heat_kw_per_c[both & ~t.all_electric].mean()
    )


def test_traits_concatenate_in_order() -> None:
    a, b = fleet(3, TYPICAL, seed=1), fleet(4, MIXED, seed=2)
    both = Traits.concat([a, b])
    assert len(both) == 7
    for f in dataclasses.fields(Traits):
        assert np.array_equal(getattr(both, f.name)[:3], getattr(a, f.name))
        assert np.array_equal(getattr(both, f.name)[3:], getattr(b, f.name))


TOKYO_NORMALS_C = [5.4, 6.1, 9.4, 14.3, 18.8, 21.9, 25.7, 26.9, 23.3, 18.0, 12.5, 7.7]


def test_the_weather_is_tokyo() -> None:
    days = np.arange(np.datetime64("1995-01-01"), np.datetime64("2025-01-01"))
    local_days = days.astype(np.int64)
    temps = daily_temperature(SEED, local_days)
    months = days.astype("datetime64[M]").astype(np.int64) % 12
    for m, normal in enumerate(TOKYO_NORMALS_C):
        # the climatology fits every normal within 0.35 C, and 30 years of anomalies (sd
        # ~2 C, a few days long) average to under 0.2 C
        assert float(temps[months == m].mean()) == pytest.approx(normal, abs=0.6), m + 1
    anomaly = temps - np.array([TOKYO_NORMALS_C[m] for m in months])
    # daily means scatter by about 2-3 C around the normal, and spells last a few days
    assert 1.5 < float(anomaly.std()) < 3.0
    assert 0.4 < float(np.corrcoef(anomaly[1:], anomaly[:-1])[0, 1]) < 0.9
    # the weather is the fleet's: a function of the seed and the day only
    assert np.array_equal(temps[:10], daily_temperature(SEED, local_days[:10]))
    assert not np.array_equal(temps[:10], daily_temperature(SEED + 1, local_days[:10]))
