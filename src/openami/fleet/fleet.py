"""The fleet: every meter's state, column by column, for a million meters in one process.

Per meter: its identity and keys, its communication unit (integrated, or a separate part that
can be swapped) and that unit's IP address in 127.0.0.0/8, its area and medium, its clock
(offset and drift), its registers, its disconnect switch and whether it has power. Interval
values are not stored: the load model computes them for any interval, so a meter's 45-day
load profile is produced on demand (``history``) and agrees with what it pushed.

Registers are defined from the scenario's start (the origin): at the origin each meter shows
its base reading; afterwards, the base plus every interval's energy. The fleet advances one
interval at a time for all meters at once (``advance``); ``history`` recomputes the same
numbers for one meter, applying the same windows of no supply (outage, disconnection) and of
reverse flow.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import numpy.typing as npt

from openami.fleet.loadshape import LoadModel, Traits, draw_traits
from openami.fleet.scenario import MEDIA, Area, AreaKind, Scenario
from openami.protocols.dlms.security import SuiteZero
from openami.transport.memory import Address

__all__ = [
    "ADDRESS_BASE",
    "MEDIA",
    "PROFILE_DAYS",
    "STATUS_CLOCK_INVALID",
    "STATUS_POWER_DOWN",
    "Fleet",
    "IntervalValues",
    "MeterHistory",
    "MeterIdentity",
    "ip_text",
]

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

MANUFACTURER = b"OAM"  # three-letter manufacturer flag at the head of every system title
DLMS_PORT = 4059
ADDRESS_BASE = 0x7F010000  # communication unit 1 is 127.1.0.1; the head-end keeps 127.0.0.x
PROFILE_DAYS = 45  # depth of each meter's load profile buffer
# AMR profile status bits (DLMS standard meaning)
STATUS_CLOCK_INVALID = 0x02
STATUS_POWER_DOWN = 0x80


def ip_text(ip: int) -> str:
    return f"{ip >> 24 & 255}.{ip >> 16 & 255}.{ip >> 8 & 255}.{ip & 255}"


@dataclass(frozen=True)
class MeterIdentity:
    """What the utility's key shipment says about one meter (secrets kept out of repr)."""

    meter_id: int
    serial: str
    system_title: bytes
    address: Address
    ek: bytes = field(repr=False)
    ak: bytes = field(repr=False)
    kek: bytes = field(repr=False)


@dataclass(frozen=True)
class IntervalValues:
    """One interval of the whole fleet, as the meters captured it."""

    number: int  # the interval END is number * step seconds (Unix time)
    import_wh: IntArray
    export_wh: IntArray
    import_register: IntArray
    export_register: IntArray
    status: npt.NDArray[np.uint8]


@dataclass(frozen=True)
class MeterHistory:
    """One meter's load profile over a range of intervals (what its buffer holds)."""

    numbers: IntArray
    import_wh: IntArray
    export_wh: IntArray
    import_register: IntArray
    export_register: IntArray
    status: npt.NDArray[np.uint8]


Window = list[int]  # [first interval number, last interval number or -1 while open]


class Fleet:
    """All meters of a scenario; index ``i`` is meter id ``i + 1``."""

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        seed = scenario.seed
        rng = np.random.default_rng(seed)
        self.step_s = scenario.interval_minutes * 60
        self.interval_s = self.step_s
        self.start = scenario.start
        start_s = int(scenario.start.timestamp())
        if start_s % self.step_s:
            raise ValueError("the scenario must start on an interval boundary")
        self.origin = start_s // self.step_s  # number of the interval that ENDS at the start
        self.now = self.origin  # the last closed interval
        n = scenario.meters
        self.n = n
        self.port = DLMS_PORT  # every unit listens on it, at its own address
        self.meter_ids = np.arange(1, n + 1, dtype=np.int64)

        parts: list[Traits] = []
        area_index, medium, positions, separated = [], [], [], []
        for k, area in enumerate(scenario.area):
            parts.append(draw_traits(area.meters, rng, area.trait_mix()))
            area_index.append(np.full(area.meters, k, dtype=np.int16))
            area_media, area_positions = _layout(area, rng)
            medium.append(area_media)
            positions.append(area_positions)
            separated.append(rng.random(area.meters) < area.separated_share)
        self.traits = Traits.concat(parts)
        self.area = np.concatenate(area_index)
        self.medium = np.concatenate(medium)
        self.position_m = np.concatenate(positions)
        self.separated = np.concatenate(separated)
        self.load = LoadModel(self.traits, seed, self.step_s)

        self._keys = rng.integers(0, 256, size=(n, 48), dtype=np.uint8)
        # Communication units: unit u has address ADDRESS_BASE + u; swaps hand out new units.
        self.comm_unit = np.arange(1, n + 1, dtype=np.int64)
        self._meter_of_unit = np.concatenate([[-1], np.arange(n, dtype=np.int64)])
        self.next_comm_unit = n + 1

        self.drift_ppm = rng.normal(0.0, 5.0, n)  # quartz clocks: a few ppm either way
        self.clock_offset_s = rng.normal(0.0, 0.5, n)
        self.clock_shift = np.zeros(n, dtype=np.int64)  # whole intervals, after a clock fault
        self.clock_fault = np.zeros(n, dtype=bool)
        self.powered = np.ones(n, dtype=bool)
        self.connected = np.ones(n, dtype=bool)
        # the ampere contract: at least what the household's appliances need at once (a
        # breaker set lower would trip), sometimes more
        drawn = rng.choice(np.array([30, 40, 50, 60]), n)
        tr0 = self.traits
        size = tr0.household_size.astype(np.int64)
        needed = np.select([size <= 1, size == 2, size <= 4], [30, 40, 50], 60)
        needed = np.where(tr0.all_electric, 60, needed)
        # shops and offices: a low-voltage power contract sized for their peak, up to six
        # times their average draw over a day (open hours, air conditioning), in 10 A steps
        shop_amps = np.ceil(tr0.base_kwh_day / 24.0 * 6.0 * 1000.0 / 100.0 / 10.0) * 10.0
        needed = np.where(size == 0, np.maximum(shop_amps, 60), needed)
        self.contract_amps = np.maximum(drawn, needed).astype(np.int16)

        # Every meter has been in service for a while: its registers stay above zero over the
        # 45-day buffer before the origin too. Import: at least 45 days of the most its traits
        # can draw in the hardest weather; export: a panel at nameplate power around the clock.
        tr = self.traits
        day_kwh = tr.base_kwh_day + 24.0 * (20.0 * tr.heat_kw_per_c + 12.0 * tr.cool_kw_per_c)
        day_kwh = day_kwh + 4.0 * tr.all_electric
        self.import_base = rng.integers(1_000_000, 30_000_000, n, dtype=np.int64)
        self.import_base += np.ceil(day_kwh * 1000.0 * PROFILE_DAYS).astype(np.int64)
        self.export_base = np.where(
            tr.pv_kw > 0, rng.integers(500_000, 10_000_000, n, dtype=np.int64), 0
        )
        self.export_base += np.ceil(tr.pv_kw * 24_000.0 * PROFILE_DAYS).astype(np.int64)
        self.import_register = self.import_base.copy()
        self.export_register = self.export_base.copy()
        # co-metering: gas and water meters wired to the electric meter's communication unit
        self.utility_meters = np.flatnonzero(self.traits.has_gas | self.traits.has_water)
        self.gas_index = np.where(
            self.traits.has_gas, rng.integers(0, 5_000_000, n, dtype=np.int64), 0
        )
        self.water_index = np.where(
            self.traits.has_water, rng.integers(0, 5_000_000, n, dtype=np.int64), 0
        )
        self.invocation_counter = np.zeros(n, dtype=np.int64)  # meter -> head-end
        self.last_client_counter = np.full(n, -1, dtype=np.int64)  # head-end -> meter
        # sparse windows, per meter: no power, switch open, and reverse flow
        self.outage_windows: dict[int, list[Window]] = {}
        self.open_windows: dict[int, list[Window]] = {}
        self.reverse_windows: dict[int, list[Window]] = {}
        self.clock_windows: dict[int, list[Window]] = {}  # from a clock error on (never closed)
        self._reverse_now = np.zeros(n, dtype=bool)

    @classmethod
    def simple(
        cls,
        n: int,
        start: datetime,
        seed: int = 1,
        interval_minutes: int = 30,
        kind: AreaKind = AreaKind.SUBURBAN,
    ) -> Fleet:
        """A one-area fleet (tests, lab meters)."""
        area = Area(name="area", kind=kind, meters=n)
        return cls(
            Scenario(
                name="simple",
                start=start,
                area=[area],
                seed=seed,
                interval_minutes=interval_minutes,
            )
        )

    # -- identity and keys ---------------------------------------------------------------

    def system_title(self, index: int) -> bytes:
        return MANUFACTURER + int(index + 1).to_bytes(5, "big")

    def serial(self, index: int) -> str:
        return f"OAM{index + 1:010d}"

    def key_columns(self) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]]:
        """EK and AK of every meter, (n, 16) each: for the vectorised push encoder."""
        return self._keys[:, :16], self._keys[:, 16:32]

    def key_shipment(self) -> dict[str, npt.NDArray[np.generic]]:
        """Every meter's identity, keys and address as columns: what the manufacturer hands
        the utility's head-ends (see ``openami.headend.shipment``)."""
        ids = self.meter_ids
        title = np.frombuffer(MANUFACTURER, dtype=np.uint8).astype(np.uint64)
        prefix = (
            (title[0] << np.uint64(56)) | (title[1] << np.uint64(48)) | (title[2] << np.uint64(40))
        )
        return {
            "meter_id": ids.copy(),
            "title": prefix | ids.astype(np.uint64),
            "ek": self._keys[:, :16].copy(),
            "ak": self._keys[:, 16:32].copy(),
            "ip": (ADDRESS_BASE + self.comm_unit).astype(np.uint32),
            "port": np.full(self.n, self.port, dtype=np.uint16),
        }

    def suite(self, index: int) -> SuiteZero:
        return SuiteZero(self._keys[index, :16].tobytes(), self._keys[index, 16:32].tobytes())

    def ip(self, index: int) -> int:
        return ADDRESS_BASE + int(self.comm_unit[index])

    def address(self, index: int) -> Address:
        return (ip_text(self.ip(index)), self.port)

    @property
    def addresses(self) -> list[Address]:
        return [self.address(i) for i in range(self.n)]

    def index_of_ip(self, ip: int) -> int | None:
        unit = ip - ADDRESS_BASE
        if not 0 < unit < self._meter_of_unit.shape[0]:
            return None
        index = int(self._meter_of_unit[unit])
        return None if index < 0 else index

    def index_of(self, address: Address) -> int | None:
        try:
            a, b, c, d = (int(x) for x in address[0].split("."))
        except ValueError:
            return None
        return self.index_of_ip(a << 24 | b << 16 | c << 8 | d)

    def identity(self, i: int) -> MeterIdentity:
        key = self._keys[i]
        return MeterIdentity(
            int(self.meter_ids[i]),
            self.serial(i),
            self.system_title(i),
            self.address(i),
            key[:16].tobytes(),
            key[16:32].tobytes(),
            key[32:].tobytes(),
        )

    def identities(self) -> Iterator[MeterIdentity]:
        """The key shipment handed to the head-end at installation."""
        return (self.identity(i) for i in range(self.n))

    def next_invocation_counter(self, index: int) -> int:
        self.invocation_counter[index] += 1
        return int(self.invocation_counter[index])

    def swap_comm_unit(self, meters: IntArray) -> None:
        """Fit separated meters with new communication units (new addresses); the metering
        part keeps its identity, keys and data."""
        meters = meters[self.separated[meters]]
        units = self.next_comm_unit + np.arange(meters.size, dtype=np.int64)
        self.next_comm_unit += int(meters.size)
        grown = np.full(self.next_comm_unit, -1, dtype=np.int64)
        grown[: self._meter_of_unit.shape[0]] = self._meter_of_unit
        grown[self.comm_unit[meters]] = -1  # the old unit is gone
        grown[units] = meters
        self._meter_of_unit = grown
        self.comm_unit[meters] = units

    # -- time ----------------------------------------------------------------------------

    def interval_end(self, number: int) -> int:
        return number * self.step_s

    def number_of(self, moment: datetime) -> int:
        """The last interval closed at ``moment``."""
        return int(moment.timestamp()) // self.step_s

    # -- supply and flow windows ---------------------------------------------------------

    def _open(self, windows: dict[int, list[Window]], meters: IntArray, first: int) -> None:
        for i in meters.tolist():
            spans = windows.setdefault(i, [])
            if not spans or spans[-1][1] != -1:
                spans.append([first, -1])

    def _close(self, windows: dict[int, list[Window]], meters: IntArray, last: int) -> None:
        for i in meters.tolist():
            spans = windows.get(i)
            if spans and spans[-1][1] == -1:
                spans[-1][1] = last

    def set_power(self, meters: IntArray, on: bool) -> None:
        """Power lost or back for ``meters``; intervals from the next one consume nothing."""
        changed = meters[self.powered[meters] != on]
        self.powered[changed] = on
        self._window(self.outage_windows, changed, not on)

    def set_connected(self, meters: IntArray, on: bool, now: int | None = None) -> None:
        """The disconnect switch (class 70) opened or closed after interval ``now`` (the
        fleet's last closed interval by default; lab meters follow the wall clock instead)."""
        changed = meters[self.connected[meters] != on]
        self.connected[changed] = on
        self._window(self.open_windows, changed, not on, now)

    def _window(
        self,
        windows: dict[int, list[Window]],
        meters: IntArray,
        opening: bool,
        now: int | None = None,
    ) -> None:
        now = self.now if now is None else now
        if opening:
            self._open(windows, meters, now + 1)
        else:
            self._close(windows, meters, now)

    def set_reverse_flow(self, meters: IntArray, on: bool) -> None:
        self._reverse_now[meters] = on
        if on:
            self._open(self.reverse_windows, meters, self.now + 1)
        else:
            self._close(self.reverse_windows, meters, self.now)

    def set_clock_error(self, meters: IntArray, offset_s: float) -> None:
        """The clocks of ``meters`` jump by ``offset_s``: from the next interval their entries
        carry "clock invalid" and are stamped by the wrong clock (whole intervals off)."""
        self.clock_shift[meters] += round(offset_s / self.step_s)
        self.clock_offset_s[meters] += offset_s
        self.clock_fault[meters] = True
        self._open(self.clock_windows, meters, self.now + 1)

    def sync_clock(self, meters: IntArray, offset_s: float = 0.0, now: int | None = None) -> None:
        """The clocks of ``meters`` are set right (a time sync): what is left of their error
        is ``offset_s`` (the set time's own error), drifting on from here; from the interval
        after ``now`` (the fleet's last closed one by default) their entries are valid again
        and stamped by the right clock."""
        now = self.now if now is None else now
        elapsed = self.interval_end(now) - self.start.timestamp()
        # the simulator adds drift since the start to the offset: cancel what has built up
        self.clock_offset_s[meters] = offset_s - self.drift_ppm[meters] * 1e-6 * elapsed
        self.clock_shift[meters] = round(offset_s / self.step_s)
        self.clock_fault[meters] = False
        self._close(self.clock_windows, meters, now)

    @staticmethod
    def _mask(spans: list[Window] | None, numbers: IntArray) -> BoolArray:
        out = np.zeros(numbers.shape, dtype=bool)
        for first, last in spans or ():
            out |= (numbers >= first) & ((numbers <= last) | (last == -1))
        return out

    # -- values --------------------------------------------------------------------------

    def _reverse_wh(self, import_wh: IntArray, export_wh: IntArray) -> tuple[IntArray, IntArray]:
        # miswired or bypassed: the meter sees the household's load flowing backwards
        return np.zeros_like(import_wh), export_wh + import_wh

    def advance(self) -> IntervalValues:
        """Close the next interval for every meter; return what each captured."""
        number = self.now + 1
        block = self.load.energy(np.arange(self.n), np.array([number]), meter_ids=self.meter_ids)
        imp, exp = block.import_wh[:, 0], block.export_wh[:, 0]
        reverse = self._reverse_now
        if reverse.any():
            rev_imp, rev_exp = self._reverse_wh(imp[reverse], exp[reverse])
            imp, exp = imp.copy(), exp.copy()
            imp[reverse], exp[reverse] = rev_imp, rev_exp
        supplied = self.powered & self.connected
        imp = np.where(supplied, imp, 0)
        exp = np.where(supplied, exp, 0)
        self.import_register += imp
        self.export_register += exp
        if (number * self.step_s) % 3600 == 0:
            self._advance_utilities(number)
        self.now = number
        status = np.where(self.powered, 0, STATUS_POWER_DOWN).astype(np.uint8)
        status |= np.where(self.clock_fault, STATUS_CLOCK_INVALID, 0).astype(np.uint8)
        return IntervalValues(
            number, imp, exp, self.import_register.copy(), self.export_register.copy(), status
        )

    def _advance_utilities(self, number: int) -> None:
        """Gas and water indexes move on by the hour that ends with interval ``number``
        (they are read on the hour; the gas and water meters run on their own batteries)."""
        per_hour = max(1, 3600 // self.step_s)
        meters = self.utility_meters
        if meters.size == 0:
            return
        numbers = np.arange(number - per_hour + 1, number + 1, dtype=np.int64)
        gas, water = self.load.utilities(meters, numbers, meter_ids=self.meter_ids[meters])
        self.gas_index[meters] += gas.sum(axis=1)
        self.water_index[meters] += water.sum(axis=1)

    def history(self, index: int, first: int, last: int, now: int | None = None) -> MeterHistory:
        """Meter ``index``'s profile entries for interval numbers ``first..last``, clipped to
        its 45-day buffer and to the intervals closed so far (``now``: the last closed
        interval, the fleet's own by default; lab meters follow the wall clock instead)."""
        now = self.now if now is None else now
        first = max(first, now - self.profile_depth + 1)
        last = min(last, now)
        # registers need every interval between the origin and the range
        lo, hi = min(first, self.origin + 1), max(last, self.origin)
        numbers = np.arange(lo, hi + 1, dtype=np.int64)
        if numbers.size == 0 or first > last:
            empty = np.zeros(0, dtype=np.int64)
            return MeterHistory(empty, empty, empty, empty, empty, np.zeros(0, dtype=np.uint8))
        block = self.load.energy(
            np.array([index]), numbers, meter_ids=self.meter_ids[index : index + 1]
        )
        imp, exp = block.import_wh[0], block.export_wh[0]
        reverse = self._mask(self.reverse_windows.get(index), numbers)
        if reverse.any():
            rev_imp, rev_exp = self._reverse_wh(imp[reverse], exp[reverse])
            imp[reverse], exp[reverse] = rev_imp, rev_exp
        outage = self._mask(self.outage_windows.get(index), numbers)
        off = outage | self._mask(self.open_windows.get(index), numbers)
        imp[off], exp[off] = 0, 0
        after = numbers > self.origin
        imp_reg = self.import_base[index] + _signed_cumsum(imp, after)
        exp_reg = self.export_base[index] + _signed_cumsum(exp, after)
        keep = (numbers >= first) & (numbers <= last)
        status = np.where(outage, STATUS_POWER_DOWN, 0).astype(np.uint8)
        clock_invalid = self._mask(self.clock_windows.get(index), numbers)
        status |= np.where(clock_invalid, STATUS_CLOCK_INVALID, 0).astype(np.uint8)
        return MeterHistory(
            numbers[keep], imp[keep], exp[keep], imp_reg[keep], exp_reg[keep], status[keep]
        )

    @property
    def profile_depth(self) -> int:
        return PROFILE_DAYS * 86_400 // self.step_s

    def energy_delta(self) -> tuple[IntArray, IntArray]:
        """Register change per meter from the origin to now."""
        return self.import_register - self.import_base, self.export_register - self.export_base


def _signed_cumsum(values: IntArray, after: BoolArray) -> IntArray:
    """Register offset from the origin's base at each interval end: + the energy of the
    intervals since the origin, - the energy of the intervals still to come before it."""
    out = np.zeros(values.shape, dtype=np.int64)
    out[after] = np.cumsum(values[after])
    before = ~after
    if before.any():
        vb = values[before]
        # the register at the END of interval k before the origin misses k+1 .. origin
        out[before] = -(np.cumsum(vb[::-1])[::-1] - vb)
    return out


def _layout(
    area: Area, rng: np.random.Generator
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.float64]]:
    """Each meter's medium and position (metres) in ``area``."""
    size = int(area.setting("settlement_size"))
    if size <= 0:
        return _draw_media(area, rng), _place(area, rng)
    return _hamlets(area, size, rng)


def _draw_media(area: Area, rng: np.random.Generator) -> npt.NDArray[np.uint8]:
    p = _media_shares(area)
    return rng.choice(len(MEDIA), size=area.meters, p=p).astype(np.uint8)


def _media_shares(area: Area) -> npt.NDArray[np.float64]:
    shares = area.setting("media")
    p = np.array([float(shares.get(m, 0.0)) for m in MEDIA])
    return np.asarray(p / p.sum(), dtype=np.float64)


def _side_m(area: Area) -> float:
    return float(np.sqrt(area.meters / float(area.setting("density_per_km2")))) * 1000.0


def _place(area: Area, rng: np.random.Generator) -> npt.NDArray[np.float64]:
    """Meters spread over a square whose side follows from the count and the density."""
    return rng.uniform(0.0, _side_m(area), size=(area.meters, 2))


# Houses within a hamlet stand about as close as in a village centre (meters per km2).
VILLAGE_DENSITY_PER_KM2 = 1_000.0
MESH = MEDIA.index("rf_mesh")


def _hamlets(
    area: Area, size: int, rng: np.random.Generator
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.float64]]:
    """Meters gathered in hamlets scattered over the area's square, the medium chosen per
    hamlet: the mesh's share goes to the largest hamlets, where houses hear each other, the
    rest draw from the other media (lone farms end up on the star, not on a mesh of one)."""
    n = area.meters
    side = _side_m(area)
    k = max(1, round(n / size))
    weight = rng.lognormal(0.0, 0.8, k)  # a few villages, many small hamlets
    label = rng.choice(k, size=n, p=weight / weight.sum())
    count = np.bincount(label, minlength=k)
    centre = rng.uniform(0.0, side, size=(k, 2))
    sigma = np.sqrt(np.maximum(count, 1) / (2.0 * np.pi * VILLAGE_DENSITY_PER_KM2)) * 1000.0
    pos = centre[label] + rng.normal(0.0, 1.0, size=(n, 2)) * sigma[label, None]
    positions = np.clip(pos, 0.0, side)

    p = _media_shares(area)
    hamlet_medium = np.full(k, MESH, dtype=np.uint8)
    order = np.argsort(-count, kind="stable")
    before = np.cumsum(count[order]) - count[order]
    rest = order[before >= p[MESH] * n]  # hamlets past the mesh's share of meters
    others = p.copy()
    others[MESH] = 0.0
    if rest.size and others.sum() > 0.0:
        hamlet_medium[rest] = rng.choice(len(MEDIA), size=rest.size, p=others / others.sum())
    return hamlet_medium[label], positions
