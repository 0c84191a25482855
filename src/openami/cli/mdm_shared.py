"""What the ``openami mdm`` commands share: options, opening the stores, parsing days and
times, progress bars and JSON output."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ParamSpec

import typer
from rich.console import Console

if TYPE_CHECKING:
    from openami.mdm.registry import Registry
    from openami.store.lake import IntervalLake
    from openami.store.validated import ValidatedStore

P = ParamSpec("P")


def _reflowed(fn: Callable[P, None]) -> Callable[P, None]:
    """Join the lines of each paragraph of a command's docstring, so that ``--help``
    wraps them to the terminal instead of breaking where the source did."""
    import inspect

    paragraphs = inspect.cleandoc(fn.__doc__ or "").split("\n\n")
    fn.__doc__ = "\n\n".join(" ".join(p.split()) for p in paragraphs)
    return fn


# --- shared by vee, billing and query ---------------------------------------------------------


DataDir = Annotated[
    Path,
    typer.Option(
        "--data-dir",
        help="The data dir: its interval lake is DATA_DIR/lake, its registry "
        "DATA_DIR/registry.db (as `openami demo --data-dir` leaves them).",
    ),
]
SchedulerOpt = Annotated[
    str | None,
    typer.Option(
        "--scheduler",
        help="Where the partitions run: this process (default); 'local': a Dask LocalCluster "
        "of --workers processes on this machine; tcp://HOST:PORT: a running Dask scheduler "
        "(its workers must see the data dir at the same path).",
    ),
]
WorkersOpt = Annotated[
    int, typer.Option(min=1, max=256, help="Worker processes of --scheduler local.")
]
AMR_STATUS = {  # AMR profile status bits (IDIS): what a meter says about its own interval
    0x01: "critical_error",
    0x02: "clock_invalid",
    0x04: "data_not_valid",
    0x08: "daylight_saving",
    0x20: "clock_adjusted",
    0x80: "power_down",
}
CHANNEL_NAMES = {
    1: "import_wh",
    2: "export_wh",
    3: "import_register_wh",
    4: "export_register_wh",
    5: "gas_index_l",
    6: "water_index_l",
}


def _stores(data_dir: Path) -> tuple[IntervalLake, ValidatedStore]:
    from openami.errors import ConfigError
    from openami.store.lake import IntervalLake
    from openami.store.validated import ValidatedStore

    if not (data_dir / "lake" / "interval_reads").is_dir():
        raise ConfigError(
            f"--data-dir {data_dir} holds no interval lake (no lake/interval_reads); "
            f"make one with `openami demo --data-dir {data_dir}` or `openami mdm run`"
        )
    return IntervalLake(data_dir / "lake"), ValidatedStore(data_dir / "lake")


def _registry(data_dir: Path) -> Registry | None:
    from openami.mdm.registry import Registry

    if not (data_dir / "registry.db").is_file():
        return None
    return Registry.open(data_dir=data_dir)


def _day(text: str, option: str) -> date:
    from openami.errors import ConfigError

    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"{option} {text!r} is not a date of the form YYYY-MM-DD") from None


def _instant(text: str, option: str) -> datetime:
    """An ISO 8601 date or date and time; without an offset it is UTC."""
    from openami.errors import ConfigError

    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(
            f"{option} {text!r} is not an ISO 8601 time such as 2026-08-03T09:00+09:00"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _lake_days(lake: IntervalLake) -> list[date]:
    return lake.days()


@contextmanager
def _bar(label: str, unit: str, enabled: bool) -> Iterator[Callable[[int, int], None]]:
    """A Rich progress bar on stderr; yields the ``progress(done, total)`` callback."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    if not enabled:
        yield lambda _done, _total: None
        return
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(unit),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task(label, total=None)

        def report(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield report


def _emit_json(document: Any) -> None:
    sys.stdout.write(json.dumps(document, default=str) + "\n")
