"""``openami mdm billing``: a billing month's determinants per contract."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

if TYPE_CHECKING:
    import polars as pl


from openami.cli.mdm_inputs import (
    _lake_meters,
    _registry_contracts,
    _registry_sites,
)
from openami.cli.mdm_shared import (
    DataDir,
    SchedulerOpt,
    WorkersOpt,
    _bar,
    _emit_json,
    _reflowed,
    _registry,
    _stores,
)

# --- billing -----------------------------------------------------------------------------------


@_reflowed
def billing(
    data_dir: DataDir,
    cycle: Annotated[
        str,
        typer.Option(
            help="The billing month YYYY-MM: the cycle that the meter-reading day of that "
            "month closes (2026-09 with reading day 1 bills 1-31 August, Japan time)."
        ),
    ],
    tariff: Annotated[
        str,
        typer.Option(help="Tariff of the default contracts (see below): a tariff-book code."),
    ] = "jp-residential-tou",
    reading_day: Annotated[
        int, typer.Option(min=1, max=28, help="Meter-reading day (1..28) of every contract.")
    ] = 1,
    contract_amps: Annotated[
        int,
        typer.Option(
            min=1, help="Contract current of a default contract, or of one that names none."
        ),
    ] = 30,
    tariffs: Annotated[
        Path | None,
        typer.Option(help="Tariff book, TOML (default: the shipped one).", dir_okay=False),
    ] = None,
    raw: Annotated[
        bool,
        typer.Option(
            "--raw",
            help="Bill from the raw lake (validity only from the meters' status bits) "
            "instead of the validated store.",
        ),
    ] = False,
    shard_meters: Annotated[int, typer.Option(min=1, help="Meters per partition.")] = 100_000,
    scheduler: SchedulerOpt = None,
    workers: WorkersOpt = 2,
    limit: Annotated[int, typer.Option(min=0, help="Contracts shown in the table (0: all).")] = 20,
    output: Annotated[
        Path | None,
        typer.Option(
            help="Also write every contract's determinants to this file (.parquet or .csv).",
            dir_okay=False,
        ),
    ] = None,
    as_json: Annotated[
        bool,
        typer.Option("--json", help="Print the summary and every contract as one JSON object."),
    ] = False,
) -> None:
    """Billing determinants per contract for one billing month: kWh per time-of-use period,
    total import and export, maximum 30-minute demand, and bill-ready (every interval of the
    cycle present and passed VEE; otherwise the reason).

    Which contracts: the registry's retail contracts (DATA_DIR/registry.db), each on its
    tariff and over its dates at the meter's usage point, all read on --reading-day (the
    registry keeps no reading day). A registry without contracts (as the demo leaves it),
    or no registry: one default contract per meter, every meter on --tariff, read on
    --reading-day, at --contract-amps, open-ended (so a month with days of data missing is
    not bill-ready, and says why).

    Example: openami mdm billing --data-dir /tmp/ami --cycle 2026-09 --reading-day 3
    """
    import polars as pl

    from openami.errors import AmiError, ConfigError
    from openami.mdm.billing import BillingError, BillingMonth, load_tariffs
    from openami.mdm.parallel import billing_for_cycle, cycle_span
    from openami.store.validated import span_days

    lake, store = _stores(data_dir)
    try:
        month = BillingMonth.parse(cycle)
    except BillingError as exc:
        raise ConfigError(f"--cycle: {exc}") from None
    book = load_tariffs(tariffs)
    if tariff not in book.codes:
        raise ConfigError(
            f"--tariff {tariff!r} is not in the tariff book ({', '.join(book.codes)})"
        )
    start, end = cycle_span(month, [reading_day], book.timezone)
    cycle_days = span_days(start, end)
    if not raw and not any(store.files(d) for d in cycle_days):
        raise AmiError(
            f"no validated reads between {start:%Y-%m-%d} and {end:%Y-%m-%d} (the cycle of "
            f"{month}): run `openami mdm vee --data-dir {data_dir} --day ...` first, or "
            "pass --raw"
        )
    registry = _registry(data_dir)
    contracts = None
    sites = None
    if registry is not None:
        try:
            contracts = _registry_contracts(registry, reading_day, contract_amps)
            sites = _registry_sites(registry)
        finally:
            registry.close()
    if contracts is not None and contracts.height:
        contracts_from = f"the registry ({contracts.height:,} contracts, read on day {reading_day})"
    else:
        meters = sites if sites is not None and sites.height else _lake_meters(lake, cycle_days)
        if meters.height == 0:
            raise AmiError(f"no meters in the registry nor reads in the lake for {month}")
        contracts = meters.select(
            pl.col("meter_id"),
            tariff=pl.lit(tariff),
            contract_amps=pl.lit(contract_amps, pl.Int64),
            reading_day=pl.lit(reading_day, pl.Int32),
        )
        contracts_from = (
            f"default: every meter on {tariff}, read on day {reading_day}, {contract_amps} A "
            f"(the {'registry' if sites is not None and sites.height else 'lake'} has no contracts)"
        )
    err = Console(stderr=True)
    began = time.perf_counter()
    with _bar(f"billing {month}", "shards", err.is_terminal and not as_json) as progress:
        det = billing_for_cycle(
            lake if raw else store,
            month,
            contracts,
            book=book,
            shard_meters=shard_meters,
            scheduler=scheduler,
            workers=workers,
            progress=progress,
        )
    seconds = time.perf_counter() - began
    if output is not None:
        _write_determinants(det, output)
    summary = {
        "billing_month": str(month),
        "source": "raw lake" if raw else "validated store",
        "contracts_from": contracts_from,
        "contracts": det.height,
        "bill_ready": int(det["bill_ready"].sum()),
        "import_kwh": round(int(det["import_wh"].sum()) / 1000, 3),
        "export_kwh": round(int(det["export_wh"].sum()) / 1000, 3),
        "seconds": round(seconds, 3),
        "scheduler": scheduler or "in-process",
    }
    if as_json:
        _emit_json({**summary, "determinants": json.loads(det.write_json())})
        return
    _print_billing(summary, det, limit)


def _flat_determinants(det: pl.DataFrame) -> pl.DataFrame:
    """One column per TOU period (``<period>_wh``), events folded into their totals: for CSV."""
    import polars as pl

    periods = (
        det.select("contract_id", "cycle_start", "period_wh")
        .explode("period_wh")
        .unnest("period_wh")
        .drop_nulls("period")
        .pivot(on="period", index=["contract_id", "cycle_start"], values="wh")
    )
    renamed = periods.rename(
        {c: f"{c}_wh" for c in periods.columns if c not in ("contract_id", "cycle_start")}
    )
    flat = det.drop("period_wh", "events").join(
        renamed, on=["contract_id", "cycle_start"], how="left"
    )
    return flat.with_columns(pl.col(pl.Datetime).dt.to_string("%Y-%m-%dT%H:%M:%SZ"))


def _write_determinants(det: pl.DataFrame, path: Path) -> None:
    from openami.errors import ConfigError, StoreError

    try:
        if path.suffix == ".parquet":
            det.write_parquet(path)
        elif path.suffix == ".csv":
            _flat_determinants(det).write_csv(path)
        else:
            raise ConfigError(f"--output {path}: give a .parquet or .csv file")
    except OSError as exc:
        raise StoreError(f"cannot write {path}: {exc.strerror or exc}") from None


def _print_billing(summary: dict[str, Any], det: pl.DataFrame, limit: int) -> None:
    from rich.table import Table

    out = Console()
    out.print(
        f"Billing month {summary['billing_month']} from the {summary['source']}: "
        f"{summary['contracts']:,} contracts, {summary['bill_ready']:,} bill-ready; "
        f"{summary['import_kwh']:,.3f} kWh imported, {summary['export_kwh']:,.3f} kWh "
        f"exported ({summary['seconds']:,.2f} s, {summary['scheduler']})"
    )
    out.print(f"contracts: {summary['contracts_from']}")
    cycles = det.select("cycle_start", "cycle_end").unique().sort("cycle_start")
    if cycles.height == 1:
        out.print(f"cycle: {cycles.item(0, 0)} .. {cycles.item(0, 1)} (local dates)")
    table = Table("id", "meter", "import kWh", "by period kWh", "export kWh", "max kW")
    table.add_column("missing", justify="right")
    table.add_column("not valid", justify="right")
    table.add_column("ready")
    if cycles.height > 1:
        table.add_column("cycle")
    shown = det if limit == 0 else det.head(limit)
    for row in shown.iter_rows(named=True):
        periods = "\n".join(f"{p['period']} {p['wh'] / 1000:,.3f}" for p in row["period_wh"])
        peak = f"{row['max_demand_kw']:,.3f}" if row["max_demand_wh"] is not None else "-"
        present, valid = row["intervals_present"], row["intervals_valid"]
        cells = [
            str(row["contract_id"]),
            str(row["meter_id"]),
            f"{row['import_wh'] / 1000:,.3f}",
            periods,
            f"{row['export_wh'] / 1000:,.3f}",
            peak,
            f"{max(row['intervals_expected'] - present, 0):,}",
            f"{present - valid:,}",
            "yes" if row["bill_ready"] else "no",
        ]
        if cycles.height > 1:
            cells.append(f"{row['cycle_start']} .. {row['cycle_end']}")
        table.add_row(*cells)
    out.print(table)
    if shown.height < det.height:
        out.print(
            f"... {det.height - shown.height:,} more (--limit 0 shows all, --json or --output)"
        )
