"""WAN backhaul: latency, loss and monthly cost per access point, as parameterised."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats  # type: ignore[import-untyped]

from openami.errors import ConfigError
from openami.fleet.network import (
    BackhaulKind,
    BackhaulParams,
    Delivery,
    Medium,
    apply_backhaul,
    build_area_network,
    default_backhaul,
    monthly_cost_jpy,
)
from openami.fleet.network.wan import PUSHES_PER_MONTH, monthly_mb
from tests.fleet.network.bounds import ALPHA, assert_binomial, assert_mean

N = 200_000


def carry(params: BackhaulParams, seed: int = 0) -> Delivery:
    """N frames that all reached their access point at no delay, over ``params``."""
    fan = Delivery(np.ones(N, dtype=np.bool_), np.zeros(N))
    return apply_backhaul(fan, np.zeros(N, dtype=np.int64), params, np.random.default_rng(seed))


@pytest.mark.parametrize("kind", list(BackhaulKind))
def test_latency_is_the_fixed_delay_plus_an_exponential_jitter(kind: BackhaulKind) -> None:
    p = default_backhaul(kind)
    d = carry(p)
    lat_ms = d.latency_s[d.delivered] * 1000.0
    assert lat_ms.min() >= p.latency_ms
    # mean latency_ms + jitter_ms, standard deviation jitter_ms, exponential above the floor
    assert_mean(lat_ms, p.latency_ms + p.jitter_ms, kind.value, sd=p.jitter_ms)
    assert stats.kstest(lat_ms - p.latency_ms, "expon", args=(0, p.jitter_ms)).pvalue > ALPHA


def test_the_three_backhauls_differ_as_documented() -> None:
    fibre, carrier, lte = (default_backhaul(k) for k in BackhaulKind)
    assert (fibre.latency_ms, carrier.latency_ms, lte.latency_ms) == (2.0, 5.0, 40.0)
    assert fibre.loss < carrier.loss < lte.loss == 0.003
    medians = [float(np.nanmedian(carry(p).latency_s)) for p in (fibre, carrier, lte)]
    assert medians == sorted(medians)
    assert medians[2] > 0.040 > 0.005 > medians[0]


def test_lte_loses_its_share_of_frames_and_fibre_next_to_none() -> None:
    lte = carry(default_backhaul(BackhaulKind.LTE), seed=1)
    assert_binomial(int((~lte.delivered).sum()), N, 0.003, "LTE loss")
    fibre = carry(default_backhaul(BackhaulKind.OWN_FIBRE), seed=1)
    # expected 0.2 losses in 200 000 frames
    assert int((~fibre.delivered).sum()) <= stats.poisson.isf(ALPHA, N * 1e-6)


def test_loss_and_latency_apply_only_to_frames_that_reached_the_access_point() -> None:
    p = BackhaulParams(
        BackhaulKind.LTE, latency_ms=40.0, jitter_ms=0.0, loss=0.5, monthly_fee_jpy=400.0
    )
    fan_ok = np.arange(20_000) % 2 == 0
    fan = Delivery(fan_ok, np.where(fan_ok, 0.25, np.nan))
    d = apply_backhaul(fan, np.zeros(20_000, np.int64), p, np.random.default_rng(3))
    assert not d.delivered[~fan_ok].any()
    assert_binomial(int(d.delivered.sum()), 10_000, 0.5, "half lost")
    assert np.allclose(d.latency_s[d.delivered], 0.29)
    assert np.array_equal(np.isnan(d.latency_s), ~d.delivered)


def test_monthly_cost_is_a_fee_per_access_point_plus_a_charge_per_megabyte() -> None:
    # 48 pushes a day of 256 bytes: 1461 pushes a month, 0.374 MB per meter
    assert math.isclose(PUSHES_PER_MONTH, 1461.0)
    assert math.isclose(monthly_mb(1_000, 256), 1_000 * 1461.0 * 256 / 1e6)
    assert monthly_cost_jpy(default_backhaul(BackhaulKind.OWN_FIBRE), 10, 1e6) == 30_000.0
    assert monthly_cost_jpy(default_backhaul(BackhaulKind.CARRIER_FIBRE), 10, 1e6) == 50_000.0
    lte = monthly_cost_jpy(default_backhaul(BackhaulKind.LTE), 10, 1_000.0)
    assert math.isclose(lte, 10 * 400.0 + 1_000.0 * 0.5)
    with pytest.raises(ConfigError, match="n_access_points"):
        monthly_cost_jpy(default_backhaul(BackhaulKind.LTE), -1, 0.0)


@pytest.mark.parametrize("medium", list(Medium))
@pytest.mark.parametrize("kind", list(BackhaulKind))
def test_an_areas_cost_is_its_access_points_times_the_fee_plus_its_traffic(
    medium: Medium, kind: BackhaulKind
) -> None:
    pos = np.random.default_rng(0).uniform(0.0, 4_000.0, (2_000, 2))
    net = build_area_network(medium, pos, kind, None, 1, "A")
    p = default_backhaul(kind)
    traffic = 2_000 * PUSHES_PER_MONTH * 256 / 1e6
    expected = net.n_access_points * p.monthly_fee_jpy + traffic * p.per_mb_jpy
    assert math.isclose(net.cost_per_month_jpy(), expected)
    # the fixed part scales with access points: PLC needs a concentrator per transformer,
    # the mesh one border router per ~500 meters and one more per cluster of houses the
    # radio cannot reach at 125 meters per km2, the star a few cells
    sites = {Medium.PLC: (80, 110), Medium.RF_MESH: (3, 15), Medium.STAR: (1, 4)}[medium]
    assert sites[0] <= net.n_access_points <= sites[1]


def test_lte_traffic_charges_grow_with_meters_and_fibre_fees_do_not() -> None:
    costs = {}
    for kind in (BackhaulKind.OWN_FIBRE, BackhaulKind.LTE):
        one_ap = np.array([[0.0, 0.0]])
        small = np.random.default_rng(0).uniform(-500, 500, (200, 2))
        large = np.random.default_rng(0).uniform(-500, 500, (2_000, 2))
        costs[kind] = [
            build_area_network(
                Medium.STAR, pos, kind, None, 1, "A", access_points_m=one_ap
            ).cost_per_month_jpy()
            for pos in (small, large)
        ]
    assert costs[BackhaulKind.OWN_FIBRE] == [3_000.0, 3_000.0]
    small_lte, large_lte = costs[BackhaulKind.LTE]
    assert math.isclose(large_lte - small_lte, 1_800 * PUSHES_PER_MONTH * 256 / 1e6 * 0.5)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("latency_ms", -1.0),
        ("jitter_ms", math.nan),
        ("loss", 1.5),
        ("loss", -0.1),
        ("monthly_fee_jpy", math.inf),
        ("per_mb_jpy", -0.5),
        ("kind", "satellite"),
    ],
)
def test_bad_backhaul_parameters_are_config_errors_naming_them(field: str, value: object) -> None:
    fields: dict[str, object] = {
        "kind": BackhaulKind.LTE,
        "latency_ms": 40.0,
        "jitter_ms": 15.0,
        "loss": 0.003,
        "monthly_fee_jpy": 400.0,
        field: value,
    }
    with pytest.raises(ConfigError, match=f"BackhaulParams\\.{field}") as info:
        BackhaulParams(**fields)  # type: ignore[arg-type]
    assert "\n" not in str(info.value)


def test_an_unknown_backhaul_kind_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="backhaul"):
        default_backhaul("satellite")  # type: ignore[arg-type]
