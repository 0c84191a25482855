"""The partition VEE works on: one day of many meters as a dense long grid.

Raw reads arrive long (one row per meter, channel, interval end, version) in whatever order
the pushes came. VEE turns a partition of them into one row per (meter, interval slot) with
the four channels side by side, and a row for every expected slot, present or not:

- long, not wide: a rule is one expression over a handful of columns, whatever the interval
  length (48 slots a day at 30 minutes, 96 at 15); a wide frame (one column per slot) would
  make every rule a 48-way horizontal expression and break when a meter's interval changes.
- dense: a missing interval is a row with nulls, so "missing" is ``is_null``, the previous
  interval is ``shift(1)`` and a run of zeros is a run-length id; no rule has to rebuild the
  calendar, and estimates have a row to land in.
- sorted by meter then slot, so per-meter windows (``over("meter_id")``) use sorted groups.

Building it is a scatter, not a join: each read's position is ``meter_row * slots + slot``,
with the meter's row found through a lookup table (or a binary search for sparse ids), and
one compiled pass over a batch places its reads (``grid_kernels``). The builder takes reads
batch by batch (a Parquet file or row group at a time): its memory is the grid's (meters x
slots), not the raw data's, so a partition streams from disk.

What a slot keeps per channel: the value of the highest version (the first arrival among
equal versions, as the raw lake keeps the first copy of an identity), and whether any two
copies disagreed. Reads stamped between slots give no value: a stamp on the 5-minute grid
but between two configured interval ends (a meter on a shorter interval) marks the slot
that contains it as ``sub``; a stamp off the 5-minute grid (a clock that slipped) marks the
nearest slot as ``skew``. A read stamped ahead of its receipt keeps its value and marks its
slot ``skew`` too. The interval that ends at the start of the day, from the previous
partition, is kept as the opening values (``open_*``) for the register check and for
interpolation across midnight.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl
import pyarrow as pa

from openami.bus.contract import Channel

__all__ = ["CHANNELS", "GridBuilder", "GridInfo", "broadcast", "unix_seconds"]

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
# grid column per channel: interval energy both ways, then both registers
CHANNELS: dict[int, str] = {
    int(Channel.IMPORT_INTERVAL): "imp",
    int(Channel.EXPORT_INTERVAL): "exp",
    int(Channel.IMPORT_REGISTER): "imp_reg",
    int(Channel.EXPORT_REGISTER): "exp_reg",
}
_LUT_SPREAD = 8  # use a lookup table while the id range is at most this many times the count


@dataclass(frozen=True)
class GridInfo:
    """The shape of a grid: its day (Unix seconds of 00:00 UTC), interval and slot count."""

    day0: int
    step_s: int
    slots: int

    @property
    def per_hour(self) -> float:
        return 3600.0 / self.step_s


class _Slots:
    """Values of the four channels of ``n`` slots, interleaved (slot * 4 + channel - 1), so
    that the four reads of a slot sit side by side. A slot holds a read when its version
    is above 0 (versions start at 1): one array less than a separate presence mask."""

    def __init__(self, n: int) -> None:
        self.size = 4 * n
        self.value = np.zeros(4 * n, dtype=np.int64)
        self.version = np.zeros(4 * n, dtype=np.int16)
        self.conflict = np.zeros(4 * n, dtype=bool)

    def column(self, channel: int) -> tuple[IntArray, BoolArray, BoolArray]:
        k = channel - 1
        return (
            np.ascontiguousarray(self.value[k : self.size : 4]),
            self.version[k : self.size : 4] > 0,
            np.ascontiguousarray(self.conflict[k : self.size : 4]),
        )


class GridBuilder:
    """Scatters raw reads of one day into the dense grid of ``meter_ids`` x slots."""

    def __init__(
        self,
        meter_ids: IntArray,
        info: GridInfo,
        *,
        grid_s: int = 300,
        future_tolerance_s: int = 300,
    ) -> None:
        ids = np.asarray(meter_ids, dtype=np.int64)
        if ids.size and np.any(np.diff(ids) <= 0):
            raise ValueError("meter_ids must be sorted and unique")
        if 86_400 % info.step_s or info.slots != 86_400 // info.step_s:
            raise ValueError(f"a day of {info.step_s} s intervals has {86_400 // info.step_s}")
        self.meter_ids = ids
        self.info = info
        self.grid_s = grid_s
        self.future_tolerance_s = future_tolerance_s
        m, s = ids.size, info.slots
        n = m * s
        self._slots = _Slots(n)
        self._opening = _Slots(m)  # the interval ending at 00:00, per meter
        self.status = np.zeros(n, dtype=np.int16)
        self.skew = np.zeros(n, dtype=bool)
        self.sub = np.zeros(n, dtype=bool)
        self.reads = 0
        self.placed = 0
        self.unknown_meter = 0
        self.outside = 0  # reads whose slot lies in another day
        self._lut: IntArray | None = None
        if ids.size and int(ids[-1] - ids[0]) < _LUT_SPREAD * ids.size + 1024:
            lut = np.full(int(ids[-1] - ids[0]) + 1, -1, dtype=np.int64)
            lut[ids - ids[0]] = np.arange(ids.size, dtype=np.int64)
            self._lut = lut

    # --- placing reads ------------------------------------------------------------------

    def _rows(self, meter_id: IntArray) -> IntArray:
        ids = self.meter_ids
        if ids.size == 0:
            return np.full(meter_id.shape, -1, dtype=np.int64)
        if self._lut is not None:
            rel = meter_id - ids[0]
            if rel.size and rel.min() >= 0 and rel.max() < self._lut.size:
                return np.asarray(self._lut[rel], dtype=np.int64)
            ok = (rel >= 0) & (rel < self._lut.size)
            return np.where(ok, self._lut[np.where(ok, rel, 0)], -1)
        pos = np.searchsorted(ids, meter_id)
        pos_c = np.minimum(pos, ids.size - 1)
        return np.where(ids[pos_c] == meter_id, pos_c, -1).astype(np.int64)

    def add(
        self,
        meter_id: npt.ArrayLike,
        channel: npt.ArrayLike,
        interval_end: npt.ArrayLike,
        value_wh: npt.ArrayLike,
        *,
        version: npt.ArrayLike | None = None,
        status: npt.ArrayLike | None = None,
        received_at: npt.ArrayLike | None = None,
    ) -> None:
        """Place a batch of raw reads (``interval_end`` and ``received_at`` in Unix
        seconds). Reads of channels other than the four electricity channels are ignored.

        One compiled pass over the batch (``grid_kernels.place``) places what lies inside
        the grid; the reads it leaves (unknown meters, other days, the opening interval)
        are worked out here, on their own rows."""
        mid = np.asarray(meter_id, dtype=np.int64)
        n = mid.size
        self.reads += n
        if n == 0:
            return
        ch = np.asarray(channel)
        if ch.dtype.kind not in "iu":  # Parquet gives int8: taken as it is, not widened
            ch = ch.astype(np.int64)
        end = np.asarray(interval_end, dtype=np.int64)
        val = np.asarray(value_wh, dtype=np.int64)
        if not ch.size == end.size == val.size == n:
            raise ValueError("meter_id, channel, interval_end and value_wh differ in length")
        # Numba takes 0.4 s to import: loaded by the first batch, not by every command
        from openami.mdm.vee.grid_kernels import place

        ver = _optional(version, np.int16, n)
        st = _optional(status, np.int16, n)
        rec = _optional(received_at, np.int64, n)
        # the kernel looks meter rows up in the table itself; sparse ids are searched here
        lut = self._lut if self._lut is not None else np.empty(0, dtype=np.int64)
        rows = self._rows(mid) if self._lut is None else np.empty(0, dtype=np.int64)
        first_id = int(self.meter_ids[0]) if self.meter_ids.size else 0
        info, slots = self.info, self._slots
        out_index = np.empty(n, dtype=np.int64)
        out_slot = np.empty(n, dtype=np.int64)
        out_rem = np.empty(n, dtype=np.int64)
        placed, outside = place(
            mid, lut, first_id, rows, ch, end, val, ver, st, rec,
            info.day0, info.step_s, info.slots, self.grid_s, self.future_tolerance_s,
            slots.value, slots.version, slots.conflict, self.status, self.skew, self.sub,
            out_index, out_slot, out_rem,
        )  # fmt: skip
        self.placed += placed
        if outside:
            idx = out_index[:outside]
            versions = np.maximum(ver[idx], 1) if ver.size else np.ones(outside, np.int16)
            self._misplaced(
                rows[idx] if rows.size else self._rows(mid[idx]),  # sparse ids: searched once
                out_slot[:outside],
                out_rem[:outside],
                ch[idx].astype(np.int64),
                val[idx],
                versions,
            )

    def _misplaced(
        self,
        row: IntArray,
        slot: IntArray,
        rem: IntArray,
        ch: IntArray,
        val: IntArray,
        ver: npt.NDArray[np.int16],
    ) -> None:
        """Count reads of unknown meters and of other days; keep the opening interval."""
        known = row >= 0
        self.unknown_meter += int((~known).sum())
        opening = known & (slot == -1) & (rem == 0) & (ch >= 1) & (ch <= 4)
        self.outside += int((known & ~opening).sum())
        if opening.any():
            from openami.mdm.vee.grid_kernels import put

            o = self._opening
            keys = row[opening] * 4 + ch[opening] - 1
            put(o.value, o.version, o.conflict, keys, val[opening], ver[opening])

    # --- the frame ----------------------------------------------------------------------

    def frame(self, *, release: bool = False) -> pl.DataFrame:
        """The grid, sorted by meter then slot (``release``: free the builder's arrays
        once copied, for a pass that is done adding). Columns: ``meter_id``, ``slot``,
        ``interval_end`` (Unix s), ``imp``/``exp`` (interval Wh, null where missing),
        ``imp_reg``/``exp_reg`` (register Wh at the interval end), ``status`` (OR of the
        AMR status of the slot's reads), ``conflict_imp``/``conflict_exp``, ``skew``,
        ``sub``, and per meter (repeated) ``open_imp``/``open_exp``/``open_imp_reg``/
        ``open_exp_reg`` for the interval ending at 00:00."""
        info = self.info
        m, s = self.meter_ids.size, info.slots
        slot = np.tile(np.arange(s, dtype=np.int16), m)
        cols: dict[str, pa.Array] = {
            "meter_id": pa.array(np.repeat(self.meter_ids, s)),
            "slot": pa.array(slot),
            "interval_end": pa.array(info.day0 + slot.astype(np.int64) * info.step_s),
        }
        conflicts = {}
        for c, name in CHANNELS.items():
            value, present, conflict = self._slots.column(c)
            cols[name] = pa.array(value, mask=~present)
            conflicts[name] = conflict
        cols["status"] = pa.array(self.status)
        cols["conflict_imp"] = pa.array(conflicts["imp"])
        cols["conflict_exp"] = pa.array(conflicts["exp"])
        cols["skew"] = pa.array(self.skew)
        cols["sub"] = pa.array(self.sub)
        for c, name in CHANNELS.items():
            value, present, _ = self._opening.column(c)
            cols[f"open_{name}"] = pa.array(np.repeat(value, s), mask=np.repeat(~present, s))
        frame = pl.from_arrow(pa.table(cols))
        if release:
            self._slots = _Slots(0)
            self._opening = _Slots(0)
            self.status = np.zeros(0, dtype=np.int16)
            self.skew = np.zeros(0, dtype=bool)
            self.sub = np.zeros(0, dtype=bool)
        assert isinstance(frame, pl.DataFrame)
        return frame.with_columns(pl.col("meter_id").set_sorted())


def _optional(
    values: npt.ArrayLike | None, dtype: type[np.signedinteger[Any]], n: int
) -> npt.NDArray[Any]:
    """A per-read column the caller may leave out: empty then (the kernel's "not given")."""
    if values is None:
        return np.empty(0, dtype=dtype)
    out = np.asarray(values, dtype=dtype)
    if out.size != n:
        raise ValueError("every column of a batch must have one value per read")
    return out


def unix_seconds(column: pa.ChunkedArray | pa.Array) -> IntArray:
    """Unix seconds from an Arrow timestamp column of any unit (Parquet keeps second
    timestamps as milliseconds) or from plain integers."""
    kind = column.type
    raw = column.cast(pa.int64()).to_numpy()
    if pa.types.is_timestamp(kind):
        per_second = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}[kind.unit]
        return np.asarray(raw // per_second, dtype=np.int64)
    return np.asarray(raw, dtype=np.int64)


def broadcast(
    grid: pl.DataFrame,
    per_meter: pl.DataFrame,
    columns: Mapping[str, pl.DataType],
    slots: int,
) -> pl.DataFrame:
    """Add per-meter columns of ``per_meter`` (keyed by ``meter_id``) to the grid, repeated
    over each meter's slots (null for meters it does not list, and for columns it lacks).
    The join is on the meters only; the repetition is a gather by position, since the
    grid's meters are sorted and each has ``slots`` rows."""
    ids = pl.DataFrame({"meter_id": grid["meter_id"].gather_every(slots)})
    have = [c for c in columns if c in per_meter.columns]
    keyed = per_meter.select("meter_id", *have).unique("meter_id", keep="last")
    aligned = ids.join(keyed, on="meter_id", how="left", maintain_order="left")
    index = pl.Series(np.repeat(np.arange(ids.height, dtype=np.int64), slots))
    out = [
        (pl.col(c).cast(dtype) if c in have else pl.lit(None, dtype=dtype)).alias(c)
        for c, dtype in columns.items()
    ]
    expanded = aligned.with_columns(out).select(list(columns)).select(pl.all().gather(index))
    return grid.hstack(expanded)
