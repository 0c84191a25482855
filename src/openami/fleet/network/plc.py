"""Power-line communication through a concentrator at each distribution transformer.

Narrowband PLC runs in the 10-450 kHz band (ARIB STD-T84 in Japan) over the low-voltage wires
that a pole transformer feeds; its concentrator sees only that transformer's meters, so meters
are grouped around transformer sites, about ``meters_per_concentrator`` each. The signal fades
along the cable, so meters farther than ``hop_range_m`` reach the concentrator through other
meters acting as repeaters (as G3-PLC and PRIME do), routed on the shortest number of hops.

What limits PLC is noise, not distance alone: switching power supplies, inverters and motors
on the same wires. So each hop's SNR is its quiet-line value, less the cable's attenuation,
less a time-of-day noise term (Japan time: a large evening peak when households cook, wash and
watch, a smaller morning one) and less a load term (the more the household draws, the more
noisy appliances run). Delivery per attempt is logistic in that SNR, with ARQ retries per hop.
The channel is a few kbit/s and shared by all of the transformer's meters: each frame occupies
it once per hop, so frames wait behind their neighbours' and the serialisation delay dominates.
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
    check_count,
    check_finite,
    check_non_negative,
    check_positions,
    check_positive,
    fifo_queue,
    jam_factor,
    place_sites,
    seeded_rng,
)
from openami.fleet.network.mesh import RoutedNetwork, Routes, hop_attempts
from openami.fleet.network.wan import (
    BackhaulParams,
    apply_backhaul,
    monthly_cost_jpy,
    monthly_mb,
)

__all__ = ["PlcNetwork", "PlcParams", "line_noise_db"]

JST_OFFSET_S = 9 * 3600  # Japan has no daylight saving time: local = UTC + 9 h all year


class PlcParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Line, noise and channel of a narrowband PLC segment."""

    # Households per pole transformer and concentrator (a Japanese 6.6 kV/100-200 V pole
    # transformer feeds roughly ten to thirty homes).
    meters_per_concentrator: int = 20
    # Useful bit rate of the shared channel: robust narrowband modes give a few kbit/s.
    bit_rate_bps: float = 4_800.0
    # One push on the wire (DLMS notification, wrapper, GCM tag, compressed headers).
    frame_bytes: int = 256
    # SNR of a short hop on a quiet line, dB.
    base_snr_db: float = 20.0
    # Cable attenuation at ~100 kHz along low-voltage service wires, dB per 100 m.
    attenuation_db_per_100m: float = 4.0
    # SNR at which one attempt gets through half the time (robust modes decode near 6 dB), and
    # the dB that multiply the odds by e.
    snr50_db: float = 6.0
    slope_db: float = 1.5
    # Extra noise at the evening peak (~20:00 JST) and the morning one (~07:30 JST), dB.
    evening_noise_db: float = 6.0
    morning_noise_db: float = 3.0
    # Extra noise per kW the household draws, dB, and the load assumed when none is given.
    load_noise_db_per_kw: float = 1.0
    typical_load_w: float = 400.0
    # Standard deviation of a fixed per-meter SNR offset (wiring, branch points), dB.
    wiring_db: float = 2.0
    # Longest hop the signal makes before a meter must repeat it.
    hop_range_m: float = 150.0
    # Most repeater hops a route may take; farther meters are unreachable.
    max_hops: int = 4
    # ARQ retries per hop, the MAC and processing time of each attempt and the wait before a
    # retry.
    retries: int = 2
    hop_overhead_ms: float = 20.0
    retry_delay_ms: float = 100.0
    # Frames the concentrator's segment may hold waiting; later ones are dropped.
    queue_limit: int = 100

    def __post_init__(self) -> None:
        for name in ("bit_rate_bps", "slope_db", "hop_range_m"):
            check_positive("PlcParams", name, getattr(self, name))
        for name in (
            "attenuation_db_per_100m",
            "evening_noise_db",
            "morning_noise_db",
            "load_noise_db_per_kw",
            "typical_load_w",
            "wiring_db",
            "hop_overhead_ms",
            "retry_delay_ms",
        ):
            check_non_negative("PlcParams", name, getattr(self, name))
        for name in ("base_snr_db", "snr50_db"):
            check_finite("PlcParams", name, getattr(self, name))
        for name in ("retries", "queue_limit"):
            check_count("PlcParams", name, getattr(self, name), 0)
        for name in ("meters_per_concentrator", "frame_bytes", "max_hops"):
            check_count("PlcParams", name, getattr(self, name), 1)


def _bump(hours: FloatArray, centre: float, width: float) -> FloatArray:
    d = np.abs(((hours - centre) + 12.0) % 24.0 - 12.0)  # circular: wraps at midnight
    return np.asarray(np.exp(-0.5 * (d / width) ** 2), dtype=np.float64)


def line_noise_db(send_time_s: FloatArray, load_w: FloatArray, params: PlcParams) -> FloatArray:
    """Noise above the quiet line, dB, at each Unix time (UTC) and household load."""
    hours = ((send_time_s + JST_OFFSET_S) % 86_400.0) / 3_600.0
    daily = params.evening_noise_db * _bump(hours, 20.0, 1.5)
    daily = daily + params.morning_noise_db * _bump(hours, 7.5, 1.0)
    return daily + params.load_noise_db_per_kw * np.maximum(load_w, 0.0) / 1_000.0


class PlcNetwork(RoutedNetwork):
    """The PLC segments of one area (see the module docstring for the physics)."""

    medium = Medium.PLC

    def __init__(
        self,
        positions_m: FloatArray,
        params: PlcParams,
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
            k = math.ceil(self.n_meters / params.meters_per_concentrator)
            sites = place_sites(pos, k, rng)
        else:
            sites = check_positions(access_points_m, "access_points_m")
        self.access_points_m = sites
        _, segment = cKDTree(sites).query(pos)
        self._segment: IntArray = np.asarray(segment, dtype=np.int64)
        # Wires of different transformers do not connect: lift each segment onto its own
        # plane, farther apart than a hop, so the route search never crosses between them.
        lift = 2.0 * params.hop_range_m
        z_meters = self._segment.astype(np.float64) * lift
        z_sites = np.arange(sites.shape[0], dtype=np.float64) * lift
        points = np.vstack([np.column_stack([pos, z_meters]), np.column_stack([sites, z_sites])])
        self.routes = Routes(points, sites.shape[0], params.hop_range_m, params.max_hops)
        self.wiring_db: FloatArray = rng.normal(0.0, params.wiring_db, self.n_meters)

    @property
    def access_point(self) -> IntArray:
        """Per meter, the concentrator of its transformer (whether or not it has a route)."""
        return self._segment

    def transmit(
        self,
        meters: IntArray,
        send_time_s: FloatArray,
        rng: np.random.Generator,
        load_w: FloatArray | None = None,
    ) -> Delivery:
        """Send one frame per entry of ``meters`` at ``send_time_s``; ``load_w`` is the
        household load (W) at that time, which raises the line noise (typical when None)."""
        idx, t, load = self._frames(meters, send_time_s, load_w)
        p = self.params
        if load is None:
            load = np.full(idx.size, p.typical_load_w)
        hops = self.hops[idx]
        routed = (hops > 0) & self.alive[idx]
        n_hops = np.where(routed, hops, 0)
        width = max(int(n_hops.max()) if idx.size else 0, 1)
        noise = line_noise_db(t, load, p)
        jam = jam_factor(self.jamming, t)
        # Walk each route towards the concentrator: every hop has its own length and wiring.
        p_try = np.zeros((idx.size, width))
        node = idx.copy()
        for j in range(width):
            on = n_hops > j
            at = node[on]
            snr = p.base_snr_db - p.attenuation_db_per_100m * self.routes.link_m(at) / 100.0
            snr = snr - noise[on] + self.wiring_db[at]
            p_try[on, j] = jam[on] * expit((snr - p.snr50_db) / p.slope_db)
            node[on] = self.routes.parent[at]
        hop_ok, attempts = hop_attempts(p_try, p.retries + 1, n_hops, rng)
        serialise_s = p.frame_bytes * 8 / p.bit_rate_bps
        fan_s = attempts * (serialise_s + p.hop_overhead_ms / 1000.0)
        fan_s = fan_s + (attempts - n_hops) * p.retry_delay_ms / 1000.0
        # The segment is one shared channel: a frame holds it once per hop it travels.
        sel = np.flatnonzero(routed)
        seg = self._segment[idx]
        wait = np.zeros(idx.size)
        admitted = np.zeros(idx.size, dtype=np.bool_)
        w, a = fifo_queue(seg[sel], t[sel], n_hops[sel] * serialise_s, p.queue_limit * serialise_s)
        wait[sel] = w
        admitted[sel] = a
        delivered = routed & admitted & hop_ok
        latency = np.where(delivered, wait + fan_s, np.nan)
        return apply_backhaul(Delivery(delivered, latency), seg, self.backhaul, rng)

    def cost_per_month_jpy(self) -> float:
        mb = monthly_mb(self.n_meters, self.params.frame_bytes)
        return monthly_cost_jpy(self.backhaul, self.n_access_points, mb)
