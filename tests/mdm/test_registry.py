from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from openami.mdm.registry import MeterRecord, Registry, metadata, meters
from openami.store.sql import make_engine, sqlite_url

POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def _postgres_reachable() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1.0):
            return True
    except OSError:
        return False


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        sqlite = make_engine(sqlite_url(tmp_path / "registry.db"))
        yield sqlite
        sqlite.dispose()
        return
    if not _postgres_reachable():
        pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432")
    postgres = make_engine(POSTGRES_URL)
    metadata.drop_all(postgres)
    try:
        yield postgres
    finally:
        metadata.drop_all(postgres)
        postgres.dispose()


def record(meter_id: int) -> MeterRecord:
    return MeterRecord(
        meter_id=meter_id,
        serial=f"OAM{meter_id:08d}",
        system_title=meter_id.to_bytes(8, "big"),
        ip_address=f"10.0.{meter_id // 256}.{meter_id % 256}",
        household_size=1 + meter_id % 5,
        all_electric=meter_id % 2 == 0,
        pv_kw=0.5 * (meter_id % 7),
    )


def test_register_is_idempotent(engine: Engine) -> None:
    registry = Registry(engine)
    records = [record(i) for i in (1, 2, 3)]
    assert registry.register(records) == 3
    assert registry.count() == 3
    assert registry.register(records) == 0
    assert registry.count() == 3


def test_register_adds_only_the_new_meters(engine: Engine) -> None:
    registry = Registry(engine)
    assert registry.register([record(1), record(2)]) == 2
    assert registry.register([record(2), record(3), record(4)]) == 2
    assert registry.count() == 4
    assert registry.meter_ids() == [1, 2, 3, 4]


def test_register_nothing(engine: Engine) -> None:
    registry = Registry(engine)
    assert registry.register([]) == 0
    assert registry.count() == 0
    assert registry.meter_ids() == []


def test_meter_ids_are_sorted(engine: Engine) -> None:
    registry = Registry(engine)
    registry.register([record(i) for i in (500, 7, 2**40, 31)])
    registry.register([record(1), record(64)])
    assert registry.meter_ids() == [1, 7, 31, 64, 500, 2**40]


def test_the_stored_record_keeps_every_field(engine: Engine) -> None:
    registry = Registry(engine)
    original = record(42)
    registry.register([original])
    with engine.connect() as conn:
        row = conn.execute(select(meters).where(meters.c.meter_id == 42)).one()
    assert row.serial == original.serial
    assert bytes(row.system_title) == original.system_title
    assert row.ip_address == original.ip_address
    assert row.household_size == original.household_size
    assert row.all_electric is original.all_electric
    assert row.pv_kw == pytest.approx(original.pv_kw)
    assert row.installed_at is not None


def test_a_second_registry_on_the_same_database_sees_the_meters(engine: Engine) -> None:
    Registry(engine).register([record(1), record(2)])
    reopened = Registry(engine)
    assert reopened.count() == 2
    assert reopened.register([record(2)]) == 0


def test_the_same_meter_twice_in_one_call_is_registered_once(engine: Engine) -> None:
    registry = Registry(engine)
    added = registry.register([record(1), record(1)])
    assert added == 1
    assert registry.count() == 1
