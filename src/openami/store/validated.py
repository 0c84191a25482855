"""Validated reads: the versions VEE and people make of the raw reads, kept apart from them.

Where they live: a second day-partitioned Parquet dataset next to the raw one,
``validated_reads/day=YYYY-MM-DD/part-*.parquet``, one row per (meter, channel, interval
end, version) of the interval channels, with the quality flags (``openami.mdm.vee.flags``),
the value's origin (measured, estimated, edited, or missing) and, for edits, who and why.

Why apart: the raw dataset is the evidence of what the meters said, and stays exactly as
received; everything VEE concludes can be recomputed from it with other rules. Bills,
Route C and reports read the validated dataset. Keeping both in one table would mean
rewriting raw files on every estimate, or every reader filtering raw from derived.

Why versions, not updates: every change is a new row with the next version number and the
previous rows stay, so an estimate replaced by the late actual, or a value a person edited,
can always be shown with what it was before (the audit is a view: ``audit``). The current
value of a read is its highest version. A write is one new file per day touched, written the
way ``lake.py`` writes (temporary file, fsync, rename, fsync of the folder): a run's rows are
all there or none are, and because who/why travel in the same row as the edited value, an
edit and its audit record cannot be separated by a crash.

Next to it, two small per-day files VEE needs the next time it runs, each replaced whole:
``vee_stats/day=.../stats.parquet`` (per meter: median, MAD, peak of the day, for the spike
rule) and ``vee_gaps/day=.../gaps.parquet`` (the re-collection state of missing intervals).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from enum import IntEnum
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from openami.errors import StoreError
from openami.store.lake import meter_files, write_parquet_atomically
from openami.store.shard_files import file_name, stamp_of

__all__ = [
    "KEY",
    "VALIDATED_SCHEMA",
    "Origin",
    "ValidatedStore",
    "day_of",
    "day_start",
    "latest_versions",
    "span_days",
    "utc_days",
]

# Columns that always have a value are declared so: Parquet then stores no null markers
# for them (a tenth of the time a VEE chunk spends writing)
VALIDATED_SCHEMA = pa.schema(
    [
        pa.field("meter_id", pa.int64(), nullable=False),
        pa.field("channel", pa.int8(), nullable=False),
        pa.field("interval_end", pa.timestamp("s", tz="UTC"), nullable=False),
        ("value_wh", pa.int64()),  # null: missing, with origin MISSING
        pa.field("version", pa.int16(), nullable=False),
        pa.field("flags", pa.uint32(), nullable=False),
        pa.field("origin", pa.int8(), nullable=False),
        ("edited_by", pa.string()),
        ("reason", pa.string()),
        pa.field("written_at", pa.timestamp("ms", tz="UTC"), nullable=False),
    ]
)
KEY = ["meter_id", "channel", "interval_end"]
_REQUIRED = [f.name for f in VALIDATED_SCHEMA if not f.nullable and f.name != "written_at"]
_POLARS = {
    "meter_id": pl.Int64(),
    "channel": pl.Int8(),
    "interval_end": pl.Int64(),  # Unix seconds inside openami's frames
    "value_wh": pl.Int64(),
    "version": pl.Int16(),
    "flags": pl.UInt32(),
    "origin": pl.Int8(),
    "edited_by": pl.String(),
    "reason": pl.String(),
}
ROW_GROUP = 1 << 20
SIDE_ROW_GROUP = 1 << 16  # the per-meter statistics and gap books


class Origin(IntEnum):
    MISSING = 0  # no value yet (flagged missing, waiting for re-collection or estimation)
    MEASURED = 1
    ESTIMATED = 2
    EDITED = 3


def latest_versions(rows: pl.DataFrame) -> pl.DataFrame:
    """The current value of each read: its highest version (any order out)."""
    return rows.sort("version").unique(KEY, keep="last")


def day_start(day: date) -> int:
    """Unix seconds of 00:00 UTC of ``day``: the first interval end its file holds."""
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())


def day_of(interval_end: int) -> date:
    return datetime.fromtimestamp(interval_end - interval_end % 86_400, tz=UTC).date()


def utc_days(first: date, last: date) -> list[date]:
    """Every day from ``first`` to ``last``, both included (none when ``last`` is before)."""
    return [first + timedelta(days=k) for k in range((last - first).days + 1)]


def span_days(start: datetime, end: datetime) -> list[date]:
    """The UTC days of the lake and the stores holding interval ends in (start, end]."""
    return utc_days(
        (start + timedelta(seconds=1)).astimezone(UTC).date(), end.astimezone(UTC).date()
    )


def _day_name(day: date) -> str:
    return day.isoformat()


def _atomic_write(folder: Path, name: str, table: pa.Table) -> Path:
    # min/max only where readers filter (meter ranges, days): the others cost time to write.
    # A dictionary only for the values: on a VEE chunk's 9.6 M rows it saves more bytes
    # there than anywhere else, while building one for the other columns took a third of
    # the write (0.49 s against 0.32 s) for 0.8 B/read either way (measured)
    return write_parquet_atomically(
        folder, name, table, ROW_GROUP, statistics=KEY, dictionary=["value_wh"]
    )


def _empty() -> pl.DataFrame:
    return pl.DataFrame(schema=_POLARS)


class ValidatedStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.reads_dir = root / "validated_reads"
        self.stats_dir = root / "vee_stats"
        self.gaps_dir = root / "vee_gaps"
        try:
            self.reads_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create {self.reads_dir}: {exc.strerror}") from None

    # --- validated reads ------------------------------------------------------------------

    def append(self, rows: pl.DataFrame, written_at: datetime | None = None) -> int:
        """Store versions (``interval_end`` in Unix seconds; ``edited_by``/``reason``
        optional); one new file per day touched, rows in the order given (VEE gives them
        by channel, meter and interval end, which Parquet compresses best). Returns the
        rows written."""
        if rows.height == 0:
            return 0
        at = written_at or datetime.now(UTC)
        # who and why come only with edits: VEE's millions of rows get null columns made
        # in Arrow, not text columns made in Polars and converted (half the time of this
        # step, measured)
        text = [c for c in ("edited_by", "reason") if c in rows.columns]
        full = rows.select([pl.col(c).cast(t) for c, t in _POLARS.items() if c in _REQUIRED])
        full = full.with_columns(
            rows.get_column("value_wh").cast(pl.Int64()),
            *(rows.get_column(c).cast(pl.String()) for c in text),
        )
        nulls = [c for c in _REQUIRED if full.get_column(c).null_count()]
        if nulls:
            raise StoreError(f"validated reads not stored: no value in column {nulls[0]!r}")
        stamp = int(at.timestamp() * 1000)
        ends = full.get_column("interval_end")
        first, last = ends.min(), ends.max()
        # VEE writes one day at a time: no split to make then
        if int(first) // 86_400 == int(last) // 86_400:  # type: ignore[arg-type]
            parts = [full]
        else:
            parts = full.with_columns(_day=pl.col("interval_end") // 86_400).partition_by(
                "_day", maintain_order=True, include_key=False
            )
        for part in parts:
            table = part.to_arrow()
            day = day_of(int(part.get_column("interval_end")[0]))
            columns = {c: table.column(c) for c in part.columns if c != "interval_end"}
            columns["interval_end"] = table.column("interval_end").cast(pa.timestamp("s", tz="UTC"))
            for c in ("edited_by", "reason"):
                if c not in columns:
                    columns[c] = pa.nulls(part.height, pa.string())
            columns["written_at"] = pa.array(np.full(part.height, stamp, dtype=np.int64)).cast(
                pa.timestamp("ms", tz="UTC")
            )
            table = pa.table(columns).select(VALIDATED_SCHEMA.names).cast(VALIDATED_SCHEMA)
            name = file_name(stamp_of(at))
            _atomic_write(self.reads_dir / f"day={_day_name(day)}", name, table)
        return rows.height

    def files(self, day: date) -> list[Path]:
        return sorted((self.reads_dir / f"day={_day_name(day)}").glob("part-*.parquet"))

    def versions(
        self, day: date, meter_ids: Sequence[int] | pl.Series | None = None
    ) -> pl.DataFrame:
        """Every stored version of the day's reads (optionally of some meters only), with
        ``interval_end`` in Unix seconds and ``written_at`` as stored."""
        files = self.files(day)
        ids = None if meter_ids is None else pl.Series(meter_ids, dtype=pl.Int64)
        if files and ids is not None:
            # only the files whose statistics may hold these meters (a VEE chunk's own);
            # none for no meters, without reading any
            lo, hi = ids.min(), ids.max()
            files = meter_files(files, int(lo), int(hi))[0] if ids.len() else []  # type: ignore[arg-type]
        if not files:
            return _empty().with_columns(written_at=pl.lit(None, dtype=pl.Datetime("ms", "UTC")))
        try:
            scan = pl.scan_parquet(files)
            if ids is not None:
                scan = scan.filter(
                    pl.col("meter_id").is_between(ids.min(), ids.max())
                    & pl.col("meter_id").is_in(ids.implode())
                )
            return scan.with_columns(
                pl.col("interval_end").dt.epoch("s").alias("interval_end")
            ).collect()
        except (OSError, pl.exceptions.PolarsError) as exc:
            raise StoreError(f"cannot read validated reads of {day}: {exc}") from None

    def current(
        self, day: date, meter_ids: Sequence[int] | pl.Series | None = None
    ) -> pl.DataFrame:
        """The highest version of each read of the day."""
        rows = self.versions(day, meter_ids)
        if len(self.files(day)) <= 1:
            return rows
        return latest_versions(rows).sort(KEY)

    def audit(self, days: Iterable[date]) -> pl.DataFrame:
        """Every edit of those days: the new value and flags, who, why and when, next to
        the version it replaced (``previous_value_wh``, ``previous_flags``,
        ``previous_origin``, ``previous_version``)."""
        frames = [self.versions(d) for d in days]
        rows = pl.concat(frames) if frames else _empty()
        if rows.height == 0:
            return rows.with_columns(
                previous_version=pl.lit(None, pl.Int16),
                previous_value_wh=pl.lit(None, pl.Int64),
                previous_flags=pl.lit(None, pl.UInt32),
                previous_origin=pl.lit(None, pl.Int8),
            )
        rows = rows.sort([*KEY, "version"])
        prev = [
            pl.col(c).shift(1).over(KEY).alias(f"previous_{c}")
            for c in ("version", "value_wh", "flags", "origin")
        ]
        return rows.with_columns(prev).filter(pl.col("edited_by").is_not_null())

    def bytes_per_read(self, day: date) -> float:
        """Stored bytes per stored read version of the day."""
        files = self.files(day)
        count = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
        return sum(f.stat().st_size for f in files) / count if count else 0.0

    # --- per-day side files ---------------------------------------------------------------

    def _save(self, folder: Path, day: date, name: str, frame: pl.DataFrame) -> None:
        # per-meter rows in meter order: small row groups let a VEE chunk read only its
        # meters' rows (their statistics prune the rest), not the whole fleet's 28 times.
        # LZ4, not zstd: a chunk reads 28 of these a day, and zstd's decoding was most of
        # that (3.0 ms a day's file against 4.9 ms, for 18.5 MB a million meters against
        # 14.7, measured)
        write_parquet_atomically(
            folder / f"day={_day_name(day)}",
            name,
            frame.to_arrow(),
            SIDE_ROW_GROUP,
            compression="lz4",
        )

    def _load(self, folder: Path, day: date, name: str) -> pl.DataFrame | None:
        path = folder / f"day={_day_name(day)}" / name
        if not path.exists():
            return None
        try:
            return pl.read_parquet(path)
        except (OSError, pl.exceptions.PolarsError) as exc:
            raise StoreError(f"cannot read {path}: {exc}") from None

    def save_stats(self, day: date, stats: pl.DataFrame) -> None:
        self._save(self.stats_dir, day, "stats.parquet", stats)

    def load_stats(
        self,
        days: Iterable[date],
        meters: tuple[int, int] | None = None,
        columns: Sequence[str] | None = None,
    ) -> pl.DataFrame | None:
        """The VEE statistics of ``days`` (None when no day has any); with ``meters``
        (first, last id) only those meters' rows, read by row group; with ``columns``
        only those columns."""
        paths = [
            path
            for d in days
            if (path := self.stats_dir / f"day={_day_name(d)}" / "stats.parquet").exists()
        ]
        if not paths:
            return None
        rows = pl.scan_parquet(paths)
        if meters is not None:
            rows = rows.filter(pl.col("meter_id").is_between(*meters))
        if columns is not None:
            rows = rows.select(columns)
        try:
            return rows.collect()
        except (OSError, pl.exceptions.PolarsError) as exc:
            raise StoreError(f"cannot read the VEE statistics in {self.stats_dir}: {exc}") from None

    def save_gaps(self, day: date, gaps: pl.DataFrame) -> None:
        self._save(self.gaps_dir, day, "gaps.parquet", gaps)

    def load_gaps(self, day: date) -> pl.DataFrame | None:
        return self._load(self.gaps_dir, day, "gaps.parquet")
