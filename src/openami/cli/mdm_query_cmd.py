"""``openami mdm query``: one meter's reads, raw or validated."""

from __future__ import annotations

import sys
from datetime import date, timedelta
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

if TYPE_CHECKING:
    import polars as pl

    from openami.store.lake import IntervalLake
    from openami.store.validated import ValidatedStore

from openami.cli.mdm_shared import (
    AMR_STATUS,
    CHANNEL_NAMES,
    DataDir,
    _instant,
    _lake_days,
    _reflowed,
    _stores,
)

# --- query -------------------------------------------------------------------------------------


@_reflowed
def query(
    data_dir: DataDir,
    meter: Annotated[int, typer.Option(min=0, help="The meter id.")],
    from_: Annotated[
        str | None,
        typer.Option(
            "--from",
            help="First interval end shown (ISO 8601 date or time; no offset: UTC) "
            "(default: the first stored).",
        ),
    ] = None,
    to: Annotated[
        str | None,
        typer.Option(help="Last interval end shown, as --from (default: the last stored)."),
    ] = None,
    validated: Annotated[
        bool,
        typer.Option(
            "--validated",
            help="Show the validated reads (current version, VEE quality flags as CIM "
            "ReadingQuality codes, origin) instead of the raw reads as received.",
        ),
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the reads as JSON (one object per line).")
    ] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print the reads as CSV.")] = False,
) -> None:
    """One meter's interval reads, one row per interval end (UTC), with their quality: for
    raw reads every channel and the meter's own AMR status bits (clock_invalid, power_down,
    ...); with --validated the import and export VEE made of them, each with its quality
    flags as IEC 61968-9 ReadingQuality codes (3.0.1 validated, 3.5.259 missing, 3.8.x
    estimated, ...), origin (measured, estimated, edited, missing) and version.

    Example: openami mdm query --data-dir /tmp/ami --meter 17 --from 2026-08-03T09:00+09:00 --csv
    """
    from openami.errors import AmiError, ConfigError

    if as_json and as_csv:
        raise ConfigError("--json and --csv exclude each other: choose one")
    lake, store = _stores(data_dir)
    lo = _instant(from_, "--from") if from_ is not None else None
    hi = _instant(to, "--to") if to is not None else None
    if lo is not None and hi is not None and hi < lo:
        raise ConfigError(f"--to {to} is before --from {from_}")
    days = [
        d
        for d in _lake_days(lake)
        if (lo is None or d >= lo.date() - timedelta(days=1))
        and (hi is None or d <= hi.date() + timedelta(days=1))
    ]
    rows = _validated_rows(store, meter, days) if validated else _raw_rows(lake, meter, days)
    if lo is not None:
        rows = rows.filter(rows["interval_end"] >= lo)
    if hi is not None:
        rows = rows.filter(rows["interval_end"] <= hi)
    if rows.height == 0:
        what = "validated reads (run `openami mdm vee` first?)" if validated else "reads"
        span = f" between {from_ or 'the start'} and {to or 'the end'}" if lo or hi else ""
        raise AmiError(f"meter {meter} has no {what}{span} in {data_dir}")
    if as_csv:
        sys.stdout.write(_plain_text(rows).write_csv())
    elif as_json:
        sys.stdout.write(_plain_text(rows).write_ndjson())
    else:
        _print_reads(rows, meter, validated)


def _raw_rows(lake: IntervalLake, meter: int, days: list[date]) -> pl.DataFrame:
    """Per interval end: the highest version of every channel, the status bits of the
    interval (any channel's) and how it came (push or re-collection)."""
    import polars as pl

    from openami.bus.contract import ReadSource

    files = [f for d in days for f in lake.day_files(d)]
    if not files:
        return pl.DataFrame(schema={"interval_end": pl.Datetime("us", "UTC")})
    reads = (
        pl.scan_parquet(files)
        .filter(pl.col("meter_id") == meter)
        .select("channel", "interval_end", "value_wh", "version", "source", "status")
        .collect()
        .sort("version")
        .unique(["channel", "interval_end"], keep="last")
    )
    if reads.height == 0:
        return pl.DataFrame(schema={"interval_end": pl.Datetime("us", "UTC")})
    wide = reads.pivot(on="channel", index="interval_end", values="value_wh", sort_columns=True)
    wide = wide.rename({c: CHANNEL_NAMES.get(int(c), f"channel_{c}") for c in wide.columns[1:]})
    per_end = reads.group_by("interval_end").agg(
        status=pl.col("status").cast(pl.Int64).bitwise_or(),
        source=pl.col("source").max(),
        version=pl.col("version").max(),
    )
    names = {int(s): s.name.lower() for s in ReadSource}
    out = wide.join(per_end, on="interval_end").sort("interval_end")
    return out.with_columns(
        pl.col("interval_end").cast(pl.Datetime("us", "UTC")),
        quality=pl.col("status").map_elements(_status_names, return_dtype=pl.String),
        source=pl.col("source").replace_strict(names, default="unknown", return_dtype=pl.String),
    )


def _status_names(status: int) -> str:
    return " ".join(name for bit, name in AMR_STATUS.items() if status & bit) or "ok"


def _validated_rows(store: ValidatedStore, meter: int, days: list[date]) -> pl.DataFrame:
    import polars as pl

    from openami.mdm.vee.flags import describe
    from openami.store.validated import Origin

    frames = [f for d in days if (f := store.current(d, [meter])).height]
    if not frames:
        return pl.DataFrame(schema={"interval_end": pl.Datetime("us", "UTC")})
    rows = pl.concat(frames).filter(pl.col("channel").is_in([1, 2]))
    rows = describe(rows)
    origins = {int(o): o.name.lower() for o in Origin}
    sides = []
    for channel, name in ((1, "import"), (2, "export")):
        sides.append(
            rows.filter(pl.col("channel") == channel).select(
                "interval_end",
                pl.col("value_wh").alias(f"{name}_wh"),
                pl.col("quality").list.join(" ").alias(f"{name}_quality"),
                pl.col("origin")
                .replace_strict(origins, default="unknown", return_dtype=pl.String)
                .alias(f"{name}_origin"),
                pl.col("version").alias(f"{name}_version"),
            )
        )
    out = sides[0].join(sides[1], on="interval_end", how="full", coalesce=True)
    return out.sort("interval_end").with_columns(
        pl.from_epoch("interval_end", "s").dt.replace_time_zone("UTC").alias("interval_end")
    )


def _plain_text(rows: pl.DataFrame) -> pl.DataFrame:
    import polars as pl

    return rows.with_columns(pl.col("interval_end").dt.to_string("%Y-%m-%dT%H:%M:%SZ"))


def _print_reads(rows: pl.DataFrame, meter: int, validated: bool) -> None:
    import polars as pl
    from rich.table import Table

    out = Console()
    text = _plain_text(rows)
    title = f"meter {meter}: {'validated' if validated else 'raw'} reads, interval ends in UTC"
    # the table keeps what a person reads; --csv and --json have every column
    text = text.drop("status", "import_version", "export_version", strict=False)
    if "version" in text.columns and text.get_column("version").max() == 1:
        text = text.drop("version")
    if validated:
        same = pl.col("import_origin").eq_missing(pl.col("export_origin"))
        text = text.with_columns(
            origin=pl.when(same)
            .then(pl.col("import_origin"))
            .otherwise(pl.format("{}/{}", "import_origin", "export_origin"))
        ).drop("import_origin", "export_origin")
    table = Table(title=title)
    for column in text.columns:
        short = column.removesuffix("_wh").replace("import", "imp").replace("export", "exp")
        table.add_column(short.replace("_", " "), no_wrap=column == "interval_end")
    text = text.with_columns(pl.col("interval_end").str.slice(0, 16).str.replace("T", " "))
    for row in text.iter_rows():
        table.add_row(*("" if v is None else str(v) for v in row))
    out.print(table)
