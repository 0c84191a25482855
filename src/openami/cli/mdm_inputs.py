"""The MDMS commands' inputs from the registry and the lake: meter attributes for VEE,
contracts for billing, the meters a lake holds."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import polars as pl

    from openami.mdm.registry import Registry
    from openami.store.lake import IntervalLake


# --- inputs from the registry -----------------------------------------------------------------


def _registry_sites(registry: Registry) -> pl.DataFrame:
    """Electric meters with the traits of the usage point each is installed at (the
    installation in force longest ago first: one row per meter, its latest installation)."""
    import polars as pl
    from sqlalchemy import select
    from sqlalchemy.exc import SQLAlchemyError

    from openami.errors import StoreError
    from openami.mdm.registry.schema import meter, usage_point, usage_point_meter

    m, i, u = meter.c, usage_point_meter.c, usage_point.c
    query = (
        select(m.meter_id, u.generation_kw, u.occupied, i.valid_from)
        .select_from(meter)
        .outerjoin(usage_point_meter, i.meter_id == m.meter_id)
        .outerjoin(usage_point, u.mrid == i.usage_point)
        .where(m.commodity == "electricity")
    )
    try:
        with registry.engine.connect() as conn:
            rows = [tuple(r) for r in conn.execute(query)]
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot read the registry: {exc}") from None
    frame = pl.DataFrame(
        rows,
        schema={
            "meter_id": pl.Int64,
            "generation_kw": pl.Float64,
            "occupied": pl.Boolean,
            "valid_from": pl.Datetime("us", "UTC"),
        },
        orient="row",
    )
    return (
        frame.sort("meter_id", "valid_from", nulls_last=False)
        .unique("meter_id", keep="last", maintain_order=True)
        .select(
            "meter_id",
            has_pv=pl.col("generation_kw") > 0,
            occupied=pl.col("occupied"),
        )
    )


def _registry_contracts(registry: Registry, reading_day: int, default_amps: int) -> pl.DataFrame:
    """The registry's retail contracts as billing's contract frame: one row per contract
    and meter installed at its usage point, over the overlap of the two spans (moved up to
    the 30-minute grid). The contract current is the contract's, else its tariff's, else
    ``default_amps``; the tariff-book code is the tariff's ``periods_ref``, else its code.
    The registry keeps no meter-reading day: every contract is read on ``reading_day``."""
    import polars as pl
    from sqlalchemy import select
    from sqlalchemy.exc import SQLAlchemyError

    from openami.errors import StoreError
    from openami.mdm.registry.schema import customer_agreement, pricing_structure, usage_point_meter

    a, i, p = customer_agreement.c, usage_point_meter.c, pricing_structure.c
    query = (
        select(
            a.mrid,
            i.meter_id,
            a.tariff,
            p.periods_ref,
            a.contract_current_a,
            p.contract_current_a.label("tariff_amps"),
            a.valid_from,
            a.valid_to,
            i.valid_from.label("installed_from"),
            i.valid_to.label("installed_to"),
        )
        .select_from(customer_agreement)
        .join(usage_point_meter, i.usage_point == a.usage_point)
        .outerjoin(pricing_structure, p.code == a.tariff)
    )
    try:
        with registry.engine.connect() as conn:
            rows = [tuple(r) for r in conn.execute(query)]
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot read the registry's contracts: {exc}") from None
    when = pl.Datetime("us", "UTC")
    frame = pl.DataFrame(
        rows,
        schema={
            "mrid": pl.String,
            "meter_id": pl.Int64,
            "tariff": pl.String,
            "periods_ref": pl.String,
            "amps": pl.Int64,
            "tariff_amps": pl.Int64,
            "from": when,
            "to": when,
            "installed_from": when,
            "installed_to": when,
        },
        orient="row",
    )
    grid = "30m"

    def up(column: str) -> pl.Expr:  # the next interval boundary at or after the instant
        c = pl.col(column)
        floor = c.dt.truncate(grid)
        return pl.when(floor == c).then(c).otherwise(floor + pl.duration(minutes=30))

    frame = frame.with_columns(
        valid_from=pl.max_horizontal(up("from"), up("installed_from")),
        valid_to=pl.min_horizontal(up("to"), up("installed_to")),
    ).filter(pl.col("valid_to").is_null() | (pl.col("valid_to") > pl.col("valid_from")))
    several = pl.col("mrid").is_duplicated()
    return frame.select(
        contract_id=pl.when(several)
        .then(pl.format("{}@{}", "mrid", "meter_id"))
        .otherwise(pl.col("mrid")),
        meter_id="meter_id",
        tariff=pl.coalesce("periods_ref", "tariff"),
        contract_amps=pl.coalesce("amps", "tariff_amps", pl.lit(default_amps, pl.Int64)),
        reading_day=pl.lit(reading_day, pl.Int32),
        valid_from="valid_from",
        valid_to="valid_to",
    ).sort("meter_id", "valid_from")


def _lake_meters(lake: IntervalLake, days: list[date]) -> pl.DataFrame:
    """The electricity meters with a raw read on any of ``days``."""
    import polars as pl

    files = [f for d in days for f in lake.day_files(d)]
    if not files:
        return pl.DataFrame(schema={"meter_id": pl.Int64})
    return (
        pl.scan_parquet(files)
        .filter(pl.col("channel").is_between(1, 4))
        .select(pl.col("meter_id").cast(pl.Int64).unique())
        .collect()
        .sort("meter_id")
    )
