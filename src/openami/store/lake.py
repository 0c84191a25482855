"""The interval data lake: Parquet files partitioned by day and meter shard, queried with
DuckDB.

Layout: ``interval_reads/day=YYYY-MM-DD/shard=NNNNN/part-*.parquet`` (and, once a closed
day is compacted, ``compact-*.parquet``: ``store/compaction``), where the shard is
``meter_id // SHARD_METERS``: a range of meter ids, so that VEE and billing, which work on
a chunk of consecutive meters, read only their shards' files instead of filtering the whole
day.

A read's identity is (meter_id, channel, interval_end, version). ``append`` is idempotent:
a read whose (meter, channel, interval end) is stored with the same value is a duplicate
(at-least-once delivery from the bus becomes exactly-once storage); one stored with another
value is kept as the next version and counted as a conflict (a meter that said two
different things about one interval: VEE flags it, and nothing the meter said is lost).
Each append writes one new Parquet file per (day, shard) touched, atomically (temporary
file, fsync, rename, fsync of the folder): a file either exists whole or not at all, so
what ``append`` returned is on disk.

The duplicate check keeps, per interval end, the sorted identities already stored with
their values; it is loaded from the day's files the first time a day is touched, and only
the most recently touched days stay in memory (``index_days``): a long-running consumer's
memory follows the days it is receiving, not the lake's age.
"""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.parquet as pq

from openami.errors import StoreError
from openami.store.shard_files import file_name, live_files, locked, next_stamp

__all__ = [
    "READ_SCHEMA",
    "SHARD_METERS",
    "AppendResult",
    "IntervalLake",
    "may_hold",
    "meter_chunks",
    "meter_files",
    "meter_id_ranges",
    "shard_of",
    "write_parquet_atomically",
]

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
SHARD_METERS = 100_000  # meter ids per shard folder: the size of a VEE chunk


def shard_of(meter_id: int) -> int:
    return meter_id // SHARD_METERS


def meter_chunks(meter_ids: IntArray, most: int) -> list[tuple[int, int]]:
    """Cut sorted ``meter_ids`` into runs of at most ``most`` meters that never cross a
    shard boundary, as (start, stop) positions: a task on one run reads only its own
    shard's files, whole. (Cut by count alone, fleets numbered from 1 put the last meter
    of every run in the next shard, and each run then read that shard's files too, through
    a filter: a sixth of a VEE chunk's reading, measured.)"""
    if most < 1:
        raise ValueError(f"a chunk holds at least one meter, not {most}")
    ids = np.asarray(meter_ids, dtype=np.int64)
    shards = ids // SHARD_METERS
    cuts = np.flatnonzero(shards[1:] != shards[:-1]) + 1
    edges = [0, *cuts.tolist(), ids.size]
    return [
        (lo, min(lo + most, stop))
        for start, stop in itertools.pairwise(edges)
        for lo in range(start, stop, most)
    ]


@dataclass(frozen=True)
class AppendResult:
    written: int
    duplicates: int
    written_by_source: dict[int, int]
    duplicates_by_channel: dict[int, int] = field(default_factory=dict)
    written_by_channel: dict[int, int] = field(default_factory=dict)
    conflicts: int = 0  # written as a new version: another value for a stored identity


def meter_id_ranges(file: pq.ParquetFile) -> list[tuple[int, int] | None]:
    """Per row group of ``file``, its lowest and highest meter id from the Parquet
    statistics (None where the group has none): which groups a meter range must read."""
    column = file.schema_arrow.get_field_index("meter_id")
    ranges: list[tuple[int, int] | None] = []
    for group in range(file.metadata.num_row_groups):
        stats = file.metadata.row_group(group).column(column).statistics
        has = stats is not None and stats.has_min_max
        ranges.append((int(stats.min), int(stats.max)) if has else None)
    return ranges


def may_hold(span: tuple[int, int] | None, lo: int, hi: int) -> bool:
    """Whether a row group whose meter ids span ``span`` (``meter_id_ranges``; None: no
    statistics kept) may hold meter ids in ``lo..hi``."""
    return span is None or (span[0] <= hi and lo <= span[1])


def meter_files(paths: Sequence[Path], lo: int, hi: int) -> tuple[list[Path], bool]:
    """The Parquet files that may hold meter ids in ``lo..hi`` (by their statistics), and
    whether each of those holds only such ids: a reader of that range then needs no
    filter (a filter copies every row it keeps)."""
    chosen, only = [], True
    for path in paths:
        try:
            ranges = meter_id_ranges(pq.ParquetFile(path))
        except (OSError, pa.ArrowException) as exc:
            raise StoreError(f"cannot read {path}: {exc}") from None
        if any(may_hold(r, lo, hi) for r in ranges):
            chosen.append(path)
            only = only and all(r is not None and lo <= r[0] and r[1] <= hi for r in ranges)
    return chosen, only


def write_parquet_atomically(
    folder: Path,
    name: str,
    table: pa.Table,
    row_group_size: int | None = None,
    statistics: list[str] | None = None,
    dictionary: list[str] | None = None,
    compression: str = "zstd",
) -> Path:
    """Write ``table`` as ``folder/name`` whole or not at all: a temporary file, fsync,
    rename, fsync of the folder. What this returned is on disk. ``statistics``: the
    columns whose min/max the file keeps (default: all), for readers to skip row groups;
    ``dictionary``: the columns dictionary-encoded (default: all); ``compression``: the
    Parquet codec."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{name}.{uuid.uuid4().hex[:8]}.tmp"
        with open(tmp, "wb") as handle:
            pq.write_table(
                table,
                handle,
                compression=compression,
                row_group_size=row_group_size,
                write_statistics=True if statistics is None else statistics,
                use_dictionary=True if dictionary is None else dictionary,
            )
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


class _Stored:
    """What one interval end holds: identities (meter << 4 | channel) sorted, each with its
    value; an identity with several versions appears once per version."""

    __slots__ = ("local", "value")

    def __init__(self, local: IntArray, value: IntArray) -> None:
        order = np.argsort(local, kind="stable")
        self.local = local[order]
        self.value = value[order]

    def add(self, local: IntArray, value: IntArray) -> None:
        both = _Stored(np.concatenate([self.local, local]), np.concatenate([self.value, value]))
        self.local, self.value = both.local, both.value


class IntervalLake:
    def __init__(self, root: Path, *, index_days: int = 3) -> None:
        self.root = root
        self.reads_dir = root / "interval_reads"
        try:
            self.reads_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create lake at {self.reads_dir}: {exc.strerror}") from None
        self.index_days = max(1, index_days)
        self._loaded_days: list[int] = []  # least recently touched first
        self._index: dict[int, _Stored] = {}  # interval_end -> what is stored

    # --- writing ---------------------------------------------------------------------------

    def append(self, columns: Mapping[str, Any]) -> AppendResult:
        """Store the reads not stored yet; return how many were written, how many were
        already there with the same value (or repeated within the batch), and how many
        of the written were another value for a stored identity (a new version)."""
        cols = {name: np.asarray(columns[name], dtype=np.int64) for name in _COLUMNS}
        n = cols["meter_id"].shape[0]
        if n == 0:
            return AppendResult(0, 0, {})
        if (cols["channel"] < 0).any() or (cols["channel"] > 15).any():
            raise StoreError("channel outside 0..15")
        if (cols["meter_id"] < 0).any() or (cols["meter_id"] >= MAX_METER_ID).any():
            raise StoreError(f"meter_id outside 0..{MAX_METER_ID - 1}")
        ends, values = cols["interval_end"], cols["value_wh"]
        local = _local_key(cols["meter_id"], cols["channel"])
        days = (ends // 86_400).astype(np.int64)
        touched = [int(day) for day in np.unique(days)]
        for day in touched:
            self._load_day(day)
        # forget the least recently touched days beyond the budget, never this batch's
        while len(self._loaded_days) > max(self.index_days, len(touched)):
            self._forget(self._loaded_days.pop(0))
        version = np.zeros(n, dtype=np.int64)  # 0: not written
        # by interval end, identity, then arrival: a group's first row arrived first
        order = np.lexsort((np.arange(n), local, ends))
        sorted_ends, sorted_local = ends[order], local[order]
        bounds = np.flatnonzero(np.diff(sorted_ends)) + 1
        for lo, hi in zip(np.r_[0, bounds], np.r_[bounds, n], strict=True):
            rows = order[lo:hi]
            stored = self._index.get(int(sorted_ends[lo]))
            version[rows] = _versions(sorted_local[lo:hi], values[rows], stored)
        keep = version > 0
        written = int(keep.sum())
        conflicts = int((version > 1).sum())
        if written:
            self._write(cols, keep, version)
            kept_ends, kept_local, kept_value = ends[keep], local[keep], values[keep]
            for end in np.unique(kept_ends):
                mine = kept_ends == end
                stored = self._index.get(int(end))
                if stored is None:
                    self._index[int(end)] = _Stored(kept_local[mine], kept_value[mine])
                else:
                    stored.add(kept_local[mine], kept_value[mine])
        sources, counts = np.unique(cols["source"][keep], return_counts=True)
        by_source = {int(s): int(c) for s, c in zip(sources, counts, strict=True)}
        dup_channels, dup_counts = np.unique(cols["channel"][~keep], return_counts=True)
        by_channel = {int(c): int(k) for c, k in zip(dup_channels, dup_counts, strict=True)}
        new_channels, new_counts = np.unique(cols["channel"][keep], return_counts=True)
        written_channels = {int(c): int(k) for c, k in zip(new_channels, new_counts, strict=True)}
        return AppendResult(
            written, n - written, by_source, by_channel, written_channels, conflicts
        )

    def _write(
        self, cols: dict[str, IntArray], keep: npt.NDArray[np.bool_], version: IntArray
    ) -> None:
        now = datetime.now(UTC)
        kept = {name: column[keep] for name, column in cols.items()}
        kept_version = version[keep]
        part = (kept["interval_end"] // 86_400) * (MAX_METER_ID // SHARD_METERS + 1) + (
            kept["meter_id"] // SHARD_METERS
        )
        order = np.argsort(part, kind="stable")
        part = part[order]
        bounds = np.flatnonzero(np.diff(part)) + 1
        for lo, hi in zip(np.r_[0, bounds], np.r_[bounds, part.size], strict=True):
            rows = order[lo:hi]
            count = rows.size
            day = int(kept["interval_end"][rows[0]] // 86_400)
            shard = int(kept["meter_id"][rows[0]] // SHARD_METERS)
            table = pa.table(
                {
                    "meter_id": pa.array(kept["meter_id"][rows], pa.int64()),
                    "channel": pa.array(kept["channel"][rows].astype(np.int8), pa.int8()),
                    "interval_end": pa.array(kept["interval_end"][rows], pa.int64()).cast(
                        pa.timestamp("s", tz="UTC")
                    ),
                    "value_wh": pa.array(kept["value_wh"][rows], pa.int64()),
                    "version": pa.array(kept_version[rows].astype(np.int16), pa.int16()),
                    "source": pa.array(kept["source"][rows].astype(np.int8), pa.int8()),
                    "status": pa.array(kept["status"][rows].astype(np.int16), pa.int16()),
                    "received_at": pa.array([now] * count, pa.timestamp("ms", tz="UTC")),
                },
                schema=READ_SCHEMA,
            )
            self._atomic_write(self._folder(day, shard), table)

    def load_unchecked(self, table: pa.Table) -> int:
        """Bulk load of reads known to be new (a migration from another system, a
        benchmark's synthetic day): written in the lake's layout, one file per (day,
        shard), without the duplicate check or its index. ``table`` has ``READ_SCHEMA``'s
        columns. Returns the rows written."""
        table = table.select(READ_SCHEMA.names).cast(READ_SCHEMA)
        ends = table.column("interval_end").cast(pa.int64()).to_numpy()
        meters = table.column("meter_id").to_numpy()
        part = (ends // 86_400) * (MAX_METER_ID // SHARD_METERS + 1) + meters // SHARD_METERS
        order = np.argsort(part, kind="stable")
        bounds = np.flatnonzero(np.diff(part[order])) + 1
        for lo, hi in zip(np.r_[0, bounds], np.r_[bounds, part.size], strict=True):
            rows = order[lo:hi]
            day, shard = int(ends[rows[0]] // 86_400), int(meters[rows[0]] // SHARD_METERS)
            self._atomic_write(self._folder(day, shard), table.take(pa.array(rows)))
        return int(table.num_rows)

    def _folder(self, day: int, shard: int) -> Path:
        return self.reads_dir / f"day={self._day_name(day)}" / f"shard={shard:05d}"

    @staticmethod
    def _atomic_write(folder: Path, table: pa.Table) -> None:
        # named, written and renamed under the folder's shared lock (store/shard_files)
        with locked(folder, exclusive=False):
            write_parquet_atomically(folder, file_name(next_stamp(folder)), table)

    @staticmethod
    def _day_name(day: int) -> str:
        return datetime.fromtimestamp(day * 86_400, tz=UTC).strftime("%Y-%m-%d")

    def _load_day(self, day: int) -> None:
        if day in self._loaded_days:
            self._loaded_days.remove(day)
            self._loaded_days.append(day)
            return
        self._loaded_days.append(day)
        files = self.day_files(datetime.fromtimestamp(day * 86_400, tz=UTC).date())
        if not files:
            return
        table = pq.read_table(files, columns=["meter_id", "channel", "interval_end", "value_wh"])
        # Parquet keeps second timestamps as milliseconds: convert back before keying.
        seconds = table.column("interval_end").cast(pa.timestamp("s", tz="UTC"))
        ends = seconds.cast(pa.int64()).to_numpy()
        local = _local_key(
            table.column("meter_id").to_numpy().astype(np.int64),
            table.column("channel").to_numpy().astype(np.int64),
        )
        values = table.column("value_wh").to_numpy().astype(np.int64)
        order = np.argsort(ends, kind="stable")
        ends, local, values = ends[order], local[order], values[order]
        bounds = np.flatnonzero(np.diff(ends)) + 1
        for lo, hi in zip(np.r_[0, bounds], np.r_[bounds, ends.size], strict=True):
            self._index[int(ends[lo])] = _Stored(local[lo:hi], values[lo:hi])

    def _forget(self, day: int) -> None:
        """Drop a day's identities from memory (they are loaded again if it is touched)."""
        first = day * 86_400
        for end in [e for e in self._index if first <= e < first + 86_400]:
            del self._index[end]

    # --- reading ---------------------------------------------------------------------------

    def files(self) -> list[Path]:
        """Every file holding reads (``shard_files.live_files`` of each shard folder)."""
        return sorted(
            f for folder in self.reads_dir.glob("day=*/shard=*") for f in live_files(folder)
        )

    def days(self) -> list[date]:
        """The days the lake holds reads of, in order."""
        days = []
        for folder in sorted(self.reads_dir.glob("day=*")):
            try:
                day = date.fromisoformat(folder.name.removeprefix("day="))
            except ValueError:
                continue  # not a folder of ours
            if any(live_files(shard) for shard in folder.glob("shard=*")):
                days.append(day)
        return days

    def shard_folders(self, day: date) -> list[Path]:
        """The shard folders of ``day``, in shard order."""
        return sorted((self.reads_dir / f"day={day.isoformat()}").glob("shard=*"))

    def day_files(self, day: date, meters: tuple[int, int] | None = None) -> list[Path]:
        """The files of ``day``; with ``meters`` (first, last id), only those of the shards
        that can hold them."""
        folder = self.reads_dir / f"day={day.isoformat()}"
        if meters is None:
            return sorted(f for shard in self.shard_folders(day) for f in live_files(shard))
        first, last = shard_of(meters[0]), shard_of(meters[1])
        return sorted(
            f for shard in range(first, last + 1) for f in live_files(folder / f"shard={shard:05d}")
        )

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


def _versions(local: IntArray, value: IntArray, stored: _Stored | None) -> IntArray:
    """The version each read of one interval end is written as (0: not written).

    ``local`` is sorted, rows of one identity in arrival order. A read is not written when
    its identity is stored with the same value or an earlier row of the batch has it; it
    is written as the next version when its identity is stored with other values only.
    Usually every identity is new and the batch holds each once: one comparison decides."""
    n = local.size
    repeat = np.zeros(n, dtype=bool)
    repeat[1:] = local[1:] == local[:-1]
    if stored is None or stored.local.size == 0:
        have = np.zeros(n, dtype=np.int64)
        left = have
    else:
        left = np.searchsorted(stored.local, local, "left")
        have = np.searchsorted(stored.local, local, "right") - left
    if not repeat.any() and not have.any():
        return np.ones(n, dtype=np.int64)
    version = np.ones(n, dtype=np.int64)
    single = (have == 1) & ~repeat
    if stored is not None and single.any():
        at = left[single]
        same = stored.value[at] == value[single]
        version[np.flatnonzero(single)] = np.where(same, 0, 2)
    version[(have == 0) & ~repeat] = 1
    # identities stored several times, or repeated in the batch: group by group (rare)
    group_of = np.maximum.accumulate(np.where(repeat, 0, np.arange(n)))
    for group in np.unique(group_of[repeat | (have > 1)]):
        _settle_group(int(group), local, value, stored, left, have, version, repeat)
    return version


def _settle_group(
    start: int,
    local: IntArray,
    value: IntArray,
    stored: _Stored | None,
    left: IntArray,
    have: IntArray,
    version: IntArray,
    repeat: npt.NDArray[np.bool_],
) -> None:
    end = start + 1
    while end < local.size and repeat[end]:
        end += 1
    known: list[int] = []
    if stored is not None and have[start]:
        known = [int(v) for v in stored.value[left[start] : left[start] + have[start]]]
    next_version = len(known) + 1
    for row in range(start, end):
        if int(value[row]) in known:
            version[row] = 0
        else:
            known.append(int(value[row]))
            version[row] = next_version
            next_version += 1
