"""Japanese residential and small-commercial load, gas and water use, computable on demand.

Every value is a pure function of (fleet seed, meter traits, interval number), so a meter's
load profile can be produced for any interval at any time: in bulk for a whole fleet at one
interval end (the push path), or for one meter over the last 45 days (a head-end collecting a
range again). Nothing is stored per interval.

The model, per meter (``Traits``): residential households of 1-5 persons with Japan's census
shares, or small shops and offices; all-electric homes (heat-pump water heater at night,
electric heating); rooftop PV; air conditioning that answers the day's temperature (cooling
above 26 C, heating below 15 C, while people are in); gas and water meters attached to a
share of meters (co-metering). Per half-hour: a daily shape with morning and evening peaks
(weekday, or holiday-like on weekends, the New Year, Golden Week and Obon), a per-meter shift
of habits, day-to-day and interval-to-interval noise. Weather is shared by the fleet: a daily
mean temperature (Tokyo's climatology plus a persistent anomaly) and a daily clearness for PV.
Energy is whole Wh, volumes whole litres; a meter measures net flow, so import and export
never both appear in one interval.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import numpy.typing as npt

from openami.fleet.noise import hash_normal, hash_uniform

__all__ = [
    "RESIDENTIAL",
    "SMALL_COMMERCIAL",
    "EnergyBlock",
    "LoadModel",
    "TraitMix",
    "Traits",
    "daily_temperature",
    "draw_traits",
]

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

RESIDENTIAL = 0
SMALL_COMMERCIAL = 1
JST_OFFSET_S = 9 * 3600
SIZE_SHARES = np.array([0.38, 0.28, 0.16, 0.13, 0.05])  # 1..5+ person households (census)
# Daily use at mild weather, before air conditioning, by household size (kWh/day).
BASE_KWH_DAY = np.array([4.3, 7.4, 8.6, 9.3, 10.3])
# Litres a day by household size (index 0: a shop or office, then 1..5+ persons).
# Water: Tokyo Waterworks' survey of household use (FY2020: 8.1 14.9 19.9 23.1 27.8 m3 a
# month for 1..5 persons). Gas (13A city gas, at or above 18 C): the size ratios of the
# Ministry of the Environment's household CO2 statistics (FY2022 city-gas CO2 by household
# size), scaled so that a Tokyo mix of households averages Tokyo Gas's ~335 m3 a year per
# household meter once winter heating is added.
WATER_L_DAY = np.array([440.0, 266.0, 490.0, 655.0, 760.0, 915.0])
GAS_L_DAY = np.array([800.0, 390.0, 810.0, 1040.0, 1130.0, 1260.0])
COOLING_ABOVE_C = 26.0
HEATING_BELOW_C = 15.0

# Streams of the counter-based generator: one per random quantity.
_S_TEMP, _S_CLEAR, _S_DAY, _S_CELL, _S_CLOUD, _S_GAS, _S_WATER = range(1, 8)


@dataclass(frozen=True)
class TraitMix:
    """Shares that differ between areas (a city centre has more shops, a suburb more PV)."""

    commercial_share: float = 0.05
    all_electric_share: float = 0.12
    pv_share: float = 0.15
    gas_share: float = 0.45  # of homes that are not all-electric
    water_share: float = 0.25


@dataclass(frozen=True)
class Traits:
    """One column per trait, one row per meter."""

    kind: npt.NDArray[np.uint8]  # RESIDENTIAL or SMALL_COMMERCIAL
    household_size: npt.NDArray[np.int8]  # persons (0 for shops and offices)
    base_kwh_day: FloatArray
    all_electric: BoolArray
    pv_kw: FloatArray  # 0 where there is no PV
    habit_shift_h: FloatArray  # how much earlier/later this home lives, hours
    cool_kw_per_c: FloatArray  # air-conditioning power per degree above 26 C
    heat_kw_per_c: FloatArray  # electric heating power per degree below 15 C
    has_gas: BoolArray
    has_water: BoolArray

    def __len__(self) -> int:
        return int(self.kind.shape[0])

    @staticmethod
    def concat(parts: list[Traits]) -> Traits:
        return Traits(
            *(np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(Traits))
        )


def draw_traits(n: int, rng: np.random.Generator, mix: TraitMix | None = None) -> Traits:
    mix = mix or TraitMix()
    commercial = rng.random(n) < mix.commercial_share
    size = (rng.choice(5, size=n, p=SIZE_SHARES) + 1).astype(np.int8)
    size[commercial] = 0
    scale = rng.lognormal(0.0, 0.25, n)
    base = np.where(commercial, rng.uniform(30.0, 150.0, n), BASE_KWH_DAY[size - 1] * scale)
    all_electric = ~commercial & (rng.random(n) < mix.all_electric_share)
    base = np.where(all_electric, base * 1.15, base)
    has_pv = rng.random(n) < mix.pv_share
    pv_kw = np.where(has_pv, rng.uniform(3.0, 7.0, n).round(1), 0.0)
    pv_kw = np.where(commercial & has_pv, pv_kw * 3.0, pv_kw)
    shift = np.where(commercial, rng.normal(0.0, 0.3, n), rng.normal(0.0, 0.6, n))
    rooms = np.where(commercial, 0.0, 0.03 + 0.02 * size) * rng.lognormal(0.0, 0.3, n)
    cool = np.where(commercial, base * 0.02, rooms)
    # homes that are not all-electric heat partly with gas or kerosene
    heat = np.where(all_electric, rooms * 0.9, rooms * 0.35)
    heat = np.where(commercial, base * 0.012, heat)
    has_gas = ~all_electric & (rng.random(n) < mix.gas_share)
    has_water = rng.random(n) < mix.water_share
    return Traits(
        commercial.astype(np.uint8),
        size,
        base,
        all_electric,
        pv_kw,
        shift,
        cool,
        heat,
        has_gas,
        has_water,
    )


def _bump(hours: FloatArray, centre: float, width: float) -> FloatArray:
    # circular distance so that bumps near midnight wrap around
    d = np.abs(((hours - centre) + 12.0) % 24.0 - 12.0)
    return np.asarray(np.exp(-0.5 * (d / width) ** 2))


def _home_shape(hours: FloatArray, holiday: BoolArray) -> FloatArray:
    weekday = 0.30 + 0.85 * _bump(hours, 7.0, 1.0) + 0.30 * _bump(hours, 12.5, 1.5)
    weekday = weekday + 1.30 * _bump(hours, 19.5, 2.0)
    rest = 0.32 + 0.55 * _bump(hours, 8.5, 1.5) + 0.70 * _bump(hours, 13.0, 2.5)
    rest = rest + 1.20 * _bump(hours, 19.0, 2.2)
    return np.asarray(np.where(holiday, rest, weekday))


def _shop_shape(hours: FloatArray, holiday: BoolArray) -> FloatArray:
    # open roughly 9:00-20:00 on working days; lights and fridges only when closed
    open_hours = 1.0 / (1.0 + np.exp(-(hours - 8.5) * 3.0)) / (1.0 + np.exp((hours - 20.0) * 3.0))
    return np.asarray(0.3 + np.where(holiday, 0.25, 1.0) * 1.6 * open_hours)


def _presence(hours: FloatArray, holiday: BoolArray, commercial: BoolArray) -> FloatArray:
    """Share of the air-conditioning load that runs: people at home, or the shop open."""
    home = 0.25 + 0.5 * _bump(hours, 7.0, 1.5) + 0.75 * _bump(hours, 21.0, 3.0)
    home = (
        home
        + 0.45 * _bump(hours, 2.0, 2.5)
        + np.where(holiday, 0.45, 0.1) * _bump(hours, 14.0, 3.0)
    )
    shop = np.where(holiday, 0.1, 1.0) * _bump(hours, 14.0, 3.5)
    return np.asarray(np.clip(np.where(commercial, shop, home), 0.0, 1.0))


def _gas_shape(hours: FloatArray) -> FloatArray:
    # cooking in the morning and evening, the bath in the evening
    return 0.1 + 0.5 * _bump(hours, 7.5, 1.0) + 1.0 * _bump(hours, 20.5, 1.5)


def _water_shape(hours: FloatArray) -> FloatArray:
    return 0.2 + 1.0 * _bump(hours, 7.0, 1.2) + 1.2 * _bump(hours, 20.5, 2.0)


def _mean_over_day(shape: FloatArray) -> float:
    return float(shape.mean())


_GRID: FloatArray = np.asarray((np.arange(288) + 0.5) / 12.0, dtype=np.float64)  # 5-min grid, h
_HOME_MEAN = (
    _mean_over_day(_home_shape(_GRID, np.zeros(1, bool))),
    _mean_over_day(_home_shape(_GRID, np.ones(1, bool))),
)
_SHOP_WORKDAY_MEAN = _mean_over_day(_shop_shape(_GRID, np.zeros(1, bool)))


def _holiday_like(local_day: IntArray) -> BoolArray:
    """Weekends and the periods when Japan mostly stays at home (New Year, Golden Week,
    Obon). A load model needs behaviour, not the legal calendar of public holidays."""
    weekday = (local_day + 3) % 7  # 1970-01-01 was a Thursday: Monday == 0
    dates = np.datetime64("1970-01-01", "D") + local_day.astype("timedelta64[D]")
    month = (dates.astype("datetime64[M]").astype(np.int64) % 12) + 1
    day = (dates - dates.astype("datetime64[M]")).astype(np.int64) + 1
    md = month * 100 + day
    season = (md >= 1229) | (md <= 103) | np.isin(md, [429, 503, 504, 505])
    season |= (md >= 813) & (md <= 816)
    return np.asarray((weekday >= 5) | season)


def _day_of_year(local_day: IntArray) -> FloatArray:
    dates = np.datetime64("1970-01-01", "D") + local_day.astype("timedelta64[D]")
    return np.asarray((dates - dates.astype("datetime64[Y]")).astype(np.float64) + 1.0)


# Tokyo's daily mean temperature over the year: three harmonics of the day of the year fitted
# to JMA's 1991-2020 monthly normals (5.4 6.1 9.4 14.3 18.8 21.9 25.7 26.9 23.3 18.0 12.5
# 7.7 C); every month's mean is within 0.35 C. One cosine cannot do it: Tokyo is coldest in
# late January but warmest in early August, and June is cooled by the rainy season.
_TEMP_MEAN_C = 15.89
_TEMP_HARMONICS = ((-9.40, -4.64), (-0.65, 0.47), (0.33, -0.44))


def daily_temperature(seed: int, local_day: IntArray) -> FloatArray:
    """Daily mean temperature in Tokyo (C): climatology (5.4 C in January, 26.9 C in August)
    plus an anomaly that persists over a few days, the same for the whole fleet."""
    angle = 2.0 * np.pi * (_day_of_year(local_day) - 1.0) / 365.0
    clim = np.full(angle.shape, _TEMP_MEAN_C)
    for k, (a, b) in enumerate(_TEMP_HARMONICS, start=1):
        clim = clim + a * np.cos(k * angle) + b * np.sin(k * angle)
    anomaly = sum(hash_normal(seed, _S_TEMP, local_day + k) for k in (-2, -1, 0)) / np.sqrt(3)
    return np.asarray(clim + 2.2 * anomaly)


def _pv_shape(hours: FloatArray, doy: FloatArray) -> FloatArray:
    """Fraction of nameplate power at local ``hours`` in Tokyo (35.7 N)."""
    daylength = 12.2 + 2.3 * np.sin(2 * np.pi * (doy - 80) / 365.0)
    sunrise = 11.7 - daylength / 2
    phase = (hours - sunrise) / daylength
    lit = (phase > 0) & (phase < 1)
    elevation = 0.55 + 0.25 * np.sin(2 * np.pi * (doy - 80) / 365.0)
    return np.asarray(np.where(lit, np.sin(np.pi * np.clip(phase, 0, 1)) ** 1.4 * elevation, 0))


@dataclass(frozen=True)
class EnergyBlock:
    """Values for meters x intervals: Wh both ways, and litres of gas and water."""

    import_wh: IntArray
    export_wh: IntArray
    gas_l: IntArray | None = None
    water_l: IntArray | None = None


class LoadModel:
    """Interval values of a fleet's meters, computed on demand for any interval."""

    def __init__(self, traits: Traits, seed: int, step_s: int = 1800) -> None:
        if step_s <= 0 or 86_400 % step_s:
            raise ValueError(f"interval {step_s} s does not divide a day")
        self.traits = traits
        self.seed = seed
        self.step_s = step_s

    def energy(
        self, meters: IntArray, numbers: IntArray, *, meter_ids: IntArray, utilities: bool = False
    ) -> EnergyBlock:
        """Values of ``meters`` (row indices into the traits) for the intervals whose END is
        ``number * step_s`` (Unix seconds). ``meter_ids`` key the noise, so a meter keeps its
        values whatever block it is computed in. Shapes: (len(meters), len(numbers))."""
        tr = self.traits
        step = self.step_s
        mids = numbers.astype(np.int64) * step - step // 2 + JST_OFFSET_S
        local_day = mids // 86_400
        hours = np.asarray((mids % 86_400) / 3600.0, dtype=np.float64)
        holiday = _holiday_like(local_day)[None, :]
        doy = _day_of_year(local_day)
        temp_day = daily_temperature(self.seed, local_day)
        # the day's own course of temperature, warmest at 14:00
        temp = (temp_day + 4.0 * np.cos(2.0 * np.pi * (hours - 14.0) / 24.0))[None, :]

        commercial = (tr.kind[meters] == SMALL_COMMERCIAL)[:, None]
        local_hours = np.asarray(hours[None, :] + tr.habit_shift_h[meters][:, None], np.float64)
        home = _home_shape(local_hours, holiday) / np.where(holiday, _HOME_MEAN[1], _HOME_MEAN[0])
        # a shop or office closed on a holiday uses less that day, not the same spread thinner
        shop = _shop_shape(local_hours, holiday) / _SHOP_WORKDAY_MEAN
        shape = np.where(commercial, shop, home)
        lighting = 1.0 + 0.08 * np.cos(2.0 * np.pi * (doy - 355.0) / 365.0)
        ids = meter_ids[:, None]
        day_noise = np.exp(0.15 * hash_normal(self.seed, _S_DAY, ids, local_day[None, :]))
        cell_noise = np.exp(0.35 * hash_normal(self.seed, _S_CELL, ids, numbers[None, :]) - 0.06)
        hours_per_step = step / 3600.0
        base_wh = tr.base_kwh_day[meters][:, None] * 1000.0 / 24.0 * hours_per_step
        load_wh = base_wh * shape * lighting[None, :] * day_noise * cell_noise

        presence = _presence(local_hours, holiday, commercial)
        cooling = tr.cool_kw_per_c[meters][:, None] * np.maximum(temp - COOLING_ABOVE_C, 0.0)
        heating = tr.heat_kw_per_c[meters][:, None] * np.maximum(HEATING_BELOW_C - temp, 0.0)
        load_wh += (cooling + heating) * presence * 1000.0 * hours_per_step * cell_noise

        night = _bump(hours, 3.0, 1.3)[None, :] * tr.all_electric[meters][:, None]
        load_wh += night * 1.2 * 1000.0 * hours_per_step  # heat-pump water heater

        pv_kw = tr.pv_kw[meters]
        if pv_kw.any():
            clear_u = hash_uniform(self.seed, _S_CLEAR, local_day)
            clearness = (0.25 + 0.75 * np.sqrt(clear_u))[None, :]
            clouds = np.clip(
                1.0 + 0.12 * hash_normal(self.seed, _S_CLOUD, ids, numbers[None, :]), 0.3, 1.2
            )
            sun = _pv_shape(hours, doy)[None, :]
            load_wh = load_wh - pv_kw[:, None] * 1000.0 * hours_per_step * 0.8 * sun * (
                clearness * clouds
            )
        net = np.rint(load_wh).astype(np.int64)
        block = EnergyBlock(np.maximum(net, 0), np.maximum(-net, 0))
        if not utilities:
            return block
        return EnergyBlock(
            block.import_wh,
            block.export_wh,
            self._gas(meters, ids, numbers, hours, holiday, temp_day),
            self._water(meters, ids, numbers, hours, holiday),
        )

    def utilities(
        self, meters: IntArray, numbers: IntArray, *, meter_ids: IntArray
    ) -> tuple[IntArray, IntArray]:
        """Gas and water (litres) of ``meters`` over the intervals ``numbers``, without the
        electricity: the co-metered indexes advance by these. Zero where a meter has none."""
        step = self.step_s
        mids = numbers.astype(np.int64) * step - step // 2 + JST_OFFSET_S
        local_day = mids // 86_400
        hours = np.asarray((mids % 86_400) / 3600.0, dtype=np.float64)
        holiday = _holiday_like(local_day)[None, :]
        temp_day = daily_temperature(self.seed, local_day)
        ids = meter_ids[:, None]
        return (
            self._gas(meters, ids, numbers, hours, holiday, temp_day),
            self._water(meters, ids, numbers, hours, holiday),
        )

    def _gas(
        self,
        meters: IntArray,
        ids: IntArray,
        numbers: IntArray,
        hours: FloatArray,
        holiday: BoolArray,
        temp_day: FloatArray,
    ) -> IntArray:
        tr = self.traits
        size = tr.household_size[meters].astype(np.int64)[:, None]
        daily_l = GAS_L_DAY[size] * (1.0 + 0.05 * np.maximum(18.0 - temp_day, 0.0))
        shape = _gas_shape(hours) / (_gas_shape(_GRID).mean() * 24.0)
        noise = np.exp(0.4 * hash_normal(self.seed, _S_GAS, ids, numbers[None, :]) - 0.08)
        litres = daily_l * shape[None, :] * (self.step_s / 3600.0) * noise
        return np.where(tr.has_gas[meters][:, None], np.rint(litres), 0).astype(np.int64)

    def _water(
        self,
        meters: IntArray,
        ids: IntArray,
        numbers: IntArray,
        hours: FloatArray,
        holiday: BoolArray,
    ) -> IntArray:
        tr = self.traits
        daily_l = WATER_L_DAY[tr.household_size[meters].astype(np.int64)][:, None]
        shape = _water_shape(hours) / (_water_shape(_GRID).mean() * 24.0)
        noise = np.exp(0.5 * hash_normal(self.seed, _S_WATER, ids, numbers[None, :]) - 0.125)
        litres = daily_l * shape[None, :] * (self.step_s / 3600.0) * noise
        return np.where(tr.has_water[meters][:, None], np.rint(litres), 0).astype(np.int64)
