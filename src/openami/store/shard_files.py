"""Which files of a lake shard folder hold its reads, and the lock that keeps writers and
compaction from crossing.

A shard folder (``interval_reads/day=.../shard=NNNNN/``) holds the files appends wrote,
``part-STAMP-XXXXXXXX.parquet``, and, once compacted, ``compact-UPTO-XXXXXXXX.parquet``:
one file with every row of the parts stamped ``UPTO`` or earlier (and of the compaction
before it). The rule every reader follows (``live_files``): the newest compact file, plus
the parts stamped after its ``UPTO``. So compaction commits with one atomic rename: before
it readers see the parts, after it the compact file and nothing twice; the superseded
files are removed later, once no reader can still be reading them (``superseded``).

A stamp is the wall-clock time a writer named its file. For the rule to lose nothing, a
part must never be named at or before an ``UPTO`` it is not included in. Two things see
to it: writers name, write and rename their file holding the folder's lock shared, and
compaction lists the folder holding it exclusively, so every part named before the
listing is whole in it; and a writer whose clock reads at or before the folder's recorded
``UPTO`` (a clock stepped back) takes a stamp just after it instead.
"""

from __future__ import annotations

import fcntl
import os
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

__all__ = [
    "COMPACT_PREFIX",
    "PART_PREFIX",
    "ShardListing",
    "file_name",
    "listing",
    "live_files",
    "locked",
    "next_stamp",
    "part_stamp",
    "record_upto",
    "stamp_of",
]

PART_PREFIX, COMPACT_PREFIX = "part-", "compact-"
_NAME = re.compile(r"^(part|compact)-(\d{8}T\d{12})-[0-9a-f]{8}\.parquet$")
STAMP_FORMAT = "%Y%m%dT%H%M%S%f"
LOCK_NAME, UPTO_NAME = ".lock", ".upto"
_STAMP = re.compile(r"\d{8}T\d{12}")


def stamp_of(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(STAMP_FORMAT)


def file_name(stamp: str, prefix: str = PART_PREFIX) -> str:
    """A store file's name, ``PREFIX-STAMP-XXXXXXXX.parquet`` (eight random hex digits):
    the parts of the lake, the validated store and the event store, and compact files."""
    return f"{prefix}{stamp}-{uuid.uuid4().hex[:8]}.parquet"


def part_stamp(name: str) -> str | None:
    """The stamp of a part's file name; None for any other name."""
    match = _NAME.match(name)
    return match.group(2) if match is not None and match.group(1) == "part" else None


def _moment(stamp: str) -> datetime:
    return datetime.strptime(stamp, STAMP_FORMAT).replace(tzinfo=UTC)


@dataclass(frozen=True)
class ShardListing:
    """A shard folder's files, sorted by stamp: ``parts`` and ``compacts`` as
    (stamp, path)."""

    parts: list[tuple[str, Path]]
    compacts: list[tuple[str, Path]]

    @property
    def upto(self) -> str | None:
        """The stamp the newest compact file covers (None: never compacted)."""
        return self.compacts[-1][0] if self.compacts else None

    @property
    def newer(self) -> list[tuple[str, Path]]:
        """The parts the newest compact file does not hold (every part, uncompacted)."""
        upto = self.upto
        return self.parts if upto is None else [(s, p) for s, p in self.parts if s > upto]

    def live(self) -> list[Path]:
        """The files that hold the folder's reads, each read once."""
        kept = [p for _, p in self.newer]
        return kept if not self.compacts else [self.compacts[-1][1], *kept]

    def superseded(self) -> list[Path]:
        """Files whose rows the newest compact file holds."""
        upto = self.upto
        if upto is None:
            return []
        return [p for s, p in self.parts if s <= upto] + [p for _, p in self.compacts[:-1]]


def listing(folder: Path) -> ShardListing:
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return ShardListing([], [])
    parts: list[tuple[str, Path]] = []
    compacts: list[tuple[str, Path]] = []
    for name in names:
        match = _NAME.match(name)
        if match is None:
            continue  # temporary files, the lock, anything not ours
        (parts if match.group(1) == "part" else compacts).append((match.group(2), folder / name))
    parts.sort()
    compacts.sort()
    return ShardListing(parts, compacts)


def live_files(folder: Path) -> list[Path]:
    """The files of a shard folder that hold its reads (module docstring), sorted."""
    return sorted(listing(folder).live())


@contextmanager
def locked(folder: Path, *, exclusive: bool) -> Iterator[None]:
    """Hold the folder's lock: shared for a writer, exclusive for compaction's listing."""
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def next_stamp(folder: Path, now: datetime | None = None) -> str:
    """The stamp for a new part in ``folder`` (hold the lock shared): now, or just after
    the compacted ``UPTO`` (``record_upto``) when the clock reads earlier than that. One
    small file read, not a listing: a folder may hold many parts before it is compacted."""
    stamp = stamp_of(now or datetime.now(UTC))
    try:
        upto = (folder / UPTO_NAME).read_text("ascii").strip()
    except FileNotFoundError:
        return stamp
    if _STAMP.fullmatch(upto) and stamp <= upto:
        stamp = stamp_of(_moment(upto) + timedelta(microseconds=1))
    return stamp


def record_upto(folder: Path, upto: str) -> None:
    """Remember the newest ``UPTO`` a compaction will commit (hold the lock exclusively),
    for ``next_stamp``; written aside and renamed, so a writer reads all of it or none."""
    tmp = folder / f".{UPTO_NAME}.{os.getpid()}.tmp"
    tmp.write_text(upto, "ascii")
    os.replace(tmp, folder / UPTO_NAME)
