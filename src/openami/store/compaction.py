"""Compaction of the raw lake: a shard folder's many small files made one.

Ingest writes one file per flush and (day, shard) touched, so a day fills with thousands
of small files; every scan then pays to open each. ``compact_day`` rewrites each shard
folder's live files as one ``compact-UPTO-*.parquet``, sorted by meter, channel, interval
end and version (so row-group statistics prune well), holding exactly their rows: every
version of every read stays, nothing is merged away. It commits with one atomic rename
(``store/shard_files`` has the rule readers follow), so a reader sees the old files or the
new one, never both and never neither, and a crash at any point loses nothing.

The files it replaced are removed on a later pass, once the compact file is ``grace``
old: a reader that listed the folder just before the rename may still be reading them.
Reads arriving for a compacted day (re-collection, late pushes) go to new parts beside
the compact file, and the next pass folds them in.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import pyarrow.parquet as pq

from openami.errors import AmiError, StoreError
from openami.store.lake import IntervalLake, write_parquet_atomically
from openami.store.shard_files import (
    COMPACT_PREFIX,
    file_name,
    listing,
    locked,
    record_upto,
)

__all__ = ["DEFAULT_GRACE", "BackgroundCompactor", "CompactionReport", "compact_day"]

DEFAULT_GRACE = timedelta(minutes=10)
ROW_GROUP = 1 << 20
_SORT = [
    ("meter_id", "ascending"),
    ("channel", "ascending"),
    ("interval_end", "ascending"),
    ("version", "ascending"),
]


@dataclass
class CompactionReport:
    day: date
    shards: int = 0  # shard folders looked at
    compacted: int = 0  # shard folders rewritten as one file
    files_before: int = 0  # live files before, in the folders rewritten
    rows: int = 0  # rows rewritten (the same rows, in one file per folder)
    bytes_before: int = 0
    bytes_after: int = 0
    removed: int = 0  # superseded files deleted (of this pass or an earlier one)
    seconds: float = 0.0
    skipped: list[str] = field(default_factory=list)  # folders left as they were, and why
    failed: list[str] = field(default_factory=list)  # folders that could not be compacted


def _remove_superseded(folder: Path, grace: timedelta) -> int:
    """Delete the files the newest compact file holds, once it is ``grace`` old."""
    found = listing(folder)
    if not found.compacts:
        return 0
    newest = found.compacts[-1][1]
    try:
        age = time.time() - newest.stat().st_mtime
    except FileNotFoundError:
        return 0
    if age < grace.total_seconds():
        return 0
    removed = 0
    for path in found.superseded():
        try:
            path.unlink()
            removed += 1
        except FileNotFoundError:
            pass  # another pass removed it
    # temporary files a crashed writer or compaction left, long enough ago
    for stale in folder.glob(".*.tmp"):
        try:
            if time.time() - stale.stat().st_mtime > 3600:
                stale.unlink()
        except FileNotFoundError:
            pass
    return removed


def _compact_folder(folder: Path, report: CompactionReport, min_files: int) -> None:
    with locked(folder, exclusive=True):
        # every part named before this point is whole: writers hold the lock shared
        found = listing(folder)
        live = found.live()
        newer = found.newer
        if len(live) < min_files or not newer:
            report.skipped.append(f"{folder.name}: {len(live)} file(s)")
            return
        upto = newer[-1][0]
        record_upto(folder, upto)  # a writer's clock stepped back cannot name before it
    before = sum(p.stat().st_size for p in live)
    try:
        table = pq.read_table(live, partitioning=None).sort_by(_SORT)
    except (OSError, ValueError) as exc:
        raise StoreError(f"cannot read {folder} to compact it: {exc}") from None
    written = write_parquet_atomically(folder, file_name(upto, COMPACT_PREFIX), table, ROW_GROUP)
    report.compacted += 1
    report.files_before += len(live)
    report.rows += table.num_rows
    report.bytes_before += before
    report.bytes_after += written.stat().st_size


def compact_day(
    lake: IntervalLake,
    day: date,
    *,
    grace: timedelta = DEFAULT_GRACE,
    min_files: int = 2,
) -> CompactionReport:
    """Compact every shard folder of ``day`` holding at least ``min_files`` live files;
    remove what earlier passes superseded, once ``grace`` has passed (zero: at once, for a
    lake no one else is reading). A folder that cannot be read is left as it was and named
    in ``failed``; the others are compacted all the same."""
    began = time.perf_counter()
    report = CompactionReport(day)
    for folder in lake.shard_folders(day):
        report.shards += 1
        report.removed += _remove_superseded(folder, grace)
        try:
            _compact_folder(folder, report, min_files)
        except StoreError as exc:  # that folder stays as it was; the others go on
            report.failed.append(str(exc))
        if grace <= timedelta(0):
            report.removed += _remove_superseded(folder, grace)
    report.seconds = time.perf_counter() - began
    return report


class BackgroundCompactor:
    """Compaction in a thread of its own, for a process that must not wait for it (the
    MDMS consuming the bus): one pass over the days given at a time; a pass asked for
    while one runs is skipped, since the next will cover it. Parquet reading and writing
    release the interpreter, so the thread takes little from the consumer."""

    def __init__(self, lake: IntervalLake, grace: timedelta = DEFAULT_GRACE) -> None:
        self.lake = lake
        self.grace = grace
        self.compacted = 0  # shard folders rewritten, over every pass
        self.errors: list[str] = []  # what went wrong, for the caller to report
        self._thread: threading.Thread | None = None

    def busy(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, days: list[date]) -> bool:
        """Begin a pass over ``days``; False when one is still running."""
        if self.busy() or not days:
            return False
        self._thread = threading.Thread(
            target=self._run, args=(list(days),), name="lake-compaction", daemon=True
        )
        self._thread.start()
        return True

    def _run(self, days: list[date]) -> None:
        for day in days:
            try:
                report = compact_day(self.lake, day, grace=self.grace)
            except AmiError as exc:  # the lake stays as it was: readers see the old files
                self.errors.append(f"compacting {day}: {exc}")
                continue
            self.compacted += report.compacted
            self.errors.extend(f"compacting {day}: {why}" for why in report.failed)

    def join(self, timeout: float) -> bool:
        """Wait for the pass running, at most ``timeout`` s; True when none runs any more.
        A pass cut short by the process ending loses nothing (compaction commits by one
        rename, and leaves only a temporary file otherwise)."""
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.busy()
