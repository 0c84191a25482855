"""``openami mdm compact``: the raw lake's small files made one per day and shard."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated

import typer
from rich.console import Console

from openami.cli.mdm_shared import DataDir, _bar, _day, _emit_json, _reflowed, _stores

__all__ = ["compact"]


@_reflowed
def compact(
    data_dir: DataDir,
    day: Annotated[
        list[str] | None,
        typer.Option(
            "--day",
            metavar="YYYY-MM-DD",
            help="A UTC day to compact (YYYY-MM-DD; repeat the option for several). "
            "Default: every day before today's, the days ingest has closed.",
        ),
    ] = None,
    grace_minutes: Annotated[
        float,
        typer.Option(
            min=0.0,
            help="Remove the files a compaction replaced once it is this old: a reader "
            "that listed them just before may still be reading them. 0 removes them at "
            "once (only when nothing else reads the lake).",
        ),
    ] = 10.0,
    min_files: Annotated[
        int, typer.Option(min=1, help="Leave a shard folder with fewer live files as it is.")
    ] = 2,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per day.")] = False,
) -> None:
    """Compact the raw interval lake: each day's shard folder becomes one Parquet file.

    Ingest writes a file per flush, so a day holds thousands of small files and every scan
    opens them all. Compaction rewrites each folder's files as one, sorted by meter and
    interval, with exactly the same rows (every version kept). It is safe beside a running
    `openami mdm run`: readers see the old files or the new one, never both, and reads
    arriving later are folded in by the next pass. Run it again after the grace to delete
    what was replaced.

    Example: openami mdm compact --data-dir /tmp/ami --day 2026-08-03
    """
    from openami.errors import AmiError
    from openami.store.compaction import compact_day

    lake, _ = _stores(data_dir)
    today = datetime.now(UTC).date()
    days: list[date] = (
        [_day(d, "--day") for d in day] if day else [d for d in lake.days() if d < today]
    )
    grace = timedelta(minutes=grace_minutes)
    err = Console(stderr=True)
    if not days:
        err.print("no closed day to compact (use --day for today's)")
        return
    reports = []
    with _bar("compacting", "days", not as_json and err.is_terminal) as progress:
        for done, the_day in enumerate(days, start=1):
            reports.append(compact_day(lake, the_day, grace=grace, min_files=min_files))
            progress(done, len(days))
    failed = [f"{r.day}: {why}" for r in reports for why in r.failed]
    for r in reports:
        if as_json:
            _emit_json(
                {
                    "day": r.day.isoformat(),
                    "shards": r.shards,
                    "compacted": r.compacted,
                    "files_before": r.files_before,
                    "rows": r.rows,
                    "bytes_before": r.bytes_before,
                    "bytes_after": r.bytes_after,
                    "removed": r.removed,
                    "failed": r.failed,
                    "seconds": round(r.seconds, 3),
                }
            )
            continue
        print(
            f"{r.day}: {r.compacted} of {r.shards} shard folders compacted, "
            f"{r.files_before:,} files -> {r.compacted:,}, {r.rows:,} rows, "
            f"{r.bytes_before / 1e6:,.1f} MB -> {r.bytes_after / 1e6:,.1f} MB, "
            f"{r.removed:,} replaced files removed, {r.seconds:.1f} s"
        )
    if failed:
        for line in failed:
            err.print(f"not compacted (left as it was): {line}")
        raise AmiError(f"{len(failed)} shard folder(s) could not be compacted")
