"""The registry contract suite's backends and builders.

Every registry test runs twice: on a SQLite file in ``tmp_path`` and on the PostgreSQL of
this machine in a schema of its own (created for the test, dropped after it), so the two
backends cannot drift apart and concurrent runs never see each other's rows.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import text

from openami.mdm.registry import (
    Commodity,
    ComModule,
    Customer,
    CustomerAgreement,
    Meter,
    MeterKind,
    MeterSite,
    PricingStructure,
    Registry,
    Retailer,
    TariffKind,
    UsagePoint,
)
from openami.store.sql import make_engine

POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]

JST = timezone(timedelta(hours=9))
T0 = datetime(2026, 4, 1, tzinfo=JST)  # a meter-reading day, midnight Japan time
DAY = timedelta(days=1)


def postgres_problem() -> str | None:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1.0):
            return None
    except OSError as exc:
        return f"PostgreSQL is not reachable on 127.0.0.1:5432 ({exc})"


@contextmanager
def database_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """A URL to an empty database: a SQLite file, or a fresh PostgreSQL schema."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'registry.db'}"
        return
    problem = postgres_problem()
    if problem is not None:
        pytest.skip(problem)
    schema = f"registry_{uuid.uuid4().hex[:12]}"
    admin = make_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@contextmanager
def registry_on(backend: str, tmp_path: Path) -> Iterator[Registry]:
    with database_url(backend, tmp_path) as url:
        registry = Registry.open(url)
        try:
            yield registry
        finally:
            registry.close()


# -- builders ----------------------------------------------------------------------------


def site(
    i: int,
    *,
    kind: MeterKind = MeterKind.SEPARATED,
    area: str = "north",
    point: str | None = None,
) -> MeterSite:
    """Electric meter ``i`` with unit ``unit-i`` at usage point ``up-i`` (or ``point``)."""
    return MeterSite(
        meter=Meter(i, f"meter-{i}", f"OAM{i:08d}", i.to_bytes(8, "big"), kind, manufacturer="X"),
        com_module=ComModule(f"unit-{i}", f"10.0.{i // 256}.{i % 256}"),
        usage_point=UsagePoint(
            point or f"up-{i}",
            address=f"{i}-chome, Setagaya",
            area=area,
            latitude=35.6 + i / 10_000,
            longitude=139.6,
            generation_kw=3.5 if i % 4 == 0 else 0.0,
        ),
    )


def gas_site(i: int, host: int, commodity: Commodity = Commodity.GAS) -> MeterSite:
    return MeterSite(
        meter=Meter(i, f"meter-{i}", f"GAS{i:08d}", None, MeterKind.INTEGRATED, commodity),
        host_meter_id=host,
    )


RETAILERS = [
    Retailer("r-incumbent", "Incumbent Energy Partner", "A0001"),
    Retailer("r-newcomer", "Newcomer Denki", "A0421"),
    Retailer("r-third", "Third Power", "A0777"),
]
TARIFFS = [
    PricingStructure("jp-residential-flat", "Meter-rate lighting B", TariffKind.BLOCK, 30),
    PricingStructure("jp-residential-tou", "Night owl", TariffKind.TOU, 40),
]


def with_parties(registry: Registry, n: int) -> None:
    """Retailers, tariffs, and customers ``c-1`` .. ``c-n``."""
    registry.add_retailers(RETAILERS)
    registry.add_tariffs(TARIFFS)
    registry.add_customers(Customer(f"c-{i}", f"Customer {i}") for i in range(1, n + 1))


def contract(
    mrid: str,
    point: str,
    start: datetime,
    end: datetime | None = None,
    *,
    customer: str = "c-1",
    retailer: str = "r-incumbent",
    tariff: str = "jp-residential-flat",
) -> CustomerAgreement:
    return CustomerAgreement(mrid, customer, point, retailer, tariff, start, end)


def at_utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)
