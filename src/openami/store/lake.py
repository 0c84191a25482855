"""The interval data lake: Parquet files partitioned by day, queried with DuckDB.

A read's identity is (meter_id, channel, interval_end, version). ``append`` is idempotent:
reads whose identity is already stored are counted as duplicates and not written again, so
at-least-once delivery from the bus becomes exactly-once storage. Each append writes one new
Parquet file per day touched, atomically (temporary file, fsync, rename, fsync of the
folder): a file either exists whole or not at all, so what ``append`` returned is on disk.

The duplicate check keeps, per interval end, the sorted identities already stored; it is
loaded from the day's files the first time a day is touched.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.parquet as pq

from openami.errors import StoreError

__all__ = ["READ_SCHEMA", "AppendResult", "IntervalLake", "write_parquet_atomically"]

READ_SCHEMA = pa.schema(
    [
        ("meter_id", pa.int64()),
        ("channel", pa.int8()),
        ("interval_end", pa.timestamp("s", tz="UTC")),
        ("value_wh", pa.int64()),
        ("version", pa.int16()),
        ("source", pa.int8()),
        ("status", pa.int16()),
        ("received_at", pa.timestamp("ms", tz="UTC")),
    ]
)
_COLUMNS = ("meter_id", "channel", "interval_end", "value_wh", "source", "status")
IntArray = npt.NDArray[np.int64]
MAX_METER_ID = 2**40  # identities are packed as meter_id << 4 | channel in an int64


@dataclass(frozen=True)
class AppendResult:
    written: int
    duplicates: int
    written_by_source: dict[int, int]
    duplicates_by_channel: dict[int, int] = field(default_factory=dict)
    written_by_channel: dict[int, int] = field(default_factory=dict)


def write_parquet_atomically(
    folder: Path, name: str, table: pa.Table, row_group_size: int | None = None
) -> Path:
    """Write ``table`` as ``folder/name`` whole or not at all: a temporary file, fsync,
    rename, fsync of the folder. What this returned is on disk."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{name}.{uuid.uuid4().hex[:8]}.tmp"
        with open(tmp, "wb") as handle:
            pq.write_table(table, handle, compression="zstd", row_group_size=row_group_size)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, folder / name)
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError as exc:
        raise StoreError(f"cannot write to {folder}: {exc.strerror}") from None
    return folder / name


def _local_key(meter_id: IntArray, channel: IntArray) -> IntArray:
    return np.asarray((meter_id << 4) | channel, dtype=np.int64)


class IntervalLake:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.reads_dir = root / "interval_reads"
        try:
            self.reads_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create lake at {self.reads_dir}: {exc.strerror}") from None
        self._loaded_days: set[str] = set()
        self._index: dict[int, IntArray] = {}  # interval_end -> sorted (meter << 4 | channel)

    # --- writing ---------------------------------------------------------------------------

    def append(self, columns: Mapping[str, Any]) -> AppendResult:
        """Store the reads not stored yet; return how many were written and how many were
        already there (or repeated within the batch)."""
        cols = {name: np.asarray(columns[name], dtype=np.int64) for name in _COLUMNS}
        n = cols["meter_id"].shape[0]
        if n == 0:
            return AppendResult(0, 0, {})
        if (cols["channel"] < 0).any() or (cols["channel"] > 15).any():
            raise StoreError("channel outside 0..15")
        if (cols["meter_id"] < 0).any() or (cols["meter_id"] >= MAX_METER_ID).any():
            raise StoreError(f"meter_id outside 0..{MAX_METER_ID - 1}")
        ends = cols["interval_end"]
        local = _local_key(cols["meter_id"], cols["channel"])
        keep = np.zeros(n, dtype=bool)
        days = (ends // 86_400).astype(np.int64)
        for day in np.unique(days):
            self._load_day(int(day))
        order = np.lexsort((local, ends))
        sorted_ends, sorted_local = ends[order], local[order]
        first = np.ones(n, dtype=bool)  # first occurrence within the batch
        first[1:] = (sorted_ends[1:] != sorted_ends[:-1]) | (sorted_local[1:] != sorted_local[:-1])
        bounds = np.flatnonzero(np.diff(sorted_ends)) + 1
        for lo, hi in zip(np.r_[0, bounds], np.r_[bounds, n], strict=True):
            end = int(sorted_ends[lo])
            seen = self._index.get(end)
            fresh = first[lo:hi].copy()
            if seen is not None and seen.size:
                fresh &= ~np.isin(sorted_local[lo:hi], seen, assume_unique=False)
            keep[order[lo:hi][fresh]] = True
        written = int(keep.sum())
        if written:
            self._write(cols, keep, days)
            kept_ends, kept_local = ends[keep], local[keep]
            for end in np.unique(kept_ends):
                new = kept_local[kept_ends == end]
                old = self._index.get(int(end))
                merged = new if old is None else np.concatenate([old, new])
                self._index[int(end)] = np.sort(merged)
        sources, counts = np.unique(cols["source"][keep], return_counts=True)
        by_source = {int(s): int(c) for s, c in zip(sources, counts, strict=True)}
        dup_channels, dup_counts = np.unique(cols["channel"][~keep], return_counts=True)
        by_channel = {int(c): int(k) for c, k in zip(dup_channels, dup_counts, strict=True)}
        new_channels, new_counts = np.unique(cols["channel"][keep], return_counts=True)
        written_channels = {int(c): int(k) for c, k in zip(new_channels, new_counts, strict=True)}
        return AppendResult(written, n - written, by_source, by_channel, written_channels)

    def _write(
        self, cols: dict[str, IntArray], keep: npt.NDArray[np.bool_], days: IntArray
    ) -> None:
        now = datetime.now(UTC)
        for day in np.unique(days[keep]):
            mask = keep & (days == day)
            count = int(mask.sum())
            table = pa.table(
                {
                    "meter_id": pa.array(cols["meter_id"][mask], pa.int64()),
                    "channel": pa.array(cols["channel"][mask].astype(np.int8), pa.int8()),
                    "interval_end": pa.array(cols["interval_end"][mask], pa.int64()).cast(
                        pa.timestamp("s", tz="UTC")
                    ),
                    "value_wh": pa.array(cols["value_wh"][mask], pa.int64()),
                    "version": pa.array(np.ones(count, np.int16), pa.int16()),
                    "source": pa.array(cols["source"][mask].astype(np.int8), pa.int8()),
                    "status": pa.array(cols["status"][mask].astype(np.int16), pa.int16()),
                    "received_at": pa.array([now] * count, pa.timestamp("ms", tz="UTC")),
                },
                schema=READ_SCHEMA,
            )
            folder = self.reads_dir / f"day={self._day_name(int(day))}"
            self._atomic_write(folder, table)

    @staticmethod
    def _atomic_write(folder: Path, table: pa.Table) -> None:
        name = f"part-{datetime.now(UTC):%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:8]}.parquet"
        write_parquet_atomically(folder, name, table)

    @staticmethod
    def _day_name(day: int) -> str:
        return datetime.fromtimestamp(day * 86_400, tz=UTC).strftime("%Y-%m-%d")

    def _load_day(self, day: int) -> None:
        name = self._day_name(day)
        if name in self._loaded_days:
            return
        self._loaded_days.add(name)
        files = sorted((self.reads_dir / f"day={name}").glob("part-*.parquet"))
        if not files:
            return
        table = pq.read_table(files, columns=["meter_id", "channel", "interval_end"])
        # Parquet keeps second timestamps as milliseconds: convert back before keying.
        seconds = table.column("interval_end").cast(pa.timestamp("s", tz="UTC"))
        ends = seconds.cast(pa.int64()).to_numpy()
        local = _local_key(
            table.column("meter_id").to_numpy().astype(np.int64),
            table.column("channel").to_numpy().astype(np.int64),
        )
        for end in np.unique(ends):
            self._index[int(end)] = np.sort(local[ends == end])

    # --- reading ---------------------------------------------------------------------------

    def files(self) -> list[Path]:
        return sorted(self.reads_dir.glob("day=*/part-*.parquet"))

    def connect(self) -> duckdb.DuckDBPyConnection:
        """A DuckDB connection with the view ``interval_reads`` over every stored file."""
        con = duckdb.connect()
        files = self.files()
        if files:
            listing = ", ".join("'" + f.as_posix().replace("'", "''") + "'" for f in files)
            # the listing holds only our own file paths, never user input
            con.execute(
                f"CREATE VIEW interval_reads AS SELECT * FROM "  # noqa: S608
                f"read_parquet([{listing}], hive_partitioning = false)"
            )
        else:
            con.execute(
                "CREATE TABLE interval_reads (meter_id BIGINT, channel TINYINT, "
                "interval_end TIMESTAMPTZ, value_wh BIGINT, version SMALLINT, source TINYINT, "
                "status SMALLINT, received_at TIMESTAMPTZ)"
            )
        return con

    def interval_span(self) -> tuple[int, int] | None:
        """(first, last) interval end stored, Unix seconds; None for an empty lake."""
        con = self.connect()
        try:
            row = con.execute(
                "SELECT epoch(min(interval_end))::BIGINT, epoch(max(interval_end))::BIGINT "
                "FROM interval_reads"
            ).fetchone()
        finally:
            con.close()
        if row is None or row[0] is None:
            return None
        return int(row[0]), int(row[1])
