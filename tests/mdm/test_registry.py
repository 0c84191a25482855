"""The registry's first API (``MeterRecord``, ``register``, ``meter_ids``, ``count``), still
used by the demo, and what holds the registry together: the schema version and aware UTC
times. On SQLite and PostgreSQL alike."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from openami.errors import LocalProtocolError, StoreError
from openami.mdm.registry import ComModule, MeterKind, MeterRecord, Registry
from openami.mdm.registry.schema import COMPONENT, SCHEMA_VERSION
from openami.store.sql import make_engine, schema_versions
from tests.mdm.registry_support import BACKENDS, T0, database_url, registry_on, site


@pytest.fixture(params=BACKENDS)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with database_url(request.param, tmp_path) as u:
        yield u


@pytest.fixture
def registry(url: str) -> Iterator[Registry]:
    opened = Registry.open(url)
    yield opened
    opened.close()


def record(meter_id: int) -> MeterRecord:
    return MeterRecord(
        meter_id=meter_id,
        serial=f"OAM{meter_id:08d}",
        system_title=meter_id.to_bytes(8, "big"),
        ip_address=f"10.0.{meter_id // 256 % 256}.{meter_id % 256}",
        household_size=1 + meter_id % 5,
        all_electric=meter_id % 2 == 0,
        pv_kw=0.5 * (meter_id % 7),
    )


def test_register_is_idempotent(registry: Registry) -> None:
    records = [record(i) for i in (1, 2, 3)]
    assert registry.register(records) == 3
    assert registry.count() == 3
    assert registry.register(records) == 0
    assert registry.count() == 3


def test_register_adds_only_the_new_meters(registry: Registry) -> None:
    assert registry.register([record(1), record(2)]) == 2
    assert registry.register([record(2), record(3), record(4)]) == 2
    assert registry.count() == 4
    assert registry.meter_ids() == [1, 2, 3, 4]


def test_register_nothing(registry: Registry) -> None:
    assert registry.register([]) == 0
    assert registry.count() == 0
    assert registry.meter_ids() == []


def test_meter_ids_are_sorted(registry: Registry) -> None:
    registry.register([record(i) for i in (500, 7, 2**40, 31)])
    registry.register([record(1), record(64)])
    assert registry.meter_ids() == [1, 7, 31, 64, 500, 2**40]


def test_the_stored_record_keeps_every_field(registry: Registry) -> None:
    original = record(42)
    before = datetime.now(UTC)
    registry.register([original])
    meter = registry.meter(42)
    assert meter is not None
    assert meter.serial == original.serial
    assert meter.system_title == original.system_title
    assert meter.installed_at is not None and meter.installed_at >= before - timedelta(seconds=1)
    unit = registry.com_module_at(42, datetime.now(UTC))
    assert unit is not None and unit.address == original.ip_address
    point = registry.usage_point_at(42, datetime.now(UTC))
    assert point is not None
    assert point.occupants == original.household_size
    assert point.all_electric is original.all_electric
    assert point.generation_kw == pytest.approx(original.pv_kw)


def test_a_second_registry_on_the_same_database_sees_the_meters(url: str) -> None:
    first = Registry.open(url)
    first.register([record(1), record(2)])
    first.close()
    reopened = Registry.open(url)
    try:
        assert reopened.count() == 2
        assert reopened.register([record(2)]) == 0
    finally:
        reopened.close()


def test_the_same_meter_twice_in_one_call_is_registered_once(registry: Registry) -> None:
    assert registry.register([record(1), record(1)]) == 1
    assert registry.count() == 1


def test_a_record_becomes_cim_shaped_records() -> None:
    made = record(9).site(kind=MeterKind.SEPARATED, area="east")
    assert made.meter.kind is MeterKind.SEPARATED
    assert made.com_module is not None and made.com_module.address == "10.0.0.9"
    assert made.usage_point is not None and made.usage_point.area == "east"


# -- schema version ----------------------------------------------------------------------


def test_the_schema_version_is_recorded_once(url: str) -> None:
    Registry.open(url).close()
    Registry.open(url).close()
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                select(schema_versions.c.version).where(schema_versions.c.component == COMPONENT)
            ).all()
    finally:
        engine.dispose()
    assert [r.version for r in rows] == [SCHEMA_VERSION]


def test_a_database_of_another_schema_version_is_refused(url: str) -> None:
    Registry.open(url).close()
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(
                update(schema_versions)
                .where(schema_versions.c.component == COMPONENT)
                .values(version=SCHEMA_VERSION + 1)
            )
        with pytest.raises(StoreError, match=r"version 2, this openami uses version 1"):
            Registry(engine)
    finally:
        engine.dispose()


def test_an_unreachable_database_is_a_store_error() -> None:
    with pytest.raises(StoreError, match=r"cannot create the mdm\.registry schema"):
        Registry.open("postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=1")


def test_open_needs_a_url_or_a_data_directory(tmp_path: Path) -> None:
    with pytest.raises(LocalProtocolError):
        Registry.open()
    registry = Registry.open(data_dir=tmp_path / "data")
    registry.close()
    assert (tmp_path / "data" / "registry.db").exists()


# -- times -------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_times_come_back_aware_in_utc(backend: str, tmp_path: Path) -> None:
    with registry_on(backend, tmp_path) as registry:
        registry.register_fleet([site(1)], T0)  # T0 is Japan time
        history = registry.com_module_history(1)
        assert history[0].valid_from == T0
        assert history[0].valid_from.utcoffset() == timedelta(0)
        meter = registry.meter(1)
        assert meter is not None and meter.installed_at == T0
        assert meter.installed_at.tzinfo is UTC


@pytest.mark.parametrize("backend", BACKENDS)
def test_naive_times_are_refused_before_any_query(backend: str, tmp_path: Path) -> None:
    naive = datetime(2026, 4, 1)  # noqa: DTZ001 (the point of the test)
    with registry_on(backend, tmp_path) as registry:
        registry.register_fleet([site(1)], T0)
        with pytest.raises(LocalProtocolError, match="naive"):
            registry.register_fleet([site(2)], naive)
        with pytest.raises(LocalProtocolError, match="naive"):
            registry.contract_at(1, naive)
        with pytest.raises(LocalProtocolError, match="naive"):
            registry.swap_com_module(1, ComModule("unit-new", "10.9.9.9"), naive)
        assert registry.count() == 1
