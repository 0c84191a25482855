"""Wireless 1:N star: every meter talks straight to a base station.

This is a carrier's LTE/LPWA cell or a utility's point-to-multipoint radio. There are no
relays, so a meter's fate depends on its own link: the received signal falls with distance as
``d ** -n`` (``n`` the path-loss exponent), and a fixed per-meter shadowing term stands for the
walls, buildings and metal meter boxes that make two meters at the same distance differ. The
link delivers a frame with a probability logistic in the SNR margin, anchored so that a
median meter at the cell edge gets ``edge_delivery``. The cell's uplink serves a limited number
of frames per second: beyond that frames queue, and beyond the queue limit they are dropped
(scheduling-request and random-access congestion when a whole town pushes at once).
"""

from __future__ import annotations

import math

import msgspec
import numpy as np
from scipy.spatial import cKDTree  # type: ignore[import-untyped]
from scipy.special import expit  # type: ignore[import-untyped]

from openami.fleet.network.base import (
    Delivery,
    FloatArray,
    IntArray,
    Medium,
    NetworkBase,
    check_count,
    check_non_negative,
    check_positions,
    check_positive,
    fifo_queue,
    is_real,
    jam_factor,
    require,
    seeded_rng,
)
from openami.fleet.network.wan import (
    BackhaulParams,
    apply_backhaul,
    monthly_cost_jpy,
    monthly_mb,
)

__all__ = ["StarNetwork", "StarParams", "link_delivery"]


class StarParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Radio, capacity and latency of a star cell."""

    # Distance from the base station at which ``edge_delivery`` holds; base stations are laid
    # on a square grid spaced radius * sqrt(2) so that no meter is farther than this.
    cell_radius_m: float = 2_000.0
    # Received power falls as distance ** -n: 2 in free space, 3 to 4 in towns (Hata-like).
    path_loss_exponent: float = 3.5
    # Delivery probability of a median meter (no shadowing) at the cell edge.
    edge_delivery: float = 0.9
    # SNR, in dB, that multiplies the odds of delivery by e: how sharply a link goes from
    # working to failing. 2 dB matches the steep waterfall of coded modulation plus HARQ.
    slope_db: float = 2.0
    # Standard deviation of the fixed per-meter log-normal shadowing, dB (towns: 4 to 8).
    shadowing_db: float = 4.0
    # Uplink frames per second one cell serves for the meters (LTE-M/LPWA: tens to hundreds).
    capacity_fps: float = 50.0
    # Frames that may wait for the uplink; one arriving behind more than this is dropped.
    queue_limit: int = 200
    # Fixed air-interface and core latency of a frame, and the mean of an exponential jitter.
    latency_ms: float = 60.0
    jitter_ms: float = 30.0
    # Bytes of one push, for the backhaul's per-megabyte charge.
    frame_bytes: int = 256

    def __post_init__(self) -> None:
        for name in ("cell_radius_m", "path_loss_exponent", "slope_db", "capacity_fps"):
            check_positive("StarParams", name, getattr(self, name))
        for name in ("shadowing_db", "latency_ms", "jitter_ms"):
            check_non_negative("StarParams", name, getattr(self, name))
        require(
            is_real(self.edge_delivery) and 0.0 < self.edge_delivery < 1.0,
            f"StarParams.edge_delivery must be in (0, 1), got {self.edge_delivery!r}",
        )
        check_count("StarParams", "queue_limit", self.queue_limit, 0)
        check_count("StarParams", "frame_bytes", self.frame_bytes, 1)


def link_delivery(distance_m: FloatArray, shadow_db: FloatArray, params: StarParams) -> FloatArray:
    """Delivery probability of one frame over a link of ``distance_m`` with ``shadow_db`` gain.

    Relative to the cell edge the SNR is ``10 n log10(R / d)`` dB higher (path loss) plus the
    shadowing; the log-odds of delivery are those at the edge plus that margin over the slope.
    """
    d = np.maximum(distance_m, 1.0)  # inside a metre the far-field law no longer applies
    margin_db = 10.0 * params.path_loss_exponent * np.log10(params.cell_radius_m / d) + shadow_db
    edge = params.edge_delivery
    log_odds = math.log(edge / (1.0 - edge)) + margin_db / params.slope_db
    return np.asarray(expit(log_odds), dtype=np.float64)  # 1 / (1 + e**-x) without overflow


class StarNetwork(NetworkBase):
    """The star network of one area (see the module docstring for the physics)."""

    medium = Medium.STAR

    def __init__(
        self,
        positions_m: FloatArray,
        params: StarParams,
        backhaul: BackhaulParams,
        *,
        seed: int,
        area: str,
        access_points_m: FloatArray | None = None,
    ) -> None:
        pos = check_positions(positions_m)
        super().__init__(area, pos.shape[0])
        self.params = params
        self.backhaul = backhaul
        self.positions_m = pos
        rng = seeded_rng(seed)
        if access_points_m is None:
            sites = _grid(pos, params.cell_radius_m)
        else:
            sites = check_positions(access_points_m, "access_points_m")
        dist, cell = cKDTree(sites).query(pos)
        cell = np.asarray(cell, dtype=np.int64)
        if access_points_m is None:
            # A grid square with no meter in it needs no base station.
            used, cell = np.unique(cell, return_inverse=True)
            sites = sites[used]
        self.access_points_m = sites
        self._cell: IntArray = cell.astype(np.int64)
        self.distance_m: FloatArray = np.asarray(dist, dtype=np.float64)
        self.shadow_db: FloatArray = rng.normal(0.0, params.shadowing_db, self.n_meters)
        self.p_link: FloatArray = link_delivery(self.distance_m, self.shadow_db, params)

    @property
    def n_access_points(self) -> int:
        return int(self.access_points_m.shape[0])

    @property
    def access_point(self) -> IntArray:
        """Per meter, the base station it is attached to (the nearest one)."""
        return self._cell

    def transmit(
        self,
        meters: IntArray,
        send_time_s: FloatArray,
        rng: np.random.Generator,
        load_w: FloatArray | None = None,
    ) -> Delivery:
        """Send one frame per entry of ``meters`` at ``send_time_s`` (``load_w`` is unused)."""
        idx, t, _ = self._frames(meters, send_time_s, load_w)
        p = self.params
        alive = self.alive[idx]
        cell = self._cell[idx]
        # The uplink scheduler serves the cell's frames first come, first served.
        service = 1.0 / p.capacity_fps
        sel = np.flatnonzero(alive)
        wait = np.zeros(idx.size)
        admitted = np.zeros(idx.size, dtype=np.bool_)
        w, a = fifo_queue(cell[sel], t[sel], np.full(sel.size, service), p.queue_limit * service)
        wait[sel] = w
        admitted[sel] = a
        p_ok = self.p_link[idx] * jam_factor(self.jamming, t)
        link_ok = rng.random(idx.size) < p_ok
        jitter = rng.exponential(1.0, idx.size) * p.jitter_ms
        delivered = alive & admitted & link_ok
        latency = np.where(delivered, (p.latency_ms + jitter) / 1000.0 + wait, np.nan)
        return apply_backhaul(Delivery(delivered, latency), cell, self.backhaul, rng)

    def cost_per_month_jpy(self) -> float:
        mb = monthly_mb(self.n_meters, self.params.frame_bytes)
        return monthly_cost_jpy(self.backhaul, self.n_access_points, mb)


def _grid(positions_m: FloatArray, radius_m: float) -> FloatArray:
    """Centres of a square grid over the meters' bounding box, spaced radius * sqrt(2): the
    farthest point of a square is half its diagonal, exactly the radius, from its centre.

    Only the squares that hold a meter are returned (in row-major order of the grid): a small
    radius over a wide area would otherwise make a grid of billions of empty squares.
    """
    spacing = radius_m * math.sqrt(2.0)
    low = positions_m.min(axis=0)
    high = positions_m.max(axis=0)
    with np.errstate(over="ignore"):
        span = (high - low) / spacing
    require(
        bool(np.all(span < 1e12)),
        f"StarParams.cell_radius_m {radius_m!r} is too small for an area "
        f"{float((high - low).max()):.0f} m across",
    )
    counts = np.maximum(np.ceil(span), 1).astype(np.int64)
    offset = low + ((high - low) - (counts - 1) * spacing) / 2.0
    # the nearest centre of a square grid is the one of the square the point lies in
    square = np.clip(np.rint((positions_m - offset) / spacing), 0, counts - 1).astype(np.int64)
    used = np.unique(square, axis=0)
    return np.asarray(offset + spacing * used, dtype=np.float64)
