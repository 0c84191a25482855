"""The meter registry (SQLAlchemy Core; SQLite by default, PostgreSQL in production).

Shaped after IEC 61968 names where it has them; the registry grows with the MDMS work.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Engine,
    Float,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    func,
    select,
)
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from openami.errors import StoreError

__all__ = ["MeterRecord", "Registry"]

metadata = MetaData()
meters = Table(
    "meters",
    metadata,
    Column("meter_id", BigInteger, primary_key=True, autoincrement=False),
    Column("serial", String(32), nullable=False, unique=True),
    Column("system_title", LargeBinary(8), nullable=False, unique=True),
    Column("ip_address", String(64), nullable=False),
    Column("household_size", Integer, nullable=False),
    Column("all_electric", Boolean, nullable=False),
    Column("pv_kw", Float, nullable=False),
    Column("installed_at", DateTime(timezone=True), nullable=False),
)


@dataclass(frozen=True)
class MeterRecord:
    meter_id: int
    serial: str
    system_title: bytes
    ip_address: str
    household_size: int
    all_electric: bool
    pv_kw: float


class Registry:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        try:
            metadata.create_all(engine)
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot open the registry: {exc.__class__.__name__}: {exc}") from None

    def register(self, records: Sequence[MeterRecord]) -> int:
        """Add meters not registered yet (by meter_id); return how many were new."""
        if not records:
            return 0
        now = datetime.now(UTC)
        try:
            with self.engine.begin() as conn:
                known = set(conn.execute(select(meters.c.meter_id)).scalars())
                fresh = {r.meter_id: r for r in records if r.meter_id not in known}
                rows = [{**r.__dict__, "installed_at": now} for r in fresh.values()]
                if rows:
                    conn.execute(meters.insert(), rows)
        except IntegrityError as exc:
            # another meter already holds that serial or system title: nothing was added
            raise StoreError(f"meters conflict with registered ones: {exc.orig}") from None
        return len(rows)

    def meter_ids(self) -> list[int]:
        with self.engine.connect() as conn:
            return list(
                conn.execute(select(meters.c.meter_id).order_by(meters.c.meter_id)).scalars()
            )

    def count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(meters)).scalar_one())
