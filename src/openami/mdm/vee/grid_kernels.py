"""The per-read loops of ``grid.GridBuilder``, compiled (Numba).

Placing a raw read in the grid is a handful of integer operations, but done as whole-array
NumPy steps it was some twenty passes over each batch (the slot, the checks, the key, a
scatter, a gather to find keys repeated within the batch, a second scatter): about 37 ns a
read, the largest single cost of a VEE chunk. One compiled pass over the batch does the
same in a few nanoseconds a read, and needs no scratch array the size of the grid.

The rules are those of ``grid``'s docstring, read by read in arrival order:

- the slot: ``(end - day0) / step``; a stamp between two interval ends goes to the slot
  containing it when it lies on the ``grid_s`` grid (a shorter interval: ``sub``), to the
  nearest slot otherwise (a slipped clock: ``skew``); such a read gives no value;
- a read of an unknown meter (``row`` < 0) or whose slot lies outside the day is left to
  the caller (``place`` lists it with its slot and remainder);
- a read stamped more than ``future_tolerance_s`` after its receipt marks ``skew``;
  a non-zero AMR status is OR-ed into the slot's;
- a value is kept per (slot, channel 1..4): the highest version wins, the first arrival
  among equal versions; ``conflict`` is set when a copy's value differs from the value
  held when it arrives, which is set exactly when any two copies of the identity differ.

Compiled once per machine (``cache=True`` keeps the machine code next to this file), so
a Dask worker pays no compile time after the first run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

import numba
import numpy as np
import numpy.typing as npt

__all__ = ["place", "put"]

F = TypeVar("F", bound=Callable[..., Any])
_EXACT = 1 << 40  # offsets (s) below this: offset / step as a float is off by < 1 step
IntArray = npt.NDArray[np.int64]


def _compiled(fn: F) -> F:
    return cast(F, numba.njit(cache=True, nogil=True)(fn))


@_compiled
def put(
    value: IntArray,
    version: npt.NDArray[np.int16],
    conflict: npt.NDArray[np.bool_],
    keys: IntArray,
    vals: IntArray,
    vers: npt.NDArray[np.int16],
) -> None:
    """Store reads at ``keys`` in arrival order (module docstring). Versions must be at
    least 1: a stored version of 0 means the key holds no read."""
    for i in range(keys.size):
        key, val, ver = keys[i], vals[i], vers[i]
        held = version[key]
        if held == 0:
            value[key] = val
            version[key] = ver
        else:
            if value[key] != val:
                conflict[key] = True
            if ver > held:
                value[key] = val
                version[key] = ver


@_compiled
def place(
    meter_id: IntArray,
    lut: IntArray,
    first_id: int,
    rows: IntArray,
    channel: npt.NDArray[np.integer[Any]],
    end: IntArray,
    val: IntArray,
    ver: npt.NDArray[np.int16],
    status_in: npt.NDArray[np.int16],
    received: IntArray,
    day0: int,
    step: int,
    slots: int,
    grid_s: int,
    future_tolerance_s: int,
    value: IntArray,
    version: npt.NDArray[np.int16],
    conflict: npt.NDArray[np.bool_],
    status: npt.NDArray[np.int16],
    skew: npt.NDArray[np.bool_],
    sub: npt.NDArray[np.bool_],
    out_index: IntArray,
    out_slot: IntArray,
    out_rem: IntArray,
) -> tuple[int, int]:
    """Place a batch (module docstring). A read's meter row is ``lut[meter_id - first_id]``
    (-1: unknown), or ``rows[i]`` when ``lut`` is empty (ids too sparse for a table);
    ``ver``, ``status_in`` and ``received`` may be empty (not given; versions below 1
    count as 1, since a stored 0 means an empty key). The grid's arrays are
    ``value``/``version``/``conflict`` (slot * 4 + channel - 1) and ``status``/``skew``/
    ``sub`` (slot). Reads outside the grid are listed in ``out_index``/``out_slot``/
    ``out_rem`` (their index, slot and remainder of the division by ``step``). Returns (reads
    that gave a value, reads listed)."""
    placed = 0
    outside = 0
    has_version = ver.size > 0
    has_status = status_in.size > 0
    has_received = received.size > 0
    half = step // 2
    inverse = 1.0 / step
    has_lut = lut.size > 0
    for i in range(meter_id.size):
        if has_lut:
            rel = meter_id[i] - first_id
            r = lut[rel] if 0 <= rel < lut.size else -1
        else:
            r = rows[i]
        offset = end[i] - day0
        if -_EXACT < offset < _EXACT:
            # a multiplication by the reciprocal, corrected by one step where it rounded
            # the wrong way: an integer division's latency was a sixth of the loop
            slot = np.int64(offset * inverse)
            rem = offset - slot * step
            if rem < 0:
                slot -= 1
                rem += step
            elif rem >= step:
                slot += 1
                rem -= step
        else:  # a stamp wild enough for the float to lose whole steps
            slot = offset // step
            rem = offset - slot * step
        on_grid = rem == 0
        legal = True
        if not on_grid:
            legal = offset % grid_s == 0
            slot = -((-offset) // step) if legal else (offset + half) // step
        if r < 0 or slot < 0 or slot >= slots:
            out_index[outside] = i
            out_slot[outside] = slot
            out_rem[outside] = rem
            outside += 1
            continue
        k = r * slots + slot
        if not on_grid:
            if legal:
                sub[k] = True
            else:
                skew[k] = True
        if has_received and end[i] > received[i] + future_tolerance_s:
            skew[k] = True
        if has_status and status_in[i] != 0:
            status[k] |= status_in[i]
        c = channel[i]
        if not on_grid or c < 1 or c > 4:
            continue
        placed += 1
        # put's rule, written out here: as a call (Numba's inline="always" too) a day in
        # arrival order took 1.1 to 1.2 s against 0.55, and as a second pass over the
        # batch's keys 0.65
        key = k * 4 + c - 1
        v = max(ver[i], 1) if has_version else 1
        held = version[key]
        if held == 0:
            value[key] = val[i]
            version[key] = v
        else:
            if value[key] != val[i]:
                conflict[key] = True
            if v > held:
                value[key] = val[i]
                version[key] = v
    return placed, outside
