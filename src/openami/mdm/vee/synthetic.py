"""A day of many meters made with NumPy, with known faults injected: for VEE's tests and
for measuring its throughput at a scale the per-meter simulator cannot reach quickly.

The load is simple but shaped like a Japanese household's (a morning and a large evening
peak in local time, lognormal sizes and noise, rooftop PV netted against use on a share of
homes); registers are the running sums of the intervals, so a clean day passes every rule.
Each fault goes to its own share of meters (disjoint sets), so what each rule must flag is
known exactly (``SyntheticDay.faults``: fault name -> flat grid keys ``row * slots + slot``).
Raw rows come interval by interval, every meter per interval, as pushes would arrive.

``python -m openami.mdm.vee.synthetic --meters 100000`` measures VEE on such a day written to
Parquet, next to a plain Polars scan-and-sum of the same file, and prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from openami.mdm.vee.config import VeeConfig, default_config
from openami.mdm.vee.engine import new_versions, validate_partition
from openami.mdm.vee.grid import GridBuilder, GridInfo, unix_seconds
from openami.store.lake import may_hold, meter_id_ranges
from openami.store.validated import ValidatedStore

__all__ = [
    "FAULTS",
    "SyntheticDay",
    "inject",
    "measure",
    "measure_folder",
    "synthetic_day",
    "write_day",
]

IntArray = npt.NDArray[np.int64]
FAULTS = (
    "missing",
    "spike",
    "reverse_flow",
    "register_mismatch",
    "zero_use",
    "clock_error",
    "time_shift",
    "conflict",
    "over_contract",
    "short_interval",
    "long_interval",
)
DAY0 = 1_785_715_200  # 2026-08-03 00:00 UTC, a Monday
_RAW_SCHEMA = pa.schema(
    [
        ("meter_id", pa.int64()),
        ("channel", pa.int8()),
        ("interval_end", pa.timestamp("s", tz="UTC")),
        ("value_wh", pa.int64()),
        ("version", pa.int16()),
        ("status", pa.int16()),
        ("received_at", pa.timestamp("s", tz="UTC")),
    ]
)
JST = 9 * 3600


@dataclass(frozen=True)
class SyntheticDay:
    info: GridInfo
    meter_ids: IntArray
    attributes: pl.DataFrame
    history: pl.DataFrame
    reads: dict[str, npt.NDArray[Any]]
    true_imp: IntArray  # (meters, slots) before faults
    true_exp: IntArray
    faults: dict[str, IntArray]


def _bump(h: npt.NDArray[np.float64], centre: float, width: float) -> npt.NDArray[np.float64]:
    d = np.abs(((h - centre) + 12.0) % 24.0 - 12.0)
    return np.asarray(np.exp(-0.5 * (d / width) ** 2))


def _clean(meters: int, info: GridInfo, rng: np.random.Generator) -> dict[str, Any]:
    s = info.slots
    hours = np.asarray(
        ((np.arange(s) * info.step_s - info.step_s / 2 + JST) % 86_400) / 3600.0, np.float64
    )
    peaks = [(0.8, 7.0, 1.0), (0.3, 12.5, 1.5), (1.3, 19.5, 2.0)]
    shape = np.full(s, 0.35)
    for size, centre, width in peaks:
        shape += size * _bump(hours, centre, width)
    shape = shape / shape.mean()
    kwh_day = rng.lognormal(np.log(8.0), 0.4, meters)
    noise = rng.lognormal(-0.045, 0.3, (meters, s))
    load = kwh_day[:, None] * 1000.0 / s * shape[None, :] * noise
    pv_kw = np.where(rng.random(meters) < 0.15, rng.uniform(3.0, 6.0, meters), 0.0)
    sun = np.clip(np.sin(np.pi * (hours - 5.5) / 13.0), 0.0, None) ** 1.3
    net = np.rint(load - pv_kw[:, None] * 1000.0 * info.step_s / 3600.0 * 0.6 * sun[None, :])
    imp = np.maximum(net, 0).astype(np.int64)
    exp = np.maximum(-net, 0).astype(np.int64)
    peak_w = imp.max(axis=1) * 3600.0 / info.step_s
    amps = np.array([20, 30, 40, 50, 60, 100, 200])
    need = np.searchsorted(amps * 100.0, peak_w * 1.2)
    contract = amps[np.minimum(need, amps.size - 1)]
    return {"imp": imp, "exp": exp, "pv": pv_kw > 0, "contract": contract}


def synthetic_day(
    meters: int,
    *,
    seed: int = 0,
    fault_share: float = 0.01,
    day0: int = DAY0,
    step_s: int = 1800,
    first_id: int = 1,
) -> SyntheticDay:
    """``meters`` meters (ids ``first_id``.. on) over the day starting at ``day0``; each
    fault of ``FAULTS`` on its own ``fault_share`` of them (at least one each while there
    are enough meters)."""
    rng = np.random.default_rng(seed)
    info = GridInfo(day0, step_s, 86_400 // step_s)
    base = _clean(meters, info, rng)
    ids = np.arange(first_id, first_id + meters, dtype=np.int64)
    clean = base["imp"].astype(np.float64)
    med = np.median(clean, axis=1)
    history = pl.DataFrame(
        {
            "meter_id": ids,
            "hist_median": med,
            "hist_mad": np.median(np.abs(clean - med[:, None]), axis=1),
            "hist_peak": clean.max(axis=1) * rng.uniform(1.0, 1.3, meters),
        }
    )
    return inject(
        base["imp"],
        base["exp"],
        info,
        meter_ids=ids,
        has_pv=base["pv"],
        contract_amps=base["contract"],
        history=history,
        seed=seed,
        fault_share=fault_share,
    )


def inject(
    true_imp: IntArray,
    true_exp: IntArray,
    info: GridInfo,
    *,
    meter_ids: IntArray,
    has_pv: npt.NDArray[np.bool_],
    contract_amps: npt.ArrayLike,
    history: pl.DataFrame | None = None,
    import_base: npt.ArrayLike = 5_000_000,
    export_base: npt.ArrayLike = 1_000_000,
    seed: int = 0,
    fault_share: float = 0.01,
    faults_to_inject: tuple[str, ...] = FAULTS,
) -> SyntheticDay:
    """Raw reads of a clean day (``true_imp``/``true_exp``: meters x slots, whole Wh) with
    faults injected, each on its own ``fault_share`` of the meters. Registers start at
    ``import_base``/``export_base`` at 00:00; ``history`` (aligned with the rows: its
    ``hist_peak`` sizes the spikes, else the day's own peak does) and the attributes travel
    with the day."""
    rng = np.random.default_rng(seed + 1)
    s = info.slots
    day0, step_s = info.day0, info.step_s
    meters = meter_ids.size
    imp, exp = true_imp.copy(), true_exp.copy()
    contract = np.asarray(contract_amps, dtype=np.float64)
    imp_reg_off = np.zeros((meters, s), dtype=np.int64)  # register faults, added at the end
    status = np.zeros((meters, s), dtype=np.int16)
    keep = np.ones((meters, s), dtype=bool)
    stamp_off = np.zeros((meters, s), dtype=np.int64)
    faults: dict[str, list[int]] = {f: [] for f in FAULTS}
    extra: list[tuple[IntArray, IntArray, IntArray, IntArray]] = []  # row, channel, end, value
    per_fault = max(1, int(meters * fault_share)) if fault_share > 0 else 0
    if meters < 2 * len(FAULTS):
        per_fault = 0
    order = rng.permutation(meters)
    no_pv = order[~has_pv[order]]
    if history is not None and "hist_peak" in history.columns:
        hist_peak = history["hist_peak"].fill_null(0.0).to_numpy()
    else:
        hist_peak = true_imp.max(axis=1).astype(np.float64)
        history = pl.DataFrame({"meter_id": meter_ids})
    used: set[int] = set()
    spikes: list[tuple[int, int]] = []  # corrupt values: the register did not count them
    full_rows: dict[int, IntArray] = {}  # what the register counted, where reads were split

    def take(fault: str, pool: IntArray) -> IntArray:
        if fault not in faults_to_inject:
            return np.zeros(0, dtype=np.int64)
        chosen: list[int] = []
        for r in pool.tolist():
            if len(chosen) == per_fault:
                break
            if r not in used:
                chosen.append(r)
        used.update(chosen)
        return np.asarray(chosen, dtype=np.int64)

    for r in take("missing", order):
        a = int(rng.integers(0, s - 8))
        n = int(rng.integers(1, 9))
        keep[r, a : a + n] = False
        faults["missing"] += [r * s + k for k in range(a, a + n)]
    for r in take("spike", order):
        k = int(rng.integers(0, s))
        imp[r, k] = int(max(imp[r, k] * rng.uniform(5, 40), 4 * hist_peak[r]) + 500)
        spikes.append((r, k))
        faults["spike"].append(r * s + k)
    for r in take("reverse_flow", no_pv):
        a = int(rng.integers(0, s - 12))
        n = int(rng.integers(4, 13))
        exp[r, a : a + n] = imp[r, a : a + n] + 1
        imp[r, a : a + n] = 0
        faults["reverse_flow"] += [r * s + k for k in range(a, a + n)]
    for r in take("register_mismatch", order):
        k = int(rng.integers(1, s))
        imp_reg_off[r, k:] += 500
        faults["register_mismatch"] += [r * s + j for j in range(1, s)]
    for r in take("zero_use", no_pv):
        a = int(rng.integers(0, s - 16))
        imp[r, a : a + 16] = 0
        exp[r, a : a + 16] = 0
        faults["zero_use"] += [r * s + k for k in range(a, a + 16)]
    for r in take("clock_error", order):
        a = int(rng.integers(0, s - 4))
        status[r, a : a + 4] |= 0x02
        faults["clock_error"] += [r * s + k for k in range(a, a + 4)]
    for r in take("time_shift", order):
        k = int(rng.integers(0, s))
        stamp_off[r, k] = 7
        faults["time_shift"].append(r * s + k)
    for r in take("conflict", order):
        k = int(rng.integers(0, s))
        end = np.array([day0 + k * step_s])
        extra.append((np.array([r]), np.array([1]), end, np.array([imp[r, k] + 37])))
        faults["conflict"].append(r * s + k)
    for r in take("over_contract", order):
        k = int(rng.integers(0, s))
        imp[r, k] = int(contract[r] * 100 * 1.5 * step_s / 3600)
        faults["over_contract"].append(r * s + k)
    for r in take("short_interval", order):
        # the meter runs on half the interval: each on-grid read holds the second half, a
        # read stamped in between the first
        full_rows[int(r)] = imp[r].copy()
        half = imp[r, 1:] // 2
        ends = day0 + np.arange(1, s) * step_s - step_s // 2
        extra.append((np.full(s - 1, r), np.full(s - 1, 1), ends, imp[r, 1:] - half))
        imp[r, 1:] = half
        faults["short_interval"] += [r * s + k for k in range(1, s)]
    for r in take("long_interval", no_pv):
        # the meter runs on twice the interval: every other read, holding both intervals
        for values in (imp, exp):
            values[r, 2::2] += values[r, 1:-1:2]
            values[r, 1::2] = 0
        keep[r, 1::2] = False
        faults["long_interval"] += [r * s + k for k in range(2, s, 2)]
    counted = imp.copy()
    for r, k in spikes:
        counted[r, k] = true_imp[r, k]
    for r, row in full_rows.items():
        counted[r] = row
    imp_base = np.broadcast_to(np.asarray(import_base, dtype=np.int64), (meters,))
    exp_base = np.broadcast_to(np.asarray(export_base, dtype=np.int64), (meters,))
    imp_reg = imp_base[:, None] + np.cumsum(counted, axis=1) + imp_reg_off
    exp_reg = exp_base[:, None] + np.cumsum(exp, axis=1)
    # interval-major rows, four channels per entry
    ids = meter_ids
    sl = np.arange(s, dtype=np.int64)
    kept = keep.T  # (slots, meters)
    row = np.broadcast_to(np.arange(meters)[None, :], (s, meters))[kept]
    slot = np.broadcast_to(sl[:, None], (s, meters))[kept]
    end = day0 + slot * step_s + stamp_off.T[kept]
    per_channel = [imp.T[kept], exp.T[kept], imp_reg.T[kept], exp_reg.T[kept]]
    n = row.size
    cols = {
        "meter_id": np.repeat(ids[row], 4),
        "channel": np.tile(np.arange(1, 5, dtype=np.int64), n),
        "interval_end": np.repeat(end, 4),
        "value_wh": np.stack(per_channel, axis=1).reshape(-1),
        "status": np.repeat(status.T[kept], 4),
    }
    if extra:
        rows_x = np.concatenate([e[0] for e in extra])
        cols["meter_id"] = np.r_[cols["meter_id"], ids[rows_x]]
        cols["channel"] = np.r_[cols["channel"], np.concatenate([e[1] for e in extra])]
        cols["interval_end"] = np.r_[cols["interval_end"], np.concatenate([e[2] for e in extra])]
        cols["value_wh"] = np.r_[cols["value_wh"], np.concatenate([e[3] for e in extra])]
        cols["status"] = np.r_[cols["status"], np.zeros(rows_x.size, np.int64)]
    total = cols["meter_id"].size
    cols["version"] = np.ones(total, dtype=np.int64)
    cols["received_at"] = cols["interval_end"] + 30
    attributes = pl.DataFrame(
        {
            "meter_id": ids,
            "has_pv": has_pv,
            "occupied": np.ones(meters, dtype=bool),
            "contract_amps": contract,
        }
    )
    return SyntheticDay(
        info,
        ids,
        attributes,
        history,
        cols,
        true_imp,
        true_exp,
        {f: np.asarray(sorted(set(k)), dtype=np.int64) for f, k in faults.items()},
    )


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def write_day(folder: Path, meters: int, seed: int = 1, block: int = 100_000) -> int:
    """Write a synthetic day's raw reads (``reads.parquet``, as the lake stores them) and
    its attributes and history (``meters.parquet``) to ``folder``, ``block`` meters at a
    time (one row group each, as a lake partitioned by meter shard would hold them);
    return the raw rows written."""
    rows = 0
    per_meter = []
    with pq.ParquetWriter(folder / "reads.parquet", _RAW_SCHEMA, compression="zstd") as out:
        for k, lo in enumerate(range(0, meters, block)):
            day = synthetic_day(min(block, meters - lo), seed=seed + k, first_id=lo + 1)
            r = day.reads
            table = pa.table(
                {
                    "meter_id": pa.array(r["meter_id"]),
                    "channel": pa.array(r["channel"].astype(np.int8)),
                    "interval_end": pa.array(r["interval_end"]).cast(_RAW_SCHEMA[2].type),
                    "value_wh": pa.array(r["value_wh"]),
                    "version": pa.array(r["version"].astype(np.int16)),
                    "status": pa.array(r["status"].astype(np.int16)),
                    "received_at": pa.array(r["received_at"]).cast(_RAW_SCHEMA[6].type),
                },
                schema=_RAW_SCHEMA,
            )
            out.write_table(table, row_group_size=table.num_rows)
            rows += table.num_rows
            per_meter.append(day.attributes.join(day.history, on="meter_id"))
    pl.concat(per_meter).write_parquet(folder / "meters.parquet")
    return rows


def _row_groups(file: pq.ParquetFile, first: int, last: int) -> list[int]:
    """The row groups whose meter ids can lie in ``first..last`` (their statistics)."""
    return [g for g, r in enumerate(meter_id_ranges(file)) if may_hold(r, first, last)]


def _vee_chunk(folder: Path, first: int, last: int, config: VeeConfig) -> dict[str, Any]:
    """VEE of meters ``first..last`` of ``folder``'s day, written to its validated store."""
    t0, c0 = time.perf_counter(), time.process_time()
    per_meter = pl.read_parquet(folder / "meters.parquet").filter(
        pl.col("meter_id").is_between(first, last)
    )
    info = GridInfo(DAY0, 1800, 48)
    builder = GridBuilder(per_meter["meter_id"].sort().to_numpy(), info, grid_s=config.grid_s)
    file = pq.ParquetFile(folder / "reads.parquet")
    for batch in file.iter_batches(batch_size=1 << 21, row_groups=_row_groups(file, first, last)):
        mid = batch.column("meter_id").to_numpy()
        sel = (mid >= first) & (mid <= last)
        if not sel.all():
            batch = batch.filter(pa.array(sel))
        builder.add(
            batch.column("meter_id").to_numpy(),
            batch.column("channel").to_numpy(),
            unix_seconds(batch.column("interval_end")),
            batch.column("value_wh").to_numpy(),
            version=batch.column("version").to_numpy(),
            status=batch.column("status").to_numpy(),
            received_at=unix_seconds(batch.column("received_at")),
        )
    grid_s = time.perf_counter() - t0
    attrs = per_meter.select("meter_id", "has_pv", "occupied", "contract_amps")
    history = per_meter.select("meter_id", "hist_median", "hist_mad", "hist_peak")
    result = validate_partition(builder, attrs, config, DAY0 + 2 * 86_400, history=history)
    t1 = time.perf_counter()
    ValidatedStore(folder / "validated").append(new_versions(result.reads, None))
    return {
        "counts": result.counts,
        "grid_s": grid_s,
        "write_s": time.perf_counter() - t1,
        "cpu_s": time.process_time() - c0,
        "peak_rss_mb": _peak_rss_mb(),
    }


def measure_folder(
    folder: Path,
    *,
    chunk: int = 100_000,
    workers: int = 1,
    config: VeeConfig | None = None,
) -> dict[str, Any]:
    """Time a plain Polars scan-and-sum of ``folder``'s reads, then VEE of them chunk by
    chunk (grid from the file, every rule, gap decisions, estimation, and the writing of
    the validated versions), in this process or on ``workers`` processes; report reads/s,
    bytes per stored read and peak memory (per process)."""
    config = config or default_config()
    path = folder / "reads.parquet"
    ids = pl.read_parquet(folder / "meters.parquet", columns=["meter_id"])["meter_id"].sort()
    started = time.perf_counter()
    pl.scan_parquet(path).group_by("meter_id").agg(pl.col("value_wh").sum()).collect()
    baseline_s = time.perf_counter() - started
    ranges = [
        (int(ids[lo]), int(ids[min(lo + chunk, ids.len()) - 1]))
        for lo in range(0, ids.len(), chunk)
    ]
    started = time.perf_counter()
    if workers <= 1:
        parts = [_vee_chunk(folder, a, b, config) for a, b in ranges]
    else:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(workers, mp_context=context) as pool:
            futures = [pool.submit(_vee_chunk, folder, a, b, config) for a, b in ranges]
            parts = [f.result() for f in futures]
    vee_s = time.perf_counter() - started
    counts: dict[str, int] = {}
    for part in parts:
        for key, value in part["counts"].items():
            counts[key] = counts.get(key, 0) + value
    interval_reads = ids.len() * 48
    store = ValidatedStore(folder / "validated")
    return {
        "name": "mdm.vee",
        "value": interval_reads / vee_s,
        "unit": "interval reads/s",
        "baseline_name": "polars scan-and-sum",
        "baseline_value": interval_reads / baseline_s,
        "ratio": baseline_s / vee_s,
        "params": {
            "meters": ids.len(),
            "raw_rows": pq.ParquetFile(path).metadata.num_rows,
            "chunk": chunk,
            "workers": workers,
            "vee_s": round(vee_s, 2),
            "vee_cpu_s": round(sum(p["cpu_s"] for p in parts), 2),
            "grid_s": round(sum(p["grid_s"] for p in parts), 2),
            "write_s": round(sum(p["write_s"] for p in parts), 2),
            "baseline_s": round(baseline_s, 2),
            "validated_bytes_per_read": round(store.bytes_per_read(date(2026, 8, 3)), 3),
            "peak_rss_mb": round(max([_peak_rss_mb()] + [p["peak_rss_mb"] for p in parts]), 1),
            "flagged": {k: v for k, v in sorted(counts.items()) if v and "/" in k},
        },
    }


def measure(
    meters: int, *, seed: int = 1, chunk: int = 100_000, workers: int = 1
) -> dict[str, Any]:
    """``write_day`` in a child process (so its memory does not count), then
    ``measure_folder`` here."""
    with tempfile.TemporaryDirectory() as tmp:
        child = multiprocessing.get_context("spawn").Process(
            target=write_day, args=(Path(tmp), meters, seed)
        )
        child.start()
        child.join()
        if child.exitcode != 0:
            raise RuntimeError(f"writing the synthetic day failed ({child.exitcode})")
        return measure_folder(Path(tmp), chunk=chunk, workers=workers)


def main() -> None:  # pragma: no cover - a measuring tool
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--meters", type=int, default=100_000)
    parser.add_argument("--chunk", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    record = measure(args.meters, seed=args.seed, chunk=args.chunk, workers=args.workers)
    print(json.dumps(record))


if __name__ == "__main__":  # pragma: no cover
    main()
