"""Hand-made days for the VEE tests: a few meters, each interval written out."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import polars as pl

from openami.mdm.vee.config import VeeConfig, default_config, load_config
from openami.mdm.vee.engine import PartitionResult, validate_partition
from openami.mdm.vee.grid import GridBuilder, GridInfo, broadcast
from openami.mdm.vee.rules import ATTRIBUTE_COLUMNS, evaluate

DAY0 = int(datetime(2026, 8, 3, tzinfo=UTC).timestamp())  # a Monday
STEP = 1800
SLOTS = 48
INFO = GridInfo(DAY0, STEP, SLOTS)
NOW = DAY0 + 2 * 86_400  # well after the day: gaps are asked for straight away
Values = Sequence[int | None]


def end(slot: int) -> int:
    return DAY0 + slot * STEP


def flat(value: int) -> list[int | None]:
    return [value] * SLOTS


@dataclass
class Day:
    """Raw reads of one day, built meter by meter."""

    rows: list[tuple[int, int, int, int, int, int, int]] = field(default_factory=list)

    def read(
        self,
        meter: int,
        channel: int,
        at: int,
        value: int,
        *,
        version: int = 1,
        status: int = 0,
        received_at: int | None = None,
    ) -> Day:
        received = at + 30 if received_at is None else received_at
        self.rows.append((meter, channel, at, value, version, status, received))
        return self

    def meter(
        self,
        meter: int,
        imp: Values,
        exp: Values | None = None,
        *,
        import_base: int = 1_000_000,
        export_base: int = 50_000,
        registers: bool = True,
        status: Mapping[int, int] | None = None,
        register_offset: Mapping[int, int] | None = None,
        opening: bool = False,
    ) -> Day:
        """One meter's intervals (None: no read at all for that slot, every channel). The
        registers run on from ``import_base``/``export_base`` at 00:00 (``opening``: the
        interval ending at 00:00 is given too, worth the first slot's value)."""
        exp = exp if exp is not None else [0 if v is not None else None for v in imp]
        ireg, ereg = import_base, export_base
        status = status or {}
        offset = register_offset or {}
        if opening:
            first_i = next((v for v in imp if v is not None), 0)
            first_e = next((v for v in exp if v is not None), 0)
            self.read(meter, 1, end(-1), first_i).read(meter, 2, end(-1), first_e)
            self.read(meter, 3, end(-1), ireg).read(meter, 4, end(-1), ereg)
        for k, (vi, ve) in enumerate(zip(imp, exp, strict=True)):
            ireg += vi or 0
            ereg += ve or 0
            if vi is None:
                continue
            st = status.get(k, 0)
            self.read(meter, 1, end(k), vi, status=st)
            self.read(meter, 2, end(k), ve or 0, status=st)
            if registers:
                self.read(meter, 3, end(k), ireg + offset.get(k, 0), status=st)
                self.read(meter, 4, end(k), ereg, status=st)
        return self

    def columns(self) -> dict[str, np.ndarray]:
        names = ("meter_id", "channel", "interval_end", "value_wh", "version", "status", "rec")
        arr = np.asarray(self.rows, dtype=np.int64).reshape(-1, 7)
        return {n: arr[:, i] for i, n in enumerate(names)}

    def builder(self, meter_ids: Sequence[int] | None = None, info: GridInfo = INFO) -> GridBuilder:
        cols = self.columns()
        ids = sorted(set(cols["meter_id"].tolist())) if meter_ids is None else list(meter_ids)
        b = GridBuilder(np.asarray(ids, dtype=np.int64), info)
        b.add(
            cols["meter_id"],
            cols["channel"],
            cols["interval_end"],
            cols["value_wh"],
            version=cols["version"],
            status=cols["status"],
            received_at=cols["rec"],
        )
        return b


def attributes(meters: Sequence[int], **columns: Sequence[Any]) -> pl.DataFrame:
    """Per-meter attributes; defaults: no PV, occupied, 60 A, a history of 100 Wh median,
    20 Wh MAD and a 600 Wh peak."""
    data: dict[str, Sequence[Any]] = {
        "meter_id": list(meters),
        "has_pv": [False] * len(meters),
        "occupied": [True] * len(meters),
        "contract_amps": [60.0] * len(meters),
        "hist_median": [100.0] * len(meters),
        "hist_mad": [20.0] * len(meters),
        "hist_peak": [600.0] * len(meters),
    }
    data.update(columns)
    return pl.DataFrame(data)


def config(**overrides: Any) -> VeeConfig:
    return load_config(overrides=overrides) if overrides else default_config()


def grid_of(day: Day, attrs: pl.DataFrame, cfg: VeeConfig | None = None) -> pl.DataFrame:
    """The evaluated grid (flags per row) of a hand-made day."""
    b = day.builder(attrs["meter_id"].to_list())
    grid = broadcast(b.frame(), attrs, ATTRIBUTE_COLUMNS, SLOTS)
    out, _ = evaluate(grid, INFO, cfg or default_config())
    return out


def flagged_slots(grid: pl.DataFrame, meter: int, flag: int, channel: str = "imp") -> list[int]:
    rows = grid.filter((pl.col("meter_id") == meter) & ((pl.col(f"flags_{channel}") & flag) != 0))
    return [int(s) for s in rows["slot"].to_list()]


def run(
    day: Day,
    attrs: pl.DataFrame,
    cfg: VeeConfig | None = None,
    now: int = NOW,
    **kwargs: Any,
) -> PartitionResult:
    b = day.builder(attrs["meter_id"].to_list())
    return validate_partition(b, attrs, cfg or default_config(), now, **kwargs)


def series(result: PartitionResult, meter: int, channel: int = 1) -> pl.DataFrame:
    return result.reads.filter((pl.col("meter_id") == meter) & (pl.col("channel") == channel)).sort(
        "interval_end"
    )
