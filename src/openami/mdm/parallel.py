"""Scale-out of VEE and billing determinants: independent partitions, in-process or on Dask.

Both stages are partition-parallel by construction (``vee.engine`` and
``billing.determinants`` are pure functions of one partition), so scaling out is only a
matter of where the partitions run:

- **VEE of a day** (:func:`run_vee_day`): one partition is a chunk of meters (a contiguous
  meter-id range) of that day. A task reads its meters' raw reads from the lake, runs the
  partition pass and appends its changed versions to the validated store (its own file,
  written atomically). Each task condenses its own meters' trailing history from the
  per-day statistics (so the driver's memory does not grow with the fleet's history); the
  driver hands each its part of the gap book, and saves the day's gap book and statistics
  from the tasks' results at the end, as ``vee.run.run_day`` does; the result is the same,
  read for read.
- **Determinants of a billing cycle** (:func:`billing_for_cycle`): one partition is a shard
  of meters. A task loads its shard's reads over the cycle (validated reads by default, by
  meter-id range, which the validated files' statistics prune; or raw lake reads by
  ``meter_id % n``), accumulates partial determinants and finalizes them against the
  shard's contracts. Shards split the meters, so a contract's reads are all in one shard:
  the driver only puts the shards' determinants together (no merge of partials, and the
  finalizing runs on the workers too).

Where they run (``scheduler``):

- ``None`` (the default): one after another in this process;
- ``"local"``: a Dask ``LocalCluster`` of worker processes on this machine (two workers of
  one thread each by default), started for the call and closed after it;
- ``"tcp://HOST:PORT"``: the scheduler of a running Dask cluster (``dask scheduler`` and
  ``dask worker`` on other machines), for data that outgrows one machine. The workers run
  openami's own functions (the same version must be installed there) and open the lake and
  the validated store by path, so the data dir must be the same path on every worker (a
  shared file system);
- a ``distributed.Client`` already connected (tests, notebooks): used, not closed.

The same task functions run on every path; the tests check that the Dask path gives the
same validated store content and the same determinants as the in-process one.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import numpy as np
import polars as pl

from openami.allocators import batch_env
from openami.errors import AmiError, ConfigError
from openami.mdm.billing import (
    BillingCalendar,
    BillingMonth,
    TariffBook,
    accumulate,
    finalize,
    load_interval_reads,
    load_tariffs,
    load_validated_reads,
)
from openami.mdm.billing.frames import check_contracts
from openami.mdm.vee.config import VeeConfig
from openami.mdm.vee.run import RunSummary, one_after_another, run_day
from openami.store.lake import IntervalLake, meter_chunks, meter_files
from openami.store.validated import KEY, ValidatedStore, latest_versions

if TYPE_CHECKING:
    from distributed import Client, LocalCluster

__all__ = [
    "DEFAULT_WORKERS",
    "WORKER_ENV",
    "InProcess",
    "Runner",
    "billing_for_cycle",
    "cycle_span",
    "local_cluster",
    "open_runner",
    "run_vee_day",
]

M = "meter_id"
DEFAULT_WORKERS = 2  # this machine has two cores
# a worker process is one partition at a time on one core: Polars' own thread pool in each
# would only contend with the other workers (measured: 4% slower on two cores)
# Polars on one thread: a worker is one process of one thread, and a Polars pool per worker
# would only fight the other workers for the cores
WORKER_ENV = {"POLARS_MAX_THREADS": "1"}
_INLINE_BYTES = 256 * 1024  # task arguments larger than this are scattered, not inlined
R = TypeVar("R")
Progress = Callable[[int, int], None]


# --- where partitions run --------------------------------------------------------------------


class Runner(Protocol):
    """Runs independent calls of one function and yields ``(index, result)`` as each ends."""

    name: str

    def share(self, value: Any) -> Any:
        """What to pass to the tasks for a value every task reads (sent once, not per task)."""

    def run(
        self, fn: Callable[..., R], calls: Sequence[tuple[Any, ...]]
    ) -> Iterator[tuple[int, R]]:
        """``fn(*calls[i])`` for every i, yielded in the order they finish."""


class InProcess:
    """Every partition in this process, one after another."""

    name = "in-process"

    def share(self, value: Any) -> Any:
        return value

    def run(
        self, fn: Callable[..., R], calls: Sequence[tuple[Any, ...]]
    ) -> Iterator[tuple[int, R]]:
        return one_after_another(fn, calls)


class _Dask:
    """Every partition a task on a Dask cluster, through a connected client."""

    def __init__(self, client: Client, name: str) -> None:
        self.client = client
        self.name = name

    def share(self, value: Any) -> Any:
        return self.client.scatter(value, broadcast=True, hash=False)  # type: ignore[no-untyped-call]

    def _ship(self, args: tuple[Any, ...]) -> tuple[Any, ...]:
        """Frames and arrays of a task go to the cluster on their own, not inside the task
        graph (which Dask wants small)."""
        out = []
        for arg in args:
            size = (
                arg.estimated_size()
                if isinstance(arg, pl.DataFrame)
                else arg.nbytes
                if isinstance(arg, np.ndarray)
                else 0
            )
            big = size > _INLINE_BYTES
            out.append(self.client.scatter(arg, hash=False) if big else arg)  # type: ignore[no-untyped-call]
        return tuple(out)

    def run(
        self, fn: Callable[..., R], calls: Sequence[tuple[Any, ...]]
    ) -> Iterator[tuple[int, R]]:
        from distributed import as_completed

        futures = [self.client.submit(fn, *self._ship(args), pure=False) for args in calls]
        index = {future.key: i for i, future in enumerate(futures)}
        try:
            for future in as_completed(futures):  # type: ignore[no-untyped-call]
                yield index[future.key], future.result()
        finally:
            self.client.cancel([f for f in futures if not f.done()])  # type: ignore[no-untyped-call]


@contextmanager
def local_cluster(workers: int = DEFAULT_WORKERS) -> Iterator[LocalCluster]:
    """A Dask ``LocalCluster`` of ``workers`` processes of one thread, closed on the way
    out. Its workers start with ``WORKER_ENV`` and the allocator settings of
    ``openami.allocators`` (they keep freed memory for the next chunk). Those must be in a
    process's environment before it starts, so they go in as Dask's pre-spawn environment
    (whose own setting would make glibc give memory back at every free), and into this
    process's environment, which Dask lets override it."""
    import dask
    from distributed import LocalCluster

    if workers < 1:
        raise ConfigError(f"a local Dask cluster needs at least one worker, not {workers}")
    settings = batch_env()
    environ = {**dask.config.get("distributed.nanny.pre-spawn-environ", {}), **settings}
    # Dask lets this process's environment override its pre-spawn settings, and Polars
    # has written its own jemalloc defaults there: the environment must say ours too
    os.environ.update(settings)
    with dask.config.set({"distributed.nanny.pre-spawn-environ": environ}):
        cluster = LocalCluster(  # type: ignore[no-untyped-call]
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=":0",  # no fixed port: two clusters may run side by side
            env=WORKER_ENV,
        )
    try:
        yield cluster
    finally:
        cluster.close()


@contextmanager
def open_runner(
    scheduler: str | Client | None = None,
    *,
    workers: int = DEFAULT_WORKERS,
    timeout: float = 10.0,
) -> Iterator[Runner]:
    """The runner for ``scheduler`` (module docstring); a cluster or client it started is
    closed on the way out, also after an error. ``workers``: of a local cluster;
    ``timeout``: seconds to wait for a remote scheduler."""
    if scheduler is None or scheduler in ("", "in-process"):
        yield InProcess()
        return
    if not isinstance(scheduler, str):
        yield _Dask(scheduler, "dask (a connected client)")
        return
    from distributed import Client

    if scheduler == "local":
        with local_cluster(workers) as cluster, Client(cluster) as client:  # type: ignore[no-untyped-call]
            yield _Dask(client, f"dask local ({workers} processes)")
        return
    if scheduler.startswith(("tcp://", "tls://", "ucx://", "inproc://")):
        try:
            client = Client(scheduler, timeout=f"{timeout}s")  # type: ignore[no-untyped-call]
        except (OSError, TimeoutError) as exc:
            raise AmiError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from None
        try:
            yield _Dask(client, f"dask {scheduler}")
        finally:
            client.close()  # type: ignore[no-untyped-call]
        return
    raise ConfigError(
        f"scheduler {scheduler!r} is not 'local' or a Dask scheduler address (tcp://HOST:PORT)"
    )


# --- VEE of a day -----------------------------------------------------------------------------


def run_vee_day(
    lake: IntervalLake,
    store: ValidatedStore,
    day: date,
    attributes: pl.DataFrame,
    *,
    now: int,
    config: VeeConfig | None = None,
    chunk_meters: int = 100_000,
    scheduler: str | Client | None = None,
    workers: int = DEFAULT_WORKERS,
    progress: Progress | None = None,
) -> RunSummary:
    """``vee.run.run_day`` with its chunks on ``scheduler`` (module docstring).
    ``progress(meters_done, meters_total)`` is called in this process as chunks finish."""
    with open_runner(scheduler, workers=workers) as runner:
        return run_day(
            lake,
            store,
            day,
            attributes,
            now=now,
            config=config,
            chunk_meters=chunk_meters,
            progress=progress,
            run_tasks=runner.run,
        )


# --- determinants of a billing cycle ----------------------------------------------------------


_BILLED_COLUMNS = [*KEY, "value_wh", "version", "flags", "origin"]


class _MeterRange(ValidatedStore):
    """The validated store seen through a meter-id range, for billing: ``current`` reads
    only the range (the files' statistics skip the rest) and only the columns billing
    looks at, and skips the pick of the highest version when every read has only its
    first one."""

    def __init__(self, root: Path, first: int, last: int) -> None:
        super().__init__(root)
        self.first, self.last = first, last

    def current(
        self, day: date, meter_ids: Sequence[int] | pl.Series | None = None
    ) -> pl.DataFrame:
        # a shard is cut as the VEE chunks are: it reads its chunk's files (by their
        # statistics), whole when they hold its meters only, with no filter to copy rows
        files, only = meter_files(self.files(day), self.first, self.last)
        if not files:
            return self.versions(day, []).select(_BILLED_COLUMNS)
        scan = pl.scan_parquet(files).select(_BILLED_COLUMNS)
        if not only:
            scan = scan.filter(pl.col(M).is_between(self.first, self.last))
        rows = scan.with_columns(pl.col("interval_end").dt.epoch("s")).collect()
        top = rows.get_column("version").max()
        if top is None or int(top) <= 1:  # type: ignore[arg-type]
            return rows
        return latest_versions(rows)


def cycle_span(
    month: BillingMonth, reading_days: Sequence[int], timezone: str
) -> tuple[datetime, datetime]:
    """The span (start, end] of interval ends that the cycles of ``month`` for these
    reading days cover: what a billing run has to read."""
    spans = [month.cycle_span(rd, timezone) for rd in sorted(set(reading_days))]
    if not spans:
        return month.cycle_span(1, timezone)
    return min(s for s, _ in spans), max(e for _, e in spans)


def _validated_shard(
    store_root: Path,
    start: datetime,
    end: datetime,
    first: int,
    last: int,
    contracts: pl.DataFrame,
    calendar: BillingCalendar,
    events: pl.DataFrame | None,
    month: BillingMonth,
) -> pl.DataFrame:
    reads = load_validated_reads(_MeterRange(store_root, first, last), start, end)
    return finalize(accumulate(reads, contracts, calendar, events), contracts, calendar, month)


def _raw_shard(
    lake_root: Path,
    start: datetime,
    end: datetime,
    index: int,
    count: int,
    contracts: pl.DataFrame,
    calendar: BillingCalendar,
    events: pl.DataFrame | None,
    month: BillingMonth,
) -> pl.DataFrame:
    reads = load_interval_reads(IntervalLake(lake_root), start, end, shard=(index, count))
    return finalize(accumulate(reads, contracts, calendar, events), contracts, calendar, month)


def billing_for_cycle(
    source: ValidatedStore | IntervalLake,
    month: BillingMonth,
    contracts: pl.DataFrame,
    *,
    book: TariffBook | None = None,
    events: pl.DataFrame | None = None,
    shard_meters: int = 100_000,
    scheduler: str | Client | None = None,
    workers: int = DEFAULT_WORKERS,
    progress: Progress | None = None,
) -> pl.DataFrame:
    """Determinants of billing month ``month`` for every contract in ``contracts`` (the
    columns of ``billing.frames``), one shard of at most ``shard_meters`` meters per task,
    cut as the VEE chunks are (``store.lake.meter_chunks``).

    ``source``: the validated store (bill-ready means every interval passed VEE), or the
    raw lake (validity only from the meters' own status bits: before VEE has run).
    ``progress(shards_done, shards_total)`` is called as shards finish."""
    if shard_meters < 1:
        raise ConfigError(f"shard_meters must be positive, not {shard_meters}")
    book = book or load_tariffs()
    calendar = BillingCalendar.for_month(book, month)
    table = check_contracts(contracts, calendar)  # fail here, not in every task
    start, end = cycle_span(month, table.get_column("reading_day").to_list(), book.timezone)
    meters = table.get_column(M).unique().sort().to_numpy()
    shards = max(1, -(-meters.size // shard_meters))
    calls: list[tuple[Any, ...]] = []
    with open_runner(scheduler, workers=workers) as runner:
        shared = runner.share(calendar)
        if isinstance(source, ValidatedStore):
            # the VEE chunks' meters: each shard then reads the validated files of one chunk
            for lo, hi in meter_chunks(meters, shard_meters) or [(0, 0)]:
                part = meters[lo:hi]
                first, last = (int(part[0]), int(part[-1])) if part.size else (0, -1)
                mine = pl.col(M).is_between(first, last)
                calls.append(
                    (
                        source.root,
                        start,
                        end,
                        first,
                        last,
                        contracts.filter(mine),
                        shared,
                        events.filter(mine) if events is not None else None,
                        month,
                    )
                )
            task: Callable[..., pl.DataFrame] = _validated_shard
        else:
            for index in range(shards):
                mine = pl.col(M) % shards == index
                calls.append(
                    (
                        source.root,
                        start,
                        end,
                        index,
                        shards,
                        contracts.filter(mine),
                        shared,
                        events.filter(mine) if events is not None else None,
                        month,
                    )
                )
            task = _raw_shard
        parts: list[pl.DataFrame | None] = [None] * len(calls)
        for done, (index, shard) in enumerate(runner.run(task, calls), start=1):
            parts[index] = shard
            if progress is not None:
                progress(done, len(calls))
    # shards split the meters, so each contract's reads, partials and row are in one
    # shard: the shards' finished determinants only need putting together, in the order
    # finalize gives them
    return pl.concat([p for p in parts if p is not None]).sort("contract_id", maintain_order=True)
