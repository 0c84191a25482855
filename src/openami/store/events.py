"""The meter event store: what meters reported (power down and up, tamper, clock errors,
reverse flow, unit swaps), kept beside the interval lake.

Layout: ``meter_events/day=YYYY-MM-DD/part-*.parquet``, by the UTC day of the event's time,
one row per event: ``meter_id``, ``time`` (as the meter stamped it), ``code`` (the meter's
event code, ``openami.protocols.dlms.notification.EventCode``), ``value`` and
``received_at``.

An event's identity is (meter_id, time, code, value): ``append`` writes what is not stored
yet and counts the rest as duplicates, so the bus's at-least-once delivery becomes
exactly-once storage, as in the lake. Each append writes one file per day touched with the
lake's atomic write, so what ``append`` returned is on disk. Events are few next to reads
(a meter sends a handful a day, an outage some per meter), so the identities of the days
touched are kept in a set.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from openami.errors import StoreError
from openami.store.lake import write_parquet_atomically
from openami.store.shard_files import file_name, stamp_of
from openami.store.validated import day_of, utc_days

__all__ = ["EVENT_SCHEMA", "EventAppend", "EventStore"]

EVENT_SCHEMA = pa.schema(
    [
        ("meter_id", pa.int64()),
        ("time", pa.timestamp("s", tz="UTC")),
        ("code", pa.int16()),
        ("value", pa.int64()),
        ("received_at", pa.timestamp("ms", tz="UTC")),
    ]
)
_COLUMNS = ("meter_id", "time", "code", "value")
Identity = tuple[int, int, int, int]


@dataclass(frozen=True)
class EventAppend:
    written: int
    duplicates: int
    kept: tuple[int, ...] = ()  # positions in the batch of the events written


class EventStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.events_dir = root / "meter_events"
        try:
            self.events_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create {self.events_dir}: {exc.strerror}") from None
        self._seen: dict[date, set[Identity]] = {}

    def append(
        self, columns: Mapping[str, Any], received_at: datetime | None = None
    ) -> EventAppend:
        """Store the events (``time`` in Unix seconds) not stored yet."""
        cols = {name: np.asarray(columns[name], dtype=np.int64) for name in _COLUMNS}
        n = cols["meter_id"].size
        if any(c.size != n for c in cols.values()):
            raise StoreError("event columns differ in length")
        if n == 0:
            return EventAppend(0, 0)
        if (cols["code"] < -(2**15)).any() or (cols["code"] >= 2**15).any():
            raise StoreError("event code outside a 16-bit range")
        keep = np.zeros(n, dtype=bool)
        rows = zip(*(cols[c].tolist() for c in _COLUMNS), strict=True)
        for i, identity in enumerate(rows):
            seen = self._day_identities(day_of(identity[1]))
            if identity not in seen:
                seen.add(identity)
                keep[i] = True
        written = int(keep.sum())
        if written:
            self._write({c: v[keep] for c, v in cols.items()}, received_at or datetime.now(UTC))
        return EventAppend(written, n - written, tuple(np.flatnonzero(keep).tolist()))

    def _write(self, cols: dict[str, np.ndarray[Any, Any]], at: datetime) -> None:
        days = cols["time"] // 86_400
        for day in np.unique(days):
            mine = days == day
            table = pa.table(
                {
                    "meter_id": pa.array(cols["meter_id"][mine], pa.int64()),
                    "time": pa.array(cols["time"][mine], pa.int64()).cast(EVENT_SCHEMA[1].type),
                    "code": pa.array(cols["code"][mine].astype(np.int16), pa.int16()),
                    "value": pa.array(cols["value"][mine], pa.int64()),
                    "received_at": pa.array([at] * int(mine.sum()), EVENT_SCHEMA[4].type),
                },
                schema=EVENT_SCHEMA,
            )
            name = file_name(stamp_of(at))
            write_parquet_atomically(self._folder(day_of(int(day) * 86_400)), name, table)

    def _folder(self, day: date) -> Path:
        return self.events_dir / f"day={day.isoformat()}"

    def files(self, days: Iterable[date] | None = None) -> list[Path]:
        if days is None:
            return sorted(self.events_dir.glob("day=*/part-*.parquet"))
        return sorted(f for d in days for f in self._folder(d).glob("part-*.parquet"))

    def _day_identities(self, day: date) -> set[Identity]:
        seen = self._seen.get(day)
        if seen is None:
            seen = set()
            files = self.files([day])
            if files:
                table = pq.read_table(files, columns=list(_COLUMNS))
                times = table.column("time").cast(pa.timestamp("s", tz="UTC")).cast(pa.int64())
                seen = set(
                    zip(
                        table.column("meter_id").to_pylist(),
                        times.to_pylist(),
                        table.column("code").to_pylist(),
                        table.column("value").to_pylist(),
                        strict=True,
                    )
                )
            self._seen[day] = seen
        return seen

    def query(
        self,
        start: datetime,
        end: datetime,
        *,
        meter_ids: Sequence[int] | None = None,
        codes: Sequence[int] | None = None,
    ) -> pl.DataFrame:
        """Events with ``start <= time < end`` (aware datetimes), ordered by time then
        meter: ``meter_id``, ``time`` (Unix s), ``code``, ``value``, ``received_at``."""
        if start.tzinfo is None or end.tzinfo is None:
            raise StoreError("start and end must be aware datetimes")
        lo, hi = int(start.timestamp()), int(end.timestamp())
        days = utc_days(day_of(lo), day_of(max(lo, hi - 1)))
        files = self.files(days)
        schema: dict[str, pl.DataType] = {
            "meter_id": pl.Int64(),
            "time": pl.Int64(),
            "code": pl.Int16(),
            "value": pl.Int64(),
            "received_at": pl.Datetime("ms", "UTC"),
        }
        if not files:
            return pl.DataFrame(schema=schema)
        frame = (
            pl.scan_parquet(files)
            .with_columns(pl.col("time").dt.epoch("s"))
            .filter(pl.col("time").is_between(lo, hi - 1))
        )
        if meter_ids is not None:
            frame = frame.filter(pl.col("meter_id").is_in(list(meter_ids)))
        if codes is not None:
            frame = frame.filter(pl.col("code").is_in(list(codes)))
        return frame.sort("time", "meter_id").collect().cast(pl.Schema(schema))
