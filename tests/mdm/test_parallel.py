"""Scale-out: VEE and billing determinants give the same results in-process and on Dask.

Two generated days of a few thousand meters with every kind of fault go into a raw lake;
copies of it are validated by ``vee.run.run_day``, by ``run_vee_day`` in this process and by
``run_vee_day`` on a two-process ``LocalCluster``, chunk by chunk, through a pass that asks
for the gaps and a later one that estimates them. Every stored version, the gap book, the
statistics and the summaries must agree. The determinants of a billing month, from the
validated store and from the raw lake, must agree between the paths and with one call of
``billing_determinants`` over all the reads.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from distributed import Client

from openami.allocators import batch_env
from openami.bus.contract import ReadSource
from openami.errors import AmiError, ConfigError
from openami.mdm.billing import (
    BillingCalendar,
    BillingMonth,
    billing_determinants,
    load_interval_reads,
    load_tariffs,
    load_validated_reads,
)
from openami.mdm.parallel import (
    WORKER_ENV,
    _MeterRange,
    billing_for_cycle,
    cycle_span,
    local_cluster,
    open_runner,
    run_vee_day,
)
from openami.mdm.vee.grid import GridInfo
from openami.mdm.vee.run import RunSummary, run_day
from openami.mdm.vee.synthetic import SyntheticDay, inject, synthetic_day
from openami.store.lake import IntervalLake
from openami.store.validated import ValidatedStore

METERS = 3_000
CHUNK = 700  # five chunks, the last one short
DAY1, DAY2 = date(2026, 8, 3), date(2026, 8, 4)
DAY0 = int(datetime(2026, 8, 3, tzinfo=UTC).timestamp())
CLOSE = DAY0 + 2 * 86_400  # the end of the second day
MONTH = BillingMonth(2026, 9)  # read on the 1st or the 3rd of September: both days inside


def _append(lake: IntervalLake, day: SyntheticDay) -> None:
    r = day.reads
    n = r["meter_id"].size
    lake.append(
        {
            "meter_id": r["meter_id"],
            "channel": r["channel"],
            "interval_end": r["interval_end"],
            "value_wh": r["value_wh"],
            "source": np.full(n, int(ReadSource.PUSH)),
            "status": r["status"],
        }
    )


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pl.DataFrame]:
    """A lake of two days (the second continues the first's registers), and the meters'
    attributes."""
    root = tmp_path_factory.mktemp("raw")
    lake = IntervalLake(root)
    first = synthetic_day(METERS, seed=11, day0=DAY0)
    base_imp = 5_000_000 + first.true_imp.sum(axis=1)
    base_exp = 1_000_000 + first.true_exp.sum(axis=1)
    second = inject(
        np.roll(first.true_imp, 3, axis=1),
        np.roll(first.true_exp, 3, axis=1),
        GridInfo(DAY0 + 86_400, 1800, 48),
        meter_ids=first.meter_ids,
        has_pv=first.attributes["has_pv"].to_numpy(),
        contract_amps=first.attributes["contract_amps"].to_numpy(),
        history=first.history,
        import_base=base_imp,
        export_base=base_exp,
        seed=12,
    )
    _append(lake, first)
    _append(lake, second)
    # three days of statistics before: the spike rule has a history to judge against
    store = ValidatedStore(root)
    for back in (1, 2, 3):
        stats = first.history.select(
            "meter_id",
            day=pl.lit(DAY1 - timedelta(days=back)),
            median_wh="hist_median",
            mad_wh="hist_mad",
            peak_wh="hist_peak",
            intervals=pl.lit(48, pl.Int32),
        )
        store.save_stats(DAY1 - timedelta(days=back), stats)
    return root, first.attributes


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    with local_cluster(2) as cluster, Client(cluster) as connected:  # type: ignore[no-untyped-call]
        yield connected
    assert cluster.status.name == "closed"


def _worker_settings() -> dict[str, str | None]:
    import os

    names = [*batch_env(), *WORKER_ENV]
    return {name: os.environ.get(name) for name in names}


def test_workers_start_with_the_allocator_settings(client: Client) -> None:
    """Dask's own pre-spawn setting would make glibc trim at every free; the workers run
    with openami's instead, and with Polars on one thread."""
    seen = client.run(_worker_settings)
    assert len(seen) == 2
    for settings in seen.values():
        # Polars, imported in the worker, put its defaults in front: jemalloc takes the last
        expected: dict[str, str | None] = {**batch_env(), **WORKER_ENV}
        jemalloc = settings.pop("_RJEM_MALLOC_CONF")
        assert jemalloc is not None and jemalloc.endswith(str(expected.pop("_RJEM_MALLOC_CONF")))
        assert settings == expected


def _copy(raw: Path, to: Path) -> tuple[IntervalLake, ValidatedStore]:
    shutil.copytree(raw, to)
    return IntervalLake(to), ValidatedStore(to)


def _plain(summary: RunSummary) -> dict[str, Any]:
    """A run's summary without what differs by nature (request ids, time)."""
    return {
        "meters": summary.meters,
        "reads": summary.reads,
        "written": summary.written,
        "counts": summary.counts,
        "requests": sorted((r.meter_id, r.from_end, r.to_end) for r in summary.requests),
    }


def _three_passes(
    run: Any, lake: IntervalLake, store: ValidatedStore, attrs: pl.DataFrame
) -> list[dict[str, Any]]:
    """Day 1, day 2 asking for its gaps, day 2 again estimating them."""
    out = [_plain(run(lake, store, DAY1, attrs, now=CLOSE + 900))]
    out.append(_plain(run(lake, store, DAY2, attrs, now=CLOSE + 900)))
    out.append(_plain(run(lake, store, DAY2, attrs, now=CLOSE + 900 + 5 * 3600)))
    return out


def _content(store: ValidatedStore) -> dict[str, pl.DataFrame]:
    """Everything stored, in a canonical order, without the write times."""
    out = {}
    for day in (DAY1, DAY2):
        out[f"versions {day}"] = (
            store.versions(day)
            .drop("written_at")
            .sort("meter_id", "channel", "interval_end", "version")
        )
        gaps = store.load_gaps(day)
        stats = store.load_stats([day])
        assert gaps is not None and stats is not None
        out[f"gaps {day}"] = gaps.sort("meter_id", "interval_end")
        out[f"stats {day}"] = stats.sort("meter_id")
    return out


@pytest.fixture(scope="module")
def validated(
    raw: tuple[Path, pl.DataFrame], tmp_path_factory: pytest.TempPathFactory
) -> tuple[ValidatedStore, list[dict[str, Any]]]:
    """The lake validated in-process by ``run_vee_day``, chunk by chunk."""
    root, attrs = raw
    lake, store = _copy(root, tmp_path_factory.mktemp("inproc") / "lake")
    seen: list[tuple[int, int]] = []

    def run(*args: Any, **kwargs: Any) -> RunSummary:
        return run_vee_day(
            *args, chunk_meters=CHUNK, progress=lambda d, t: seen.append((d, t)), **kwargs
        )

    passes = _three_passes(run, lake, store, attrs)
    assert seen[-1] == (METERS, METERS) and len(seen) == 3 * 5
    return store, passes


def test_in_process_matches_run_day(
    raw: tuple[Path, pl.DataFrame],
    validated: tuple[ValidatedStore, list[dict[str, Any]]],
    tmp_path: Path,
) -> None:
    lake, store = _copy(raw[0], tmp_path / "lake")
    passes = _three_passes(run_day, lake, store, raw[1])
    assert passes == validated[1]
    ours, theirs = _content(validated[0]), _content(store)
    for name, frame in theirs.items():
        assert ours[name].equals(frame), name


def test_dask_vee_matches_in_process(
    raw: tuple[Path, pl.DataFrame],
    validated: tuple[ValidatedStore, list[dict[str, Any]]],
    client: Client,
    tmp_path: Path,
) -> None:
    lake, store = _copy(raw[0], tmp_path / "lake")

    def run(*args: Any, **kwargs: Any) -> RunSummary:
        return run_vee_day(*args, chunk_meters=CHUNK, scheduler=client, **kwargs)

    passes = _three_passes(run, lake, store, raw[1])
    assert passes == validated[1]
    # what the passes found: every kind of fault, asked for, then estimated
    first_day, asked, estimated = passes
    for rule in ("missing", "spike", "zero_use", "clock_error", "over_contract", "long_interval"):
        assert first_day["counts"][f"{rule}/import"] > 0, rule
    assert asked["requests"] and asked["counts"]["gaps/ask"] > 0
    assert not estimated["requests"] and estimated["counts"]["gaps/estimate"] > 0
    assert estimated["counts"]["estimated/import"] > 0
    ours, theirs = _content(validated[0]), _content(store)
    assert len(store.files(DAY2)) == 2 * 5  # each chunk wrote its own file, each pass
    for name, frame in theirs.items():
        assert ours[name].equals(frame), name


def _contracts(attrs: pl.DataFrame) -> pl.DataFrame:
    """Every meter on a contract: tariffs and reading days mixed; a third of the contracts
    span exactly the two days (those can be bill-ready), a few meters change contract in
    the middle of the second day."""
    ids = attrs["meter_id"].to_numpy()
    n = ids.size
    start = datetime(2026, 8, 3, tzinfo=UTC) - timedelta(minutes=30)
    end = datetime(2026, 8, 5, tzinfo=UTC) - timedelta(minutes=30)
    switch = datetime(2026, 8, 4, 12, tzinfo=UTC)
    short = ids % 3 == 0
    switching = ids % 97 == 1
    tariffs = np.array(["jp-residential-tou", "jp-residential-tou-seasonal", "jp-residential-flat"])
    first = pl.DataFrame(
        {
            "contract_id": [f"c{m}" for m in ids],
            "meter_id": ids,
            "tariff": tariffs[ids % 3],
            "contract_amps": attrs["contract_amps"].cast(pl.Int64),
            "reading_day": np.where(ids % 2 == 0, 1, 3),
            "valid_from": [start if s else None for s in short],
            "valid_to": [
                switch if w else (end if s else None) for s, w in zip(short, switching, strict=True)
            ],
        },
        schema_overrides={
            "valid_from": pl.Datetime("us", "UTC"),
            "valid_to": pl.Datetime("us", "UTC"),
        },
    )
    second = first.filter(pl.col("meter_id") % 97 == 1).with_columns(
        contract_id=pl.format("s{}", "meter_id"),
        tariff=pl.lit("jp-residential-flat"),
        valid_from=pl.lit(switch, pl.Datetime("us", "UTC")),
        valid_to=pl.when(pl.col("meter_id") % 3 == 0).then(pl.lit(end, pl.Datetime("us", "UTC"))),
    )
    assert n == first.height
    return pl.concat([first, second])


def test_dask_determinants_match_in_process_and_one_call(
    raw: tuple[Path, pl.DataFrame],
    validated: tuple[ValidatedStore, list[dict[str, Any]]],
    client: Client,
) -> None:
    store = validated[0]
    contracts = _contracts(raw[1])
    book = load_tariffs()
    done: list[tuple[int, int]] = []
    here = billing_for_cycle(
        store, MONTH, contracts, shard_meters=800, progress=lambda d, t: done.append((d, t))
    )
    there = billing_for_cycle(store, MONTH, contracts, shard_meters=800, scheduler=client)
    assert done[-1] == (4, 4)
    assert here.equals(there)
    start, end = cycle_span(MONTH, [1, 3], book.timezone)
    reads = load_validated_reads(store, start, end)
    direct = billing_determinants(reads, contracts, BillingCalendar.for_month(book, MONTH))
    assert here.equals(direct)
    assert here.height == contracts.height
    ready = here.filter("bill_ready")
    # the short contracts of meters without a failed, unestimated read are bill-ready
    assert 0 < ready.height < here.height
    spans = contracts.select("contract_id", "valid_from")
    assert ready.join(spans, on="contract_id")["valid_from"].is_not_null().all()


def test_raw_determinants_on_a_local_cluster(raw: tuple[Path, pl.DataFrame]) -> None:
    """From the raw lake (before VEE), with a LocalCluster started and closed for the call."""
    lake = IntervalLake(raw[0])
    contracts = _contracts(raw[1])
    here = billing_for_cycle(lake, MONTH, contracts, shard_meters=1_000)
    there = billing_for_cycle(lake, MONTH, contracts, shard_meters=1_000, scheduler="local")
    assert here.equals(there)
    book = load_tariffs()
    start, end = cycle_span(MONTH, [1, 3], book.timezone)
    direct = billing_determinants(
        load_interval_reads(lake, start, end),
        contracts,
        BillingCalendar.for_month(book, MONTH),
    )
    assert here.equals(direct)
    assert int(here["import_wh"].sum()) > 0


def test_a_bad_scheduler_is_one_clear_error() -> None:
    with (
        pytest.raises(ConfigError, match="not 'local' or a Dask scheduler address"),
        open_runner("lcoal"),
    ):
        pass
    with (
        pytest.raises(AmiError, match="cannot reach the Dask scheduler"),
        open_runner("tcp://127.0.0.1:9", timeout=1.0),
    ):
        pass


def test_a_billing_shard_reads_only_its_meters(
    validated: tuple[ValidatedStore, list[dict[str, Any]]],
) -> None:
    """A shard's view of the validated store holds its meter range only, whether a file
    holds just those meters (read whole) or more (filtered)."""
    store = validated[0]
    everything = store.current(DAY2)
    ids = everything.get_column("meter_id").unique().sort()
    first, last = int(ids[0]), int(ids[CHUNK // 2])  # inside the first VEE chunk's file
    for lo, hi in ((first, last), (int(ids[0]), int(ids[-1]))):
        mine = _MeterRange(store.root, lo, hi).current(DAY2)
        want = everything.filter(pl.col("meter_id").is_between(lo, hi))
        assert mine.height == want.height > 0
        assert mine.get_column("meter_id").is_between(lo, hi).all()
