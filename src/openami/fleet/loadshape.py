"""Japanese residential load shapes, vectorised over meters x intervals.

The model, per meter: household size (1-5 persons, drawn with Japan's census shares), an
annual consumption for that size, all-electric homes (heat-pump water heater running at
night), rooftop PV on a share of homes. Per half-hour: a weekday or weekend daily shape
(morning and evening peaks), seasonal scaling and seasonal components (air conditioning on
summer afternoons and evenings, heating on winter mornings and evenings), a per-meter shift of
habits, day-to-day and interval-to-interval noise. PV follows the sun's daylength for Tokyo's
latitude, scaled by a fleet-wide daily clearness (weather is shared) and per-meter jitter.
All outputs are Wh per interval; the meter sees net flow, so import and export never both
appear in one interval.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import numpy as np
import numpy.typing as npt

__all__ = ["HouseholdTraits", "LoadProfiles", "draw_traits", "simulate"]

JST = timezone(timedelta(hours=9))
SIZE_SHARES = np.array([0.38, 0.28, 0.16, 0.13, 0.05])  # 1..5+ person households
ANNUAL_KWH_BY_SIZE = np.array([2_200.0, 3_600.0, 4_300.0, 4_800.0, 5_400.0])
# Monthly scaling of daily consumption (Jan..Dec): winter heating and summer cooling.
MONTH_FACTOR = np.array([1.35, 1.30, 1.12, 0.92, 0.82, 0.86, 1.05, 1.22, 1.00, 0.86, 0.95, 1.20])
ALL_ELECTRIC_SHARE = 0.12
PV_SHARE = 0.15

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class HouseholdTraits:
    household_size: IntArray  # persons, 1..5
    annual_kwh: FloatArray
    all_electric: BoolArray
    pv_kw: FloatArray  # 0 where there is no PV
    habit_shift_h: FloatArray  # how much earlier/later this home lives, hours


@dataclass(frozen=True)
class LoadProfiles:
    interval_end: IntArray  # (T,) Unix seconds, UTC, END of each interval
    import_wh: IntArray  # (N, T)
    export_wh: IntArray  # (N, T)


def draw_traits(n: int, rng: np.random.Generator) -> HouseholdTraits:
    size = rng.choice(5, size=n, p=SIZE_SHARES) + 1
    annual = ANNUAL_KWH_BY_SIZE[size - 1] * rng.lognormal(0.0, 0.25, n)
    all_electric = rng.random(n) < ALL_ELECTRIC_SHARE
    annual = np.where(all_electric, annual * 1.5, annual)
    has_pv = rng.random(n) < PV_SHARE
    pv_kw = np.where(has_pv, rng.uniform(3.0, 7.0, n).round(1), 0.0)
    shift = rng.normal(0.0, 0.6, n)
    return HouseholdTraits(size, annual, all_electric, pv_kw, shift)


def _bump(hours: FloatArray, centre: float, width: float) -> FloatArray:
    # circular distance so that bumps near midnight wrap around
    d = np.abs(((hours - centre) + 12.0) % 24.0 - 12.0)
    return np.asarray(np.exp(-0.5 * (d / width) ** 2))


def _daily_shape(
    hours: FloatArray, weekend: BoolArray, summer: FloatArray, winter: FloatArray
) -> FloatArray:
    """Relative demand at local ``hours`` (any shape); all arguments broadcast together."""
    weekday = 0.30 + 0.85 * _bump(hours, 7.0, 1.0) + 0.30 * _bump(hours, 12.5, 1.5)
    weekday = weekday + 1.30 * _bump(hours, 19.5, 2.0)
    holiday = 0.32 + 0.55 * _bump(hours, 8.5, 1.5) + 0.70 * _bump(hours, 13.0, 2.5)
    holiday = holiday + 1.20 * _bump(hours, 19.0, 2.2)
    shape = np.where(weekend, holiday, weekday)
    cooling = 0.55 * _bump(hours, 15.0, 3.0) + 0.45 * _bump(hours, 21.5, 2.5)
    heating = 0.50 * _bump(hours, 7.0, 1.5) + 0.55 * _bump(hours, 20.0, 3.0)
    return np.asarray(shape + summer * cooling + winter * heating)


def _pv_shape(hours: FloatArray, day_of_year: FloatArray) -> FloatArray:
    """Fraction of nameplate power at local ``hours`` in Tokyo (35.7 N)."""
    daylength = 12.2 + 2.3 * np.sin(2 * np.pi * (day_of_year - 80) / 365.0)
    sunrise = 11.7 - daylength / 2
    phase = (hours - sunrise) / daylength
    lit = (phase > 0) & (phase < 1)
    elevation = 0.55 + 0.25 * np.sin(2 * np.pi * (day_of_year - 80) / 365.0)
    return np.where(lit, np.sin(np.pi * np.clip(phase, 0, 1)) ** 1.4 * elevation, 0.0)


def simulate(
    traits: HouseholdTraits,
    start: datetime,
    n_intervals: int,
    interval_minutes: int,
    rng: np.random.Generator,
) -> LoadProfiles:
    """Net import/export Wh for every meter and interval starting at ``start`` (aware)."""
    n = traits.household_size.shape[0]
    step = interval_minutes * 60
    start_s = int(start.timestamp())
    ends = start_s + step * np.arange(1, n_intervals + 1, dtype=np.int64)
    mids_local = (ends - step // 2) + 9 * 3600  # JST seconds, for local calendar features
    day_index = mids_local // 86_400
    days, day_of_interval = np.unique(day_index, return_inverse=True)
    local_days = [datetime.fromtimestamp(int(d) * 86_400, tz=JST) for d in days]
    month = np.array([(d - timedelta(hours=9)).month for d in local_days])[day_of_interval]
    weekday = (day_index + 3) % 7  # 1970-01-01 was a Thursday: Monday == 0
    weekend = (weekday >= 5)[None, :]
    doy = np.array([(d - timedelta(hours=9)).timetuple().tm_yday for d in local_days], float)
    hours = (mids_local % 86_400) / 3600.0

    summer = np.clip((MONTH_FACTOR[month - 1] - 1.0) * 4.0, 0, 1) * np.isin(month, [6, 7, 8, 9])
    winter = np.clip((MONTH_FACTOR[month - 1] - 1.0) * 3.0, 0, 1) * np.isin(
        month, [11, 12, 1, 2, 3]
    )
    local_hours = hours[None, :] + traits.habit_shift_h[:, None]
    shape = _daily_shape(local_hours, weekend, summer[None, :], winter[None, :])
    # Normalise so a day's shape sums to one day's share of the annual use.
    per_day_norm = shape.mean(axis=1, keepdims=True) * (24 * 60 / interval_minutes)
    daily_kwh = (traits.annual_kwh / 365.0)[:, None] * MONTH_FACTOR[month - 1][None, :]
    day_noise = rng.lognormal(0.0, 0.15, (n, days.size))[:, day_of_interval]
    cell_noise = rng.lognormal(-0.06, 0.35, (n, n_intervals))
    load_wh = shape / per_day_norm * daily_kwh * 1000.0 * day_noise * cell_noise

    night = _bump(hours, 3.0, 1.3)[None, :] * traits.all_electric[:, None]
    load_wh += night * 1.2 * 1000.0 * interval_minutes / 60.0  # heat-pump water heater

    clearness_day = rng.beta(4.0, 2.0, days.size)[day_of_interval]
    clouds = np.clip(rng.normal(1.0, 0.12, (n, n_intervals)), 0.3, 1.2)
    pv_wh = (
        traits.pv_kw[:, None]
        * 1000.0
        * (interval_minutes / 60.0)
        * 0.8
        * _pv_shape(hours, doy[day_of_interval])[None, :]
        * clearness_day[None, :]
        * clouds
    )
    net = np.rint(load_wh - pv_wh).astype(np.int64)
    return LoadProfiles(ends, np.maximum(net, 0), np.maximum(-net, 0))
