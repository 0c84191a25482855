"""What every field-area network model shares: the media, a delivery, jamming, the contract.

The fleet simulator hands each area's network a batch of frames (which meters, when) and gets
back, per frame, whether it reached the head-end and how long it took. Everything here works on
whole batches of frames at once, because an area can hold hundreds of thousands of meters that
all push within the same few minutes of every half hour.

Besides the vocabulary this module holds the three pieces of physics that more than one medium
needs: the jamming factor at a given time, a finite-buffer FIFO queue in front of a shared
channel (evaluated without a Python loop over frames), and the placement of access points where
the meters are.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

import msgspec
import numpy as np
import numpy.typing as npt
from scipy.spatial import cKDTree  # type: ignore[import-untyped]

from openami.errors import ConfigError

__all__ = [
    "AreaNetwork",
    "BackhaulKind",
    "BoolArray",
    "Delivery",
    "FloatArray",
    "IntArray",
    "Jamming",
    "Medium",
    "NetworkBase",
    "as_floats",
    "check_finite",
    "check_positions",
    "fifo_queue",
    "jam_factor",
    "place_sites",
    "seeded_rng",
]

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


class Medium(StrEnum):
    """How meters reach their access point."""

    RF_MESH = "rf_mesh"  # 920 MHz multi-hop radio, every meter relays for its neighbours
    STAR = "star"  # one hop to a base station (a carrier's cell or a utility's P2MP radio)
    PLC = "plc"  # power-line carrier to a concentrator at the distribution transformer


class BackhaulKind(StrEnum):
    """How an access point reaches the head-end."""

    OWN_FIBRE = "own_fibre"
    CARRIER_FIBRE = "carrier_fibre"
    LTE = "lte"


@dataclass(frozen=True)
class Delivery:
    """Outcome of a batch of frames, aligned with the frames that were sent.

    ``latency_s`` runs from the meter's send time to arrival at the head-end (field-area network
    plus backhaul) and is NaN exactly where ``delivered`` is False, so that a mean over the
    latencies can never count a frame that did not arrive.
    """

    delivered: BoolArray
    latency_s: FloatArray

    def __post_init__(self) -> None:
        if self.delivered.shape != self.latency_s.shape:
            raise ValueError(
                f"delivered {self.delivered.shape} and latency_s {self.latency_s.shape} differ"
            )


def require(ok: bool, message: str) -> None:
    """Raise the one-line ``ConfigError`` that names the bad parameter."""
    if not ok:
        raise ConfigError(message)


def is_real(value: object) -> bool:
    """A real number but not a bool: msgspec checks types when it decodes, not when a struct
    is built directly, so a check must not assume that it was given a number."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)


def check_finite(owner: str, name: str, value: float) -> None:
    require(
        is_real(value) and math.isfinite(value), f"{owner}.{name} must be finite, got {value!r}"
    )


def check_positive(owner: str, name: str, value: float) -> None:
    require(
        is_real(value) and math.isfinite(value) and value > 0,
        f"{owner}.{name} must be > 0, got {value!r}",
    )


def check_non_negative(owner: str, name: str, value: float) -> None:
    # -0.0 is refused too: NumPy takes it for a negative scale and fails much later
    require(
        is_real(value) and math.isfinite(value) and math.copysign(1.0, value) > 0,
        f"{owner}.{name} must be >= 0, got {value!r}",
    )


def check_count(owner: str, name: str, value: int, minimum: int) -> None:
    require(
        isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= minimum,
        f"{owner}.{name} must be an integer >= {minimum}, got {value!r}",
    )


def check_probability(owner: str, name: str, value: float) -> None:
    require(
        is_real(value) and 0.0 <= value <= 1.0, f"{owner}.{name} must be in [0, 1], got {value!r}"
    )


def seeded_rng(seed: int) -> np.random.Generator:
    """The generator of a model's fixed per-meter draws, or a ``ConfigError`` for a bad seed."""
    require(
        isinstance(seed, numbers.Integral) and not isinstance(seed, bool) and seed >= 0,
        f"seed must be an integer >= 0, got {seed!r}",
    )
    return np.random.default_rng(int(seed))


def as_floats(value: object, name: str) -> FloatArray:
    """``value`` as a float array, or a ``ConfigError`` naming it (ragged, text, complex...)."""
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError):
        arr = None
    require(
        arr is not None and arr.dtype.kind in "iuf",
        f"{name} must be an array of real numbers",
    )
    assert arr is not None
    return arr.astype(np.float64)


class Jamming(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A radio or line jammer active in one area from ``start_s`` to ``end_s`` (Unix seconds).

    While it is active every RF hop, star link and PLC hop in that area has its delivery
    probability per transmission attempt multiplied by ``delivery_factor``; link-layer retries
    still apply, as they would against a real interferer.
    """

    area: str
    start_s: float
    end_s: float
    delivery_factor: float = 0.05

    def __post_init__(self) -> None:
        require(isinstance(self.area, str), f"Jamming.area must be an area name, got {self.area!r}")
        require(
            is_real(self.start_s)
            and is_real(self.end_s)
            and math.isfinite(self.start_s)
            and math.isfinite(self.end_s),
            "Jamming.start_s and Jamming.end_s must be finite Unix seconds",
        )
        require(
            self.end_s > self.start_s,
            f"Jamming.end_s ({self.end_s}) must be after Jamming.start_s ({self.start_s})",
        )
        check_probability("Jamming", "delivery_factor", self.delivery_factor)


def jam_factor(jams: list[Jamming], send_time_s: FloatArray) -> FloatArray:
    """Per-frame multiplier of the delivery probability; overlapping jammers multiply."""
    factor = np.ones(send_time_s.shape, dtype=np.float64)
    for jam in jams:
        inside = (send_time_s >= jam.start_s) & (send_time_s < jam.end_s)
        factor[inside] *= jam.delivery_factor
    return factor


class AreaNetwork(Protocol):
    """The field-area network of one area, as the fleet simulator drives it.

    Meters are LOCAL indices ``0..n_meters-1`` within the area. The same physics serves uplink
    (push, answers) and downlink (requests, commands): call ``transmit`` for either direction.
    """

    @property
    def area(self) -> str: ...

    @property
    def medium(self) -> Medium: ...

    @property
    def n_meters(self) -> int: ...

    @property
    def n_access_points(self) -> int: ...

    @property
    def access_point(self) -> IntArray:
        """Per meter, the index of its access point / base station / concentrator."""
        ...

    def transmit(
        self,
        meters: IntArray,
        send_time_s: FloatArray,
        rng: np.random.Generator,
        load_w: FloatArray | None = None,
    ) -> Delivery: ...

    def fail(self, meters: IntArray) -> None:
        """These meters' nodes die: they neither send nor relay until restored."""
        ...

    def restore(self, meters: IntArray) -> None: ...

    def add_jamming(self, j: Jamming) -> None: ...

    def cost_per_month_jpy(self) -> float:
        """Backhaul cost of the area's access points, yen per month."""
        ...


class NetworkBase:
    """State every medium keeps the same way: the area, live meters and jamming windows."""

    def __init__(self, area: str, n_meters: int) -> None:
        self.area = area
        self.n_meters = n_meters
        self.alive: BoolArray = np.ones(n_meters, dtype=np.bool_)
        self.jamming: list[Jamming] = []

    def add_jamming(self, j: Jamming) -> None:
        """Remember a jammer; one aimed at another area is ignored, so that a simulator may
        hand every area the same list."""
        if j.area == self.area:
            self.jamming.append(j)

    def fail(self, meters: IntArray) -> None:
        self.alive[self._local(meters)] = False

    def restore(self, meters: IntArray) -> None:
        self.alive[self._local(meters)] = True

    def _local(self, meters: IntArray) -> IntArray:
        try:
            raw = np.asarray(meters)
        except (TypeError, ValueError):
            raw = None
        require(
            raw is not None and (raw.dtype.kind in "iu" or raw.size == 0),
            "meters must be an array of integer local meter indices",
        )
        assert raw is not None
        idx = raw.astype(np.int64).reshape(-1)
        require(
            idx.size == 0 or (int(idx.min()) >= 0 and int(idx.max()) < self.n_meters),
            f"meters must be local indices in 0..{self.n_meters - 1} of area {self.area!r}",
        )
        return idx

    def _frames(
        self, meters: IntArray, send_time_s: FloatArray, load_w: FloatArray | None
    ) -> tuple[IntArray, FloatArray, FloatArray | None]:
        """Validated flat copies of a transmit batch."""
        idx = self._local(meters)
        t = as_floats(send_time_s, "send_time_s").reshape(-1)
        require(t.shape == idx.shape, f"{idx.size} meters but {t.size} send_time_s")
        require(bool(np.isfinite(t).all()), "send_time_s must be finite Unix seconds")
        load = None
        if load_w is not None:
            load = as_floats(load_w, "load_w").reshape(-1)
            require(load.shape == idx.shape, f"{idx.size} meters but {load.size} load_w")
            require(bool(np.isfinite(load).all()), "load_w must be finite watts")
        return idx, t, load


def fifo_queue(
    group: IntArray, arrival_s: FloatArray, service_s: FloatArray, max_wait_s: float
) -> tuple[FloatArray, BoolArray]:
    """Wait before service, and admission, of frames sharing one channel per ``group``.

    Each group (an access point, a cell, a concentrator) serves its frames first come, first
    served; a frame that finds more than ``max_wait_s`` of work ahead of it is dropped (a full
    buffer) and adds no work. Without a buffer limit the work ahead obeys Lindley's recursion
    ``W_k = max(W_{k-1} - gap_k, 0) + s_k``: each step is a map ``x -> max(x + a, b)`` and such
    maps compose into maps of the same form, so all frames are solved exactly with a prefix
    scan of log2(group size) vectorised steps instead of a loop.

    A dropped frame breaks that form (the map jumps down where the buffer overflows), so the
    finite buffer is solved exactly frame by frame, but only inside the busy periods where the
    unlimited queue ever holds more than ``max_wait_s``: the limited queue never holds more
    work than the unlimited one, so it is idle wherever that one is, and every other busy
    period is already exact.
    """
    n = arrival_s.size
    wait = np.zeros(n, dtype=np.float64)
    admitted = np.ones(n, dtype=np.bool_)
    if n == 0:
        return wait, admitted
    order = np.lexsort((arrival_s, group))
    g = group[order]
    t = arrival_s[order] - arrival_s.min()  # relative times keep float resolution
    s = np.asarray(service_s[order], dtype=np.float64)
    first = np.ones(n, dtype=np.bool_)
    first[1:] = g[1:] != g[:-1]
    gap = np.zeros(n, dtype=np.float64)
    gap[1:] = t[1:] - t[:-1]
    ahead = _lindley(first, gap, s)
    limit = max_wait_s * (1.0 + 1e-12) + 1e-12
    ok = ahead <= limit
    if not ok.all():
        idle = ahead <= 0.0  # also true at the first frame of every group
        period = np.cumsum(idle) - 1
        redo = np.flatnonzero(np.isin(period, period[~ok]))
        ahead[redo], ok[redo] = _finite_buffer(idle[redo], gap[redo], s[redo], limit)
    wait[order] = ahead
    admitted[order] = ok
    return wait, admitted


def _lindley(first: BoolArray, gap: FloatArray, s: FloatArray) -> FloatArray:
    """Work ahead of each frame in an unlimited FIFO queue, by a prefix scan of the maps
    ``x -> max(x + a, b)`` (workload just before a frame -> just after it)."""
    n = s.size
    a = s - gap
    b = s.copy()
    # The first frame of a group meets an empty channel: a constant map to its own service
    # time (a = -inf), which also stops the scan from reaching back into the previous group.
    a[first] = -np.inf
    starts = np.flatnonzero(first)
    longest = int(np.diff(np.append(starts, n)).max())
    shift = 1
    while shift < longest:
        # compose P_i <- P_i o P_{i-shift}: max(max(x + a0, b0) + a1, b1)
        a0, b0 = a[:-shift], b[:-shift]
        a1, b1 = a[shift:], b[shift:]
        na = a0 + a1
        nb = np.maximum(b0 + a1, b1)
        a[shift:], b[shift:] = na, nb
        shift *= 2
    after = np.maximum(a, b)  # workload just after each frame
    ahead = np.zeros(n, dtype=np.float64)
    ahead[1:] = np.maximum(after[:-1] - gap[1:], 0.0)
    ahead[first] = 0.0
    return ahead


def _finite_buffer(
    idle: BoolArray, gap: FloatArray, s: FloatArray, limit: float
) -> tuple[FloatArray, BoolArray]:
    """Exact work ahead and admission, frame by frame, over whole busy periods (each run
    starts at a frame with ``idle`` True, which meets an empty channel)."""
    ahead: list[float] = []
    ok: list[bool] = []
    work = 0.0
    for start, dt, service in zip(idle.tolist(), gap.tolist(), s.tolist(), strict=True):
        w = 0.0 if start else max(work - dt, 0.0)
        ahead.append(w)
        ok.append(w <= limit)
        work = w + service if w <= limit else w
    return np.array(ahead, dtype=np.float64), np.array(ok, dtype=np.bool_)


def check_positions(positions_m: FloatArray, name: str = "positions_m") -> FloatArray:
    """A finite (n, 2) float array of metres with n >= 1, or a ``ConfigError``."""
    pos = as_floats(positions_m, name)
    require(
        pos.ndim == 2 and pos.shape[1] == 2 and pos.shape[0] >= 1,
        f"{name} must have shape (n, 2) with n >= 1, got {pos.shape}",
    )
    require(bool(np.isfinite(pos).all()), f"{name} must be finite metres")
    return pos


def place_sites(positions_m: FloatArray, k: int, rng: np.random.Generator) -> FloatArray:
    """About ``k`` sites that cover ``positions_m``, each standing on one of the positions.

    A few Lloyd (k-means) steps from a seeded random start put the sites where the meters are
    dense; each site then moves onto its nearest meter, because access points and concentrators
    are mounted on the poles and walls that meters already share. Sites that land on the same
    meter merge, so slightly fewer than ``k`` may come back.
    """
    n = positions_m.shape[0]
    k = max(1, min(k, n))
    centres = positions_m[rng.choice(n, size=k, replace=False)].copy()
    for _ in range(5):
        _, label = cKDTree(centres).query(positions_m)
        label = np.asarray(label, dtype=np.int64)
        count = np.bincount(label, minlength=k).astype(np.float64)
        used = count > 0
        for axis in range(2):
            total = np.bincount(label, weights=positions_m[:, axis], minlength=k)
            centres[used, axis] = total[used] / count[used]
    _, nearest = cKDTree(positions_m).query(centres)
    chosen = np.unique(np.asarray(nearest, dtype=np.int64))
    return np.asarray(positions_m[chosen], dtype=np.float64)
