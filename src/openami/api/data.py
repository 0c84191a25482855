"""What the Route C service reads: the registry (customers, usage points, meters, and which
meters a customer's contracts cover), the validated interval reads with their quality, the
raw register reads and the meters' events, from a data dir as ``openami demo`` or a running
MDMS leaves it.

Interval reads come from VEE's validated store (the current version of each read, with its
quality flags, origin and CIM / Green Button quality codes): that is what a bill and a
customer see. Register reads come from the raw lake (channels 3 and 4), events from the
event store.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl
from sqlalchemy import and_, or_, select

from openami.errors import StoreError
from openami.mdm.registry import Registry
from openami.mdm.registry.schema import customer, customer_agreement, usage_point, usage_point_meter
from openami.mdm.vee.flags import cim_codes, espi_quality
from openami.store.events import EventStore
from openami.store.lake import IntervalLake
from openami.store.validated import Origin, ValidatedStore, latest_versions, utc_days

__all__ = ["CHANNELS", "CustomerRow", "DataSource", "MeterRow"]

CHANNELS = {1: "import", 2: "export"}
REGISTERS = {3: "import_register", 4: "export_register"}
ORIGINS = {int(o): o.name.lower() for o in Origin}


@dataclass(frozen=True)
class CustomerRow:
    customer: str
    name: str
    kind: str
    usage_points: tuple[str, ...]
    meters: tuple[int, ...]


@dataclass(frozen=True)
class MeterRow:
    meter_id: int
    serial: str
    usage_point: str | None
    area: str | None


def _days(start: datetime, end: datetime) -> list[date]:
    last = (end - timedelta(seconds=1)).astimezone(UTC).date()
    return utc_days(start.astimezone(UTC).date(), last)


class DataSource:
    def __init__(self, data_dir: Path, registry: Registry) -> None:
        self.data_dir = data_dir
        self.registry = registry
        self.validated = ValidatedStore(data_dir / "lake")
        self.events = EventStore(data_dir / "lake")
        self._lake: IntervalLake | None = None

    @property
    def lake(self) -> IntervalLake:
        if self._lake is None:
            self._lake = IntervalLake(self.data_dir / "lake")
        return self._lake

    # -- the registry ----------------------------------------------------------------------

    def customers(self, at: datetime) -> list[CustomerRow]:
        """Every customer with the usage points and meters its contracts cover at ``at``."""
        c, a, i = customer.c, customer_agreement.c, usage_point_meter.c
        in_force = and_(a.valid_from <= at, or_(a.valid_to.is_(None), a.valid_to > at))
        installed = and_(i.valid_from <= at, or_(i.valid_to.is_(None), i.valid_to > at))
        query = (
            select(c.mrid, c.name, c.kind, a.usage_point, i.meter_id)
            .select_from(customer)
            .outerjoin(customer_agreement, and_(a.customer == c.mrid, in_force))
            .outerjoin(usage_point_meter, and_(i.usage_point == a.usage_point, installed))
            .order_by(c.mrid, a.usage_point)
        )
        with self.registry.engine.connect() as conn:
            rows = list(conn.execute(query))
        out: dict[str, tuple[str, str, list[str], list[int]]] = {}
        for mrid, name, kind, point, meter in rows:
            entry = out.setdefault(mrid, (name, kind, [], []))
            if point is not None and point not in entry[2]:
                entry[2].append(point)
            if meter is not None:
                entry[3].append(int(meter))
        return [
            CustomerRow(mrid, name, kind, tuple(points), tuple(sorted(meters)))
            for mrid, (name, kind, points, meters) in out.items()
        ]

    def customer(self, mrid: str, at: datetime) -> CustomerRow | None:
        return next((c for c in self.customers(at) if c.customer == mrid), None)

    def meters(self, at: datetime, meter_ids: list[int] | None = None) -> list[MeterRow]:
        from openami.mdm.registry.schema import meter

        m, i, p = meter.c, usage_point_meter.c, usage_point.c
        installed = and_(
            i.meter_id == m.meter_id, i.valid_from <= at, or_(i.valid_to.is_(None), i.valid_to > at)
        )
        query = (
            select(m.meter_id, m.serial, i.usage_point, p.area)
            .select_from(meter)
            .outerjoin(usage_point_meter, installed)
            .outerjoin(usage_point, p.mrid == i.usage_point)
            .order_by(m.meter_id)
        )
        if meter_ids is not None:
            query = query.where(m.meter_id.in_(meter_ids))
        with self.registry.engine.connect() as conn:
            return [MeterRow(int(r[0]), r[1], r[2], r[3]) for r in conn.execute(query)]

    # -- reads -----------------------------------------------------------------------------

    def interval_reads(
        self,
        meter_ids: list[int],
        start: datetime,
        end: datetime,
        channels: tuple[int, ...] = (1, 2),
    ) -> pl.DataFrame:
        """Validated reads of ``meter_ids`` with ``start < interval_end <= end``, sorted by
        meter, channel and interval end: ``meter_id``, ``channel``, ``interval_end`` (Unix
        s), ``value_wh`` (null when missing), ``flags``, ``origin``, ``version``,
        ``quality`` (CIM ReadingQuality codes), ``espi_quality``."""
        lo, hi = int(start.timestamp()), int(end.timestamp())
        # one scan over every day's files (a month of one meter was 32 scans), the meter,
        # channel and time filters pushed down to the Parquet reader
        days = _days(start + timedelta(seconds=1), end + timedelta(seconds=1))
        files = [f for day in days for f in self.validated.files(day)]
        schema = {
            "meter_id": pl.Int64,
            "channel": pl.Int8,
            "interval_end": pl.Int64,
            "value_wh": pl.Int64,
            "flags": pl.UInt32,
            "origin": pl.Int8,
            "version": pl.Int16,
        }
        if not files or not meter_ids:
            rows = pl.DataFrame(schema=schema)
        else:
            ids = pl.Series(meter_ids, dtype=pl.Int64)
            try:
                rows = (
                    pl.scan_parquet(files)
                    .filter(
                        pl.col("meter_id").is_between(ids.min(), ids.max())
                        & pl.col("meter_id").is_in(ids.implode())
                        & pl.col("channel").is_in(list(channels))
                    )
                    .with_columns(pl.col("interval_end").dt.epoch("s"))
                    .filter(pl.col("interval_end").is_between(lo + 1, hi))
                    .select(list(schema))
                    .collect()
                    .cast(pl.Schema(schema))
                )
            except (OSError, pl.exceptions.PolarsError) as exc:
                raise StoreError(f"cannot read validated reads: {exc}") from None
            top = rows.get_column("version").max()
            if top is not None and int(top) > 1:  # type: ignore[arg-type]
                rows = latest_versions(rows)
        rows = rows.sort("meter_id", "channel", "interval_end")
        masks = rows.get_column("flags").unique().to_list()
        codes = pl.DataFrame(
            {
                "flags": masks,
                "quality": [cim_codes(int(m)) for m in masks],
                "espi_quality": [espi_quality(int(m)) for m in masks],
            },
            schema={"flags": pl.UInt32, "quality": pl.List(pl.String), "espi_quality": pl.Int32},
        )
        return rows.join(codes, on="flags", how="left", maintain_order="left")

    def register_reads(self, meter_ids: list[int], start: datetime, end: datetime) -> pl.DataFrame:
        """Raw register reads (Wh at each interval end) of ``meter_ids`` in (start, end]."""
        lo, hi = int(start.timestamp()), int(end.timestamp())
        days = _days(start + timedelta(seconds=1), end + timedelta(seconds=1))
        files = [f for d in days for f in self.lake.day_files(d)]
        schema = {
            "meter_id": pl.Int64,
            "channel": pl.Int8,
            "interval_end": pl.Int64,
            "value_wh": pl.Int64,
        }
        if not files:
            return pl.DataFrame(schema=schema)
        return (
            pl.scan_parquet(files)
            .with_columns(pl.col("interval_end").dt.epoch("s"))
            .filter(
                pl.col("meter_id").is_in(meter_ids)
                & pl.col("channel").is_in(list(REGISTERS))
                & pl.col("interval_end").is_between(lo + 1, hi)
            )
            .sort("meter_id", "channel", "interval_end", "version")
            .unique(["meter_id", "channel", "interval_end"], keep="last", maintain_order=True)
            .select(list(schema))
            .collect()
            .cast(pl.Schema(schema))
        )

    def meter_events(self, meter_ids: list[int], start: datetime, end: datetime) -> pl.DataFrame:
        return self.events.query(start, end, meter_ids=meter_ids)
