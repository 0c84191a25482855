"""Meters in the registry: bulk registration, look-ups, communication unit swaps,
installations and co-metering links. On SQLite and PostgreSQL alike."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from openami.errors import RegistryError
from openami.mdm.registry import (
    Commodity,
    ComModule,
    ComModuleService,
    Installation,
    Meter,
    MeterKind,
    MeterSite,
    Registry,
    UsagePoint,
)
from tests.mdm.registry_support import BACKENDS, DAY, T0, gas_site, registry_on, site


@pytest.fixture(params=BACKENDS)
def registry(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Registry]:
    with registry_on(request.param, tmp_path) as opened:
        yield opened


# -- bulk registration ---------------------------------------------------------------------


def test_a_fleet_is_registered_with_units_points_and_links(registry: Registry) -> None:
    sites = [site(i) for i in range(1, 11)] + [gas_site(101, host=1), gas_site(102, host=2)]
    done = registry.register_fleet(sites, T0)
    assert (done.meters, done.com_modules, done.usage_points) == (12, 10, 10)
    assert registry.count() == 12
    assert registry.meter_ids() == [*range(1, 11), 101, 102]
    assert registry.com_module_history(3) == [ComModuleService(3, "unit-3", "10.0.0.3", T0)]
    assert registry.installations(3) == [Installation(3, "up-3", T0)]
    assert [m.meter_id for m in registry.auxiliary_meters(1, T0)] == [101]
    assert registry.host_meter(102, T0 + DAY) == 2
    assert registry.host_meter(102, T0 - DAY) is None


def test_registering_the_same_fleet_twice_adds_nothing(registry: Registry) -> None:
    sites = [site(i) for i in range(1, 21)] + [gas_site(101, host=1)]
    registry.register_fleet(sites, T0)
    again = registry.register_fleet(sites, T0 + DAY)  # even at a later time
    assert (again.meters, again.com_modules, again.usage_points) == (0, 0, 0)
    assert registry.count() == 21
    assert len(registry.com_module_history(5)) == 1
    assert len(registry.installations(5)) == 1


def test_a_second_batch_adds_only_its_new_meters(registry: Registry) -> None:
    registry.register_fleet([site(i) for i in range(1, 6)], T0)
    done = registry.register_fleet([site(i) for i in range(4, 9)], T0 + DAY)
    assert done.meters == 3
    assert registry.installations(8) == [Installation(8, "up-8", T0 + DAY)]
    assert registry.installations(4) == [Installation(4, "up-4", T0)]


def test_a_meter_keeps_its_own_installation_time(registry: Registry) -> None:
    early = site(1)
    early = replace(early, meter=replace(early.meter, installed_at=T0 - 30 * DAY))
    registry.register_fleet([early, site(2)], T0)
    assert registry.installations(1)[0].valid_from == T0 - 30 * DAY
    assert registry.installations(2)[0].valid_from == T0


def test_an_electric_and_a_gas_meter_share_a_usage_point(registry: Registry) -> None:
    shared = replace(gas_site(101, host=1), usage_point=site(1).usage_point)
    done = registry.register_fleet([site(1), shared], T0)
    assert done.usage_points == 1
    assert registry.installations(101) == [Installation(101, "up-1", T0)]


@pytest.mark.parametrize(
    ("batch", "message"),
    [
        pytest.param(
            [site(1), replace(site(2), meter=replace(site(2).meter, serial="OAM00000001"))],
            "serial OAM00000001 is given to two meters",
            id="serial",
        ),
        pytest.param(
            [site(1), replace(site(2), meter=replace(site(2).meter, mrid="meter-1"))],
            "meter mRID meter-1",
            id="mrid",
        ),
        pytest.param(
            [
                site(1),
                replace(site(2), meter=replace(site(2).meter, system_title=bytes(7) + b"\1")),
            ],
            "system title",
            id="system-title",
        ),
        pytest.param(
            [site(1), replace(site(2), com_module=site(1).com_module)], "unit unit-1", id="unit"
        ),
        pytest.param(
            [site(1), site(2, point="up-1")], "usage point up-1 appears twice", id="point-details"
        ),
        pytest.param(
            [site(1), replace(site(2), usage_point=site(1).usage_point)],
            "usage point and commodity",
            id="two-electric-meters-one-point",
        ),
        pytest.param(
            [site(1), replace(site(1), com_module=ComModule("unit-x", "10.9.9.9"))],
            "meter 1 appears twice in one batch with different details",
            id="meter-twice",
        ),
        pytest.param(
            [site(1), replace(site(2), host_meter_id=1)], "electric meter", id="electric-aux"
        ),
        pytest.param(
            [gas_site(101, host=7)], "host meter 7 is not a registered electric", id="no-host"
        ),
        pytest.param(
            [site(1), gas_site(101, host=1), gas_site(102, host=101)],
            "host meter 101 is not a registered electric",
            id="gas-host",
        ),
    ],
)
def test_a_batch_that_breaks_a_rule_is_refused_whole(
    registry: Registry, batch: list[MeterSite], message: str
) -> None:
    with pytest.raises(RegistryError, match=message):
        registry.register_fleet(batch, T0)
    assert registry.count() == 0
    assert registry.usage_point("up-1") is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        pytest.param(
            lambda s: replace(s, meter=replace(s.meter, serial="OTHER")),
            "meter 1 is registered with other identity details",
            id="same-id-other-serial",
        ),
        pytest.param(
            lambda s: replace(s, meter=replace(s.meter, kind=MeterKind.INTEGRATED)),
            "meter 1 is registered with other identity",
            id="same-id-other-kind",
        ),
        pytest.param(
            lambda s: replace(s, meter=replace(s.meter, meter_id=99, mrid="meter-99")),
            "serial 'OAM00000001' belongs to meter 1",
            id="other-id-same-serial",
        ),
    ],
)
def test_a_meter_registered_again_with_other_identity_is_refused(
    registry: Registry, change: object, message: str
) -> None:
    registry.register_fleet([site(1)], T0)
    changed = change(site(1))  # type: ignore[operator]
    with pytest.raises(RegistryError, match=message):
        registry.register_fleet([changed, site(2)], T0)
    assert registry.meter_ids() == [1]


def test_a_unit_serving_a_meter_is_not_given_to_a_new_one(registry: Registry) -> None:
    registry.register_fleet([site(1)], T0)
    with pytest.raises(RegistryError, match="unit unit-1 already serves meter 1"):
        registry.register_fleet([replace(site(2), com_module=site(1).com_module)], T0)
    registry.swap_com_module(1, ComModule("unit-1b", "10.1.0.1"), T0 + DAY)  # unit-1 is free
    with pytest.raises(RegistryError, match=r"unit unit-1 is registered with address 10\.0\.0\.1"):
        registry.register_fleet([replace(site(2), com_module=ComModule("unit-1", "10.7.7.7"))], T0)
    done = registry.register_fleet([replace(site(2), com_module=site(1).com_module)], T0 + DAY)
    assert (done.meters, done.com_modules) == (1, 0)


def test_a_point_with_a_meter_does_not_take_a_second_one(registry: Registry) -> None:
    registry.register_fleet([site(1)], T0)
    with pytest.raises(RegistryError, match="usage point up-1 already has meter 1"):
        registry.register_fleet([replace(site(2), usage_point=site(1).usage_point)], T0)


def test_records_check_themselves() -> None:
    with pytest.raises(RegistryError, match="system title is 8 bytes"):
        Meter(1, "m", "s", b"short")
    with pytest.raises(RegistryError, match="out of range"):
        Meter(0, "m", "s")
    with pytest.raises(ValueError, match="'hybrid'"):
        Meter(1, "m", "s", kind="hybrid")  # type: ignore[arg-type]
    with pytest.raises(RegistryError, match="both latitude and longitude"):
        UsagePoint("up", latitude=35.0)
    with pytest.raises(RegistryError, match="not after its start"):
        Installation(1, "up", T0, T0)


# -- look-ups --------------------------------------------------------------------------------


def test_a_meter_is_found_by_id_serial_system_title_and_address(registry: Registry) -> None:
    registry.register_fleet([site(i) for i in range(1, 300)], T0)
    meter = registry.meter(258)
    assert meter is not None
    assert (meter.serial, meter.kind, meter.commodity) == (
        "OAM00000258",
        MeterKind.SEPARATED,
        Commodity.ELECTRICITY,
    )
    assert registry.meter_by_serial("OAM00000258") == meter
    assert registry.meter_by_system_title((258).to_bytes(8, "big")) == meter
    assert registry.meter_by_address("10.0.1.2", T0) == meter
    assert registry.meter(999) is None
    assert registry.meter_by_serial("nope") is None
    assert registry.meter_by_system_title(bytes(8)) is None
    assert registry.meter_by_address("10.0.1.2", T0 - DAY) is None


# -- communication units -------------------------------------------------------------------


def test_a_swap_closes_one_row_and_opens_another(registry: Registry) -> None:
    registry.register_fleet([site(1), site(2)], T0)
    new = registry.swap_com_module(1, ComModule("unit-1b", "10.1.0.1"), T0 + 10 * DAY)
    assert new == ComModuleService(1, "unit-1b", "10.1.0.1", T0 + 10 * DAY)
    registry.swap_com_module(1, ComModule("unit-1c", "10.1.0.2"), T0 + 20 * DAY)
    history = registry.com_module_history(1)
    assert [(h.com_module, h.valid_from, h.valid_to) for h in history] == [
        ("unit-1", T0, T0 + 10 * DAY),
        ("unit-1b", T0 + 10 * DAY, T0 + 20 * DAY),
        ("unit-1c", T0 + 20 * DAY, None),
    ]
    # the meter is the same meter, reached at the new address from the swap on
    assert registry.meter_by_address("10.0.0.1", T0 + 5 * DAY) == registry.meter(1)
    assert registry.meter_by_address("10.0.0.1", T0 + 15 * DAY) is None
    assert registry.meter_by_address("10.1.0.1", T0 + 15 * DAY) == registry.meter(1)
    unit = registry.com_module_at(1, T0 + 10 * DAY)
    assert unit is not None and unit.com_module == "unit-1b"
    assert registry.com_module_history(2) == [ComModuleService(2, "unit-2", "10.0.0.2", T0)]


def test_a_removed_unit_can_serve_another_meter(registry: Registry) -> None:
    registry.register_fleet([site(1), site(2)], T0)
    registry.swap_com_module(1, ComModule("unit-spare", "10.2.0.1"), T0 + DAY)
    registry.swap_com_module(2, ComModule("unit-1", "10.0.0.1"), T0 + 2 * DAY)
    assert [h.com_module for h in registry.com_module_history(2)] == ["unit-2", "unit-1"]


@pytest.mark.parametrize(
    ("meter_id", "unit", "days", "message"),
    [
        (3, ComModule("unit-x", "10.3.0.1"), 1, "meter 3 is integrated"),
        (1, ComModule("unit-2", "10.0.0.2"), 1, "unit unit-2 already serves meter 2"),
        (1, ComModule("unit-1", "10.0.0.1"), 1, "unit unit-1 already serves meter 1"),
        (1, ComModule("unit-2", "10.5.5.5"), 1, "already serves meter 2"),
        (1, ComModule("unit-x", "10.3.0.1"), 0, "cannot end at"),
        (1, ComModule("unit-x", "10.3.0.1"), -1, "cannot end at"),
        (9, ComModule("unit-x", "10.3.0.1"), 1, "meter 9 is not registered"),
    ],
)
def test_a_swap_that_breaks_a_rule_is_refused(
    registry: Registry, meter_id: int, unit: ComModule, days: int, message: str
) -> None:
    registry.register_fleet([site(1), site(2), site(3, kind=MeterKind.INTEGRATED)], T0)
    with pytest.raises(RegistryError, match=message):
        registry.swap_com_module(meter_id, unit, T0 + days * DAY)
    assert [h.com_module for h in registry.com_module_history(1)] == ["unit-1"]


def test_a_unit_registered_with_another_address_is_refused(registry: Registry) -> None:
    registry.register_fleet([site(1), site(2)], T0)
    registry.swap_com_module(2, ComModule("unit-2b", "10.2.0.2"), T0 + DAY)
    with pytest.raises(RegistryError, match=r"unit unit-2 is registered with address 10\.0\.0\.2"):
        registry.swap_com_module(1, ComModule("unit-2", "10.9.9.9"), T0 + 2 * DAY)


# -- installations and co-metering ----------------------------------------------------------


def test_a_meter_is_exchanged_at_a_usage_point(registry: Registry) -> None:
    registry.register_fleet([site(1), MeterSite(site(2).meter, site(2).com_module)], T0)
    assert registry.installations(2) == []
    registry.remove_meter(1, T0 + 5 * DAY)
    registry.install_meter(2, "up-1", T0 + 5 * DAY)
    assert registry.installations(1) == [Installation(1, "up-1", T0, T0 + 5 * DAY)]
    point = registry.usage_point_at(2, T0 + 6 * DAY)
    assert point is not None and point.mrid == "up-1"
    assert registry.usage_point_at(1, T0 + 6 * DAY) is None
    assert registry.usage_point_at(1, T0 + 4 * DAY) == point


def test_an_installation_that_breaks_a_rule_is_refused(registry: Registry) -> None:
    registry.register_fleet([site(1), site(2), MeterSite(site(3).meter, site(3).com_module)], T0)
    with pytest.raises(RegistryError, match="usage point up-1 has electricity meter 1"):
        registry.install_meter(3, "up-1", T0 + DAY)
    with pytest.raises(RegistryError, match="overlaps"):
        registry.install_meter(1, "up-2", T0 + DAY)
    with pytest.raises(RegistryError, match="usage point up-9 is not registered"):
        registry.install_meter(3, "up-9", T0 + DAY)
    with pytest.raises(RegistryError, match="meter 3 has no installation to end"):
        registry.remove_meter(3, T0 + DAY)
    registry.remove_meter(1, T0 + 3 * DAY)
    with pytest.raises(RegistryError, match="usage point up-1 has electricity meter 1"):
        registry.install_meter(3, "up-1", T0 + 2 * DAY)  # before the old one left


def test_a_gas_meter_is_moved_to_another_host(registry: Registry) -> None:
    registry.register_fleet([site(1), site(2), gas_site(101, host=1)], T0)
    registry.unlink_auxiliary(101, T0 + 7 * DAY)
    registry.link_auxiliary(101, 2, T0 + 7 * DAY)
    assert [m.meter_id for m in registry.auxiliary_meters(1, T0 + 6 * DAY)] == [101]
    assert registry.auxiliary_meters(1, T0 + 7 * DAY) == []
    assert registry.host_meter(101, T0 + 7 * DAY) == 2
    with pytest.raises(RegistryError, match="overlaps"):
        registry.link_auxiliary(101, 1, T0 + 8 * DAY)
    with pytest.raises(RegistryError, match="meter 2 is an electric meter"):
        registry.link_auxiliary(2, 1, T0 + 8 * DAY)
    with pytest.raises(RegistryError, match="host meter 101 is not a registered electric"):
        registry.link_auxiliary(101, 101, T0 + 8 * DAY)


def test_a_water_meter_links_like_a_gas_meter(registry: Registry) -> None:
    registry.register_fleet([site(1), gas_site(201, 1, Commodity.WATER)], T0)
    (water,) = registry.auxiliary_meters(1, T0)
    assert water.commodity is Commodity.WATER and water.system_title is None
