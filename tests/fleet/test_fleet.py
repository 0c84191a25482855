from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import numpy.typing as npt
import pytest

from openami.fleet.fleet import (
    PROFILE_DAYS,
    STATUS_CLOCK_INVALID,
    STATUS_POWER_DOWN,
    Fleet,
    IntervalValues,
)
from openami.fleet.scenario import Area, AreaKind, Scenario

JST = timezone(timedelta(hours=9))
START = datetime(2026, 8, 3, tzinfo=JST)  # on the hour: gas and water close at every 2nd step


def one(i: int) -> npt.NDArray[np.int64]:
    return np.array([i], dtype=np.int64)


@pytest.fixture
def fleet() -> Fleet:
    # rural: a quarter of the homes have PV, so every kind of meter is present
    return Fleet.simple(40, START, seed=7, kind=AreaKind.RURAL)


def _run(fleet: Fleet, steps: int) -> list[IntervalValues]:
    return [fleet.advance() for _ in range(steps)]


def _column(values: list[IntervalValues], name: str, i: int) -> list[int]:
    return [int(getattr(v, name)[i]) for v in values]


def _assert_history_matches(fleet: Fleet, values: list[IntervalValues]) -> None:
    """Every meter's profile over the advanced intervals is what ``advance`` captured."""
    first, last = values[0].number, values[-1].number
    for i in range(fleet.n):
        h = fleet.history(i, first, last)
        assert h.numbers.tolist() == [v.number for v in values]
        for name in ("import_wh", "export_wh", "import_register", "export_register", "status"):
            assert getattr(h, name).tolist() == _column(values, name, i), (i, name)


def test_intervals_are_numbered_by_their_end(fleet: Fleet) -> None:
    assert fleet.interval_end(fleet.origin) == int(START.timestamp())
    assert fleet.now == fleet.origin
    values = fleet.advance()
    assert values.number == fleet.origin + 1 == fleet.now
    assert fleet.interval_end(values.number) == int(START.timestamp()) + 1800
    assert fleet.number_of(START + timedelta(minutes=59)) == fleet.origin + 1
    with pytest.raises(ValueError, match="boundary"):
        Fleet.simple(1, START + timedelta(minutes=10))


def test_registers_grow_by_exactly_the_interval_energy(fleet: Fleet) -> None:
    imp, exp = fleet.import_base.copy(), fleet.export_base.copy()
    assert np.array_equal(fleet.import_register, imp)
    for _ in range(12):
        values = fleet.advance()
        assert np.array_equal(values.import_register - imp, values.import_wh)
        assert np.array_equal(values.export_register - exp, values.export_wh)
        assert np.array_equal(values.import_register, fleet.import_register)
        imp, exp = values.import_register, values.export_register
        # a meter measures net flow: never both ways in one interval
        assert not np.any((values.import_wh > 0) & (values.export_wh > 0))
    delta_imp, delta_exp = fleet.energy_delta()
    assert np.array_equal(delta_imp, fleet.import_register - fleet.import_base)
    assert delta_imp.sum() > 0
    assert delta_exp[fleet.traits.pv_kw == 0].sum() == 0


def test_history_is_what_advance_produced(fleet: Fleet) -> None:
    _assert_history_matches(fleet, _run(fleet, 30))


def test_history_agrees_across_outage_open_switch_and_reverse_flow(fleet: Fleet) -> None:
    no_pv = np.flatnonzero(fleet.traits.pv_kw == 0)
    down, opened, reverse, both = (one(int(i)) for i in no_pv[:4])
    values = _run(fleet, 3)
    fleet.set_power(down, False)
    fleet.set_connected(opened, False)
    fleet.set_reverse_flow(reverse, True)
    fleet.set_reverse_flow(both, True)
    fleet.set_power(both, False)
    values += _run(fleet, 4)  # intervals 4..7 of the run: no supply / reverse flow
    fleet.set_power(down, True)
    fleet.set_power(both, True)
    fleet.set_connected(opened, True)
    values += _run(fleet, 3)  # 8..10: supply back, reverse flow goes on
    fleet.set_reverse_flow(reverse, False)
    fleet.set_reverse_flow(both, False)
    values += _run(fleet, 3)
    _assert_history_matches(fleet, values)

    off = slice(3, 7)
    for m in (down, opened, both):
        i = int(m[0])
        assert _column(values, "import_wh", i)[off] == [0] * 4
        assert _column(values, "export_wh", i)[off] == [0] * 4
        registers = _column(values, "import_register", i)
        assert len(set(registers[2:7])) == 1  # the register stands still without supply
    for m in (down, opened):
        registers = _column(values, "import_register", int(m[0]))
        assert registers[7] > registers[6]  # and moves again after
    assert _column(values, "status", int(down[0]))[off] == [STATUS_POWER_DOWN] * 4
    assert _column(values, "status", int(opened[0]))[off] == [0] * 4  # switch open, power on
    r = int(reverse[0])
    flowing = slice(3, 10)
    assert _column(values, "import_wh", r)[flowing] == [0] * 7
    assert all(wh > 0 for wh in _column(values, "export_wh", r)[flowing])  # no PV, yet export
    assert _column(values, "export_wh", r)[:3] == [0] * 3
    assert _column(values, "export_wh", r)[10:] == [0] * 3
    assert _column(values, "import_wh", int(both[0]))[7:10] == [0] * 3


def test_clock_error_flags_history_like_the_pushes(fleet: Fleet) -> None:
    values = _run(fleet, 2)
    fleet.set_clock_error(one(5), 3600.0)
    values += _run(fleet, 3)
    _assert_history_matches(fleet, values)
    assert _column(values, "status", 5) == [0, 0] + [STATUS_CLOCK_INVALID] * 3
    assert int(fleet.clock_shift[5]) == 2


def test_history_before_the_origin_runs_the_registers_backwards(fleet: Fleet) -> None:
    _run(fleet, 6)
    for i in range(fleet.n):
        h = fleet.history(i, fleet.origin - 100, fleet.now)
        assert h.numbers[0] == fleet.origin - 100
        assert h.numbers.tolist() == list(range(fleet.origin - 100, fleet.now + 1))
        # every step of a register, before and after the origin, is that interval's energy
        assert np.array_equal(np.diff(h.import_register), h.import_wh[1:])
        assert np.array_equal(np.diff(h.export_register), h.export_wh[1:])
        at_origin = int(np.flatnonzero(h.numbers == fleet.origin)[0])
        assert h.import_register[at_origin] == fleet.import_base[i]
        assert h.export_register[at_origin] == fleet.export_base[i]
        assert h.import_register[-1] == fleet.import_register[i]
        # the same intervals computed alone give the same values
        early = fleet.history(i, fleet.origin - 60, fleet.origin - 50)
        assert np.array_equal(early.import_register, h.import_register[40:51])


def test_registers_never_go_below_zero_over_the_buffer_before_the_origin() -> None:
    # a winter start and areas full of shops, heat pumps and PV: the hardest case
    areas = [
        Area(name=kind.value, kind=kind, meters=150)
        for kind in (AreaKind.UNDERGROUND_CITY, AreaKind.RURAL, AreaKind.SUBURBAN)
    ]
    winter = Fleet(Scenario(name="w", start=datetime(2027, 2, 1, tzinfo=JST), area=areas, seed=5))
    numbers = np.arange(winter.origin - winter.profile_depth + 1, winter.origin + 1)
    block = winter.load.energy(np.arange(winter.n), numbers, meter_ids=winter.meter_ids)
    assert np.all(winter.import_base >= block.import_wh.sum(axis=1))
    assert np.all(winter.export_base >= block.export_wh.sum(axis=1))
    worst = int(np.argmin(winter.import_base - block.import_wh.sum(axis=1)))
    h = winter.history(worst, 0, winter.now)
    assert h.numbers.size == winter.profile_depth
    assert h.import_register.min() >= 0 and h.export_register.min() >= 0


def test_history_is_clipped_to_45_days_and_to_closed_intervals(fleet: Fleet) -> None:
    _run(fleet, 3)
    depth = PROFILE_DAYS * 48
    assert fleet.profile_depth == depth
    h = fleet.history(0, 0, fleet.now + 100)
    assert h.numbers.size == depth
    assert h.numbers[0] == fleet.now - depth + 1
    assert h.numbers[-1] == fleet.now
    assert fleet.history(0, fleet.now + 1, fleet.now + 10).numbers.size == 0
    assert fleet.history(0, fleet.now - depth - 10, fleet.now - depth).numbers.size == 0
    # a lab meter's own clock: intervals the fleet never advanced through exist all the same
    later = fleet.history(0, 0, fleet.now + 50, now=fleet.now + 50)
    assert later.numbers[-1] == fleet.now + 50
    assert later.numbers[0] == fleet.now + 50 - depth + 1
    assert np.array_equal(later.import_wh[: depth - 50], h.import_wh[50:])


def test_swapping_a_communication_unit_changes_only_the_address(fleet: Fleet) -> None:
    separated = int(np.flatnonzero(fleet.separated)[0])
    integrated = int(np.flatnonzero(~fleet.separated)[0])
    _run(fleet, 4)
    before = {i: (fleet.identity(i), fleet.history(i, 0, fleet.now)) for i in range(fleet.n)}
    old_address = fleet.address(separated)
    fleet.swap_comm_unit(np.array([separated, integrated], dtype=np.int64))
    new_address = fleet.address(separated)
    assert new_address != old_address
    assert fleet.address(integrated) == before[integrated][0].address  # no unit to swap
    assert fleet.index_of(new_address) == separated
    assert fleet.index_of(old_address) is None  # the old unit is gone
    for i in range(fleet.n):
        ident, history = before[i]
        now = fleet.identity(i)
        assert (now.meter_id, now.serial, now.system_title) == (
            ident.meter_id,
            ident.serial,
            ident.system_title,
        )
        assert (now.ek, now.ak, now.kek) == (ident.ek, ident.ak, ident.kek)
        after = fleet.history(i, 0, fleet.now)
        assert np.array_equal(after.import_register, history.import_register)
        if i != separated:
            assert now.address == ident.address
            assert fleet.index_of(now.address) == i
    assert [fleet.index_of(a) for a in fleet.addresses] == list(range(fleet.n))
    assert fleet.index_of(("10.0.0.1", 4059)) is None
    assert fleet.index_of(("not-an-ip", 4059)) is None


def test_gas_and_water_advance_on_the_hour_only_where_a_meter_has_them(fleet: Fleet) -> None:
    gas, water = fleet.gas_index.copy(), fleet.water_index.copy()
    has_gas, has_water = fleet.traits.has_gas, fleet.traits.has_water
    assert has_gas.any() and (~has_gas).any() and has_water.any() and (~has_water).any()
    assert np.all(gas[~has_gas] == 0) and np.all(water[~has_water] == 0)
    fleet.advance()  # 00:30: not on the hour
    assert np.array_equal(fleet.gas_index, gas) and np.array_equal(fleet.water_index, water)
    values = fleet.advance()  # 01:00: the hour that ends here
    assert fleet.interval_end(values.number) % 3600 == 0
    hour = np.array([values.number - 1, values.number], dtype=np.int64)
    used_gas, used_water = fleet.load.utilities(np.arange(fleet.n), hour, meter_ids=fleet.meter_ids)
    assert np.array_equal(fleet.gas_index - gas, used_gas.sum(axis=1))
    assert np.array_equal(fleet.water_index - water, used_water.sum(axis=1))
    assert np.all(fleet.gas_index[~has_gas] == 0) and np.all(fleet.water_index[~has_water] == 0)
    assert np.all(fleet.gas_index[has_gas] >= gas[has_gas])
    assert (fleet.gas_index[has_gas] > gas[has_gas]).any()
    assert (fleet.water_index[has_water] > water[has_water]).any()
    # and utilities are read from the meters' own batteries: an outage does not stop them
    fleet.set_power(np.flatnonzero(has_gas), False)
    fleet.advance()
    before = fleet.gas_index.copy()
    fleet.advance()
    assert (fleet.gas_index[has_gas] > before[has_gas]).any()


def test_the_seed_decides_everything() -> None:
    a, b = (Fleet.simple(30, START, seed=21) for _ in range(2))
    c = Fleet.simple(30, START, seed=22)
    assert [x.ek for x in a.identities()] == [y.ek for y in b.identities()]
    assert [x.ek for x in a.identities()] != [z.ek for z in c.identities()]
    for _ in range(5):
        va, vb, vc = a.advance(), b.advance(), c.advance()
        for name in ("import_wh", "export_wh", "import_register", "export_register", "status"):
            assert np.array_equal(getattr(va, name), getattr(vb, name))
        assert not np.array_equal(va.import_register, vc.import_register)
    assert np.array_equal(a.gas_index, b.gas_index)
    assert a.addresses == b.addresses


def _area_fleet(kind: AreaKind, meters: int, **overrides: object) -> Fleet:
    area = Area(name="a", kind=kind, meters=meters, **overrides)  # type: ignore[arg-type]
    return Fleet(Scenario(name="t", start=START, area=[area], seed=5))


def test_rural_meters_gather_in_hamlets_and_share_a_medium_per_hamlet() -> None:
    from scipy.spatial import cKDTree  # type: ignore[import-untyped]

    f = _area_fleet(AreaKind.RURAL, 20_000)
    side = np.sqrt(20_000 / 150.0) * 1000.0
    assert (f.position_m >= 0).all() and (f.position_m <= side).all()

    # a mesh only works where its nodes hear each other (150 m): in hamlets a mesh house has
    # many mesh neighbours; with the same share drawn house by house over an even spread,
    # about 60 per km2 would be mesh and a house would hear ~4, too few to carry a mesh
    def mesh_degree(fleet: Fleet) -> float:
        pts = fleet.position_m[fleet.medium == 0]
        tree = cKDTree(pts)
        return float(np.mean([len(x) - 1 for x in tree.query_ball_point(pts[:2_000], 150.0)]))

    assert mesh_degree(f) > 15
    assert mesh_degree(_area_fleet(AreaKind.RURAL, 20_000, settlement_size=0)) < 6
    tree = cKDTree(f.position_m)
    # the mesh's share of meters is kept within one hamlet's worth
    mesh_share = (f.medium == 0).mean()
    assert abs(mesh_share - 0.4) < 0.02
    # a mesh house's nearest neighbour is a mesh house too (media follow hamlets, which
    # sometimes overlap)
    _, near = tree.query(f.position_m[f.medium == 0][:500], k=2)
    assert (f.medium[near[:, 1]] == 0).mean() > 0.8  # 0.4 if drawn house by house


def test_towns_are_spread_evenly_with_media_drawn_per_meter() -> None:
    f = _area_fleet(AreaKind.SUBURBAN, 5_000)
    counts = np.histogram2d(f.position_m[:, 0], f.position_m[:, 1], bins=5)[0]
    assert counts.min() > 0.7 * counts.mean()  # no empty patches, unlike hamlets
    assert abs((f.medium == 0).mean() - 0.95) < 0.02
