"""The Dask shape: calendar and partials travel between processes, shards are computed
apart (here in spawned worker processes) and merged into the single-process result."""

from __future__ import annotations

import multiprocessing
import pickle
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import polars as pl
import pytest

from openami.mdm.billing import (
    BillingCalendar,
    Partials,
    accumulate,
    billing_determinants,
    finalize,
    merge_partials,
)

from .builders import FLAT, SEASONAL, TOU, jst, make_contracts, make_events, make_reads


def inputs() -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    rng = np.random.default_rng(9)
    reads = make_reads(
        list(range(1, 41)),
        jst(2024, 7, 1),
        jst(2024, 8, 28),
        value=lambda m, e: rng.integers(0, 1_500, m.size),
    )
    reads = reads.with_columns(valid=pl.Series(rng.random(reads.height) > 0.0002))
    contracts = make_contracts(
        [(m, (FLAT, TOU, SEASONAL)[m % 3], int(rng.integers(1, 29))) for m in range(1, 41)]
    )
    events = make_events([(m, "cpp", jst(2024, 7, 24, 13), jst(2024, 7, 24, 17)) for m in (3, 8)])
    return reads, contracts, events


def shard_job(args: tuple[bytes, int, int]) -> bytes:
    """What a Dask task would run: unpickled configuration, one shard in, partials out."""
    blob, shard, shards = args
    calendar = pickle.loads(blob)  # noqa: S301 - our own bytes
    reads, contracts, events = inputs()
    mine = pl.col("meter_id") % shards == shard
    part = accumulate(reads.filter(mine), contracts.filter(mine), calendar, events.filter(mine))
    return pickle.dumps(part)


def test_calendar_and_partials_survive_pickling(august: BillingCalendar) -> None:
    reads, contracts, events = inputs()
    again = pickle.loads(pickle.dumps(august))  # noqa: S301
    assert again.slots == august.slots and again.month == august.month
    assert np.array_equal(again.packed_lut, august.packed_lut)
    part = accumulate(reads, contracts, again, events)
    copy: Partials = pickle.loads(pickle.dumps(part))  # noqa: S301
    assert finalize(copy, contracts, august).equals(
        billing_determinants(reads, contracts, august, events)
    )


@pytest.mark.slow
def test_shards_in_worker_processes_match_one_process(august: BillingCalendar) -> None:
    reads, contracts, events = inputs()
    whole = billing_determinants(reads, contracts, august, events)
    blob = pickle.dumps(august)
    context = multiprocessing.get_context("spawn")  # no fork of a threaded Polars
    with ProcessPoolExecutor(max_workers=2, mp_context=context) as pool:
        parts = [pickle.loads(b) for b in pool.map(shard_job, [(blob, s, 3) for s in range(3)])]  # noqa: S301
    assert finalize(merge_partials(parts), contracts, august).equals(whole)
