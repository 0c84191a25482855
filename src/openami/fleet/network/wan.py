"""WAN backhaul from each access point to the head-end, and what it costs a month.

Three options a Japanese utility actually weighs for its collectors: its own optical fibre
(laid along its own poles: no fee, but build-out and upkeep per site), a carrier's optical
fibre line (a closed-network business service, a small fixed monthly fee) and a carrier's LTE
(no cabling, but a radio hop with tens of milliseconds and some loss, a SIM fee plus a charge
per megabyte).
"""

from __future__ import annotations

import msgspec
import numpy as np

from openami.fleet.network.base import (
    BackhaulKind,
    Delivery,
    IntArray,
    check_non_negative,
    check_probability,
    require,
)

__all__ = [
    "PUSHES_PER_MONTH",
    "BackhaulParams",
    "apply_backhaul",
    "default_backhaul",
    "monthly_cost_jpy",
    "monthly_mb",
]

# One push per 30-minute interval (the design's default), over an average month.
PUSHES_PER_MONTH = 48 * 365.25 / 12


_KINDS = frozenset(k.value for k in BackhaulKind)


class BackhaulParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One access point's backhaul link.

    Latency of a frame = ``latency_ms`` (propagation, switching, the carrier's core) plus an
    exponentially distributed queueing jitter of mean ``jitter_ms``; so the mean latency is
    ``latency_ms + jitter_ms`` and its standard deviation ``jitter_ms``. Each frame is lost
    independently with probability ``loss``. The monthly cost is ``monthly_fee_jpy`` per access
    point plus ``per_mb_jpy`` per megabyte carried.
    """

    kind: BackhaulKind
    latency_ms: float
    jitter_ms: float
    loss: float
    monthly_fee_jpy: float
    per_mb_jpy: float = 0.0

    def __post_init__(self) -> None:
        require(
            self.kind in _KINDS,
            f"BackhaulParams.kind must be one of {sorted(_KINDS)}, got {self.kind!r}",
        )
        for name in ("latency_ms", "jitter_ms", "monthly_fee_jpy", "per_mb_jpy"):
            check_non_negative("BackhaulParams", name, getattr(self, name))
        check_probability("BackhaulParams", "loss", self.loss)


_DEFAULTS = {
    # Own fibre: a few km of fibre and one switch hop (~5 us/km plus switching) -> ~2 ms; loss
    # is bit errors only. The fee stands for amortised build-out, pole rent and upkeep per site.
    BackhaulKind.OWN_FIBRE: BackhaulParams(
        BackhaulKind.OWN_FIBRE, latency_ms=2.0, jitter_ms=0.2, loss=1e-6, monthly_fee_jpy=3_000.0
    ),
    # Carrier fibre: a closed-area business line through the carrier's aggregation network,
    # ~5 ms; a fixed monthly fee of the order of a business FTTH line.
    BackhaulKind.CARRIER_FIBRE: BackhaulParams(
        BackhaulKind.CARRIER_FIBRE,
        latency_ms=5.0,
        jitter_ms=0.5,
        loss=1e-5,
        monthly_fee_jpy=5_000.0,
    ),
    # Carrier LTE: radio scheduling and the mobile core give ~40 ms at best with a tail to
    # ~80 ms (jitter mean 15 ms), and ~0.3% of frames lost over the air; an IoT SIM plan with a
    # small fixed fee and a per-megabyte charge.
    BackhaulKind.LTE: BackhaulParams(
        BackhaulKind.LTE,
        latency_ms=40.0,
        jitter_ms=15.0,
        loss=0.003,
        monthly_fee_jpy=400.0,
        per_mb_jpy=0.5,
    ),
}


def default_backhaul(kind: BackhaulKind) -> BackhaulParams:
    """The documented defaults for ``kind``."""
    require(kind in _KINDS, f"backhaul must be one of {sorted(_KINDS)}, got {kind!r}")
    return _DEFAULTS[BackhaulKind(kind)]


def apply_backhaul(
    delivery: Delivery,
    access_point: IntArray,
    params: BackhaulParams,
    rng: np.random.Generator,
) -> Delivery:
    """Carry frames that reached their access point on to the head-end.

    A frame arrives if it got through the field-area network AND the backhaul; its latency
    grows by the backhaul latency. ``access_point`` is accepted for symmetry with per-site
    links (all sites of one area share one kind of backhaul, drawn independently per frame).
    """
    n = delivery.delivered.size
    if access_point.shape != delivery.delivered.shape:
        raise ValueError(f"{access_point.size} access points for {n} frames")
    lost = rng.random(n) < params.loss
    jitter = rng.exponential(1.0, n) * (params.jitter_ms / 1000.0)
    delivered = delivery.delivered & ~lost
    latency = delivery.latency_s + params.latency_ms / 1000.0 + jitter
    latency = np.where(delivered, latency, np.nan)
    return Delivery(delivered, latency)


def monthly_mb(n_meters: int, frame_bytes: int) -> float:
    """Megabytes a month that ``n_meters`` half-hourly pushes put on the backhaul."""
    return n_meters * PUSHES_PER_MONTH * frame_bytes / 1e6


def monthly_cost_jpy(params: BackhaulParams, n_access_points: int, mb_per_month: float) -> float:
    """Yen per month: the fixed fee of every access point plus the traffic charge."""
    require(n_access_points >= 0, f"n_access_points must be >= 0, got {n_access_points}")
    return n_access_points * params.monthly_fee_jpy + mb_per_month * params.per_mb_jpy
