"""Power-line carrier: delivery follows the line noise of the hour and the household load,
the shared channel is slow, and segments never cross transformers."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
from scipy.spatial import cKDTree  # type: ignore[import-untyped]

from openami.fleet.network import (
    BackhaulKind,
    BackhaulParams,
    Jamming,
    Medium,
    PlcNetwork,
    PlcParams,
    build_area_network,
)
from openami.fleet.network.base import FloatArray, IntArray
from openami.fleet.network.plc import line_noise_db
from tests.fleet.network.bounds import (
    assert_binomial,
    assert_mean,
    assert_poisson_binomial,
    hop_success,
    truncated_geometric_mean,
)

JST = timezone(timedelta(hours=9))
DAY_S = 86_400.0
CLEAN = BackhaulParams(
    BackhaulKind.OWN_FIBRE, latency_ms=0.0, jitter_ms=0.0, loss=0.0, monthly_fee_jpy=0.0
)
CONCENTRATOR = np.array([[0.0, 0.0]])


def plc(
    pos: FloatArray,
    params: PlcParams | None = None,
    *,
    seed: int = 1,
    aps: FloatArray | None = CONCENTRATOR,
) -> PlcNetwork:
    net = build_area_network(
        Medium.PLC, pos, BackhaulKind.OWN_FIBRE, params, seed, "A",
        backhaul_params=CLEAN, access_points_m=aps,
    )  # fmt: skip
    assert isinstance(net, PlcNetwork)
    return net


def jst(hour: float, day: int = 0) -> float:
    """Unix seconds at ``hour`` (JST) on 3 August 2026 plus ``day`` days."""
    start = datetime(2026, 8, 3, tzinfo=JST) + timedelta(days=day, hours=hour)
    return start.timestamp()


def daily_frames(net: PlcNetwork, hour: float, days: int) -> tuple[IntArray, FloatArray]:
    """Every meter sends once a day at ``hour`` JST for ``days`` days: one frame at a time per
    segment would still queue behind its neighbours, so each meter gets its own 5 s slot."""
    meters = np.tile(np.arange(net.n_meters), days)
    t = np.array([jst(hour, d) for d in range(days)], dtype=np.float64).repeat(net.n_meters)
    return meters, t + np.tile(np.arange(net.n_meters, dtype=np.float64), days) * 5.0


def predicted_delivery(net: PlcNetwork, noise_db: float) -> FloatArray:
    """Per meter, the delivery its route's parameters predict: every hop's SNR is the quiet
    line less the cable's attenuation over the hop's own length less the noise, plus the
    sending node's wiring offset; an attempt is logistic in it and ARQ retries each hop."""
    p = net.params
    pts = np.vstack([net.positions_m, net.access_points_m])
    out = np.zeros(net.n_meters)
    for m in np.flatnonzero(net.hops > 0):
        node, prob = int(m), 1.0
        while node < net.n_meters:
            par = int(net.routes.parent[node])
            length = float(np.hypot(*(pts[node] - pts[par])))
            snr = p.base_snr_db - p.attenuation_db_per_100m * length / 100.0 - noise_db
            snr += float(net.wiring_db[node])
            p_try = 1.0 / (1.0 + math.exp(-(snr - p.snr50_db) / p.slope_db))
            prob *= hop_success(p_try, p.retries)
            node = par
        out[m] = prob
    return out


def street(n: int = 60, seed: int = 3) -> FloatArray:
    """Houses along a few hundred metres of street around one pole transformer."""
    return np.random.default_rng(seed).uniform(-300.0, 300.0, (n, 2))


# -- the noise -------------------------------------------------------------------------------


def test_line_noise_peaks_in_the_japanese_evening_and_morning() -> None:
    p = PlcParams(evening_noise_db=6.0, morning_noise_db=3.0, load_noise_db_per_kw=1.0)
    hours = [3.0, 7.5, 12.0, 20.0]
    noise = line_noise_db(np.array([jst(h) for h in hours]), np.zeros(4), p)
    assert noise[0] < 0.01 and noise[2] < 0.01
    assert math.isclose(noise[1], 3.0, abs_tol=0.01)
    assert math.isclose(noise[3], 6.0, abs_tol=0.01)
    # a household drawing 2.5 kW adds 2.5 dB, at any hour
    loud = line_noise_db(np.array([jst(h) for h in hours]), np.full(4, 2_500.0), p)
    assert np.allclose(loud - noise, 2.5)


# -- delivery ------------------------------------------------------------------------------


@pytest.mark.parametrize(("hour", "noise_db"), [(3.0, 0.0), (7.5, 3.0), (20.0, 6.0)])
def test_delivery_follows_the_noise_of_the_hour(hour: float, noise_db: float) -> None:
    params = PlcParams(
        base_snr_db=13.0, evening_noise_db=6.0, morning_noise_db=3.0, load_noise_db_per_kw=0.0
    )
    net = plc(street(), params)
    days = 40
    meters, t = daily_frames(net, hour, days)
    d = net.transmit(meters, t, np.random.default_rng(int(hour)))
    expected = predicted_delivery(net, noise_db)
    assert_poisson_binomial(int(d.delivered.sum()), expected[meters], f"{hour}:00 JST")


def test_the_evening_is_worse_than_the_night() -> None:
    params = PlcParams(base_snr_db=13.0, load_noise_db_per_kw=0.0)
    net = plc(street(), params)
    rates = {}
    for hour in (3.0, 20.0):
        meters, t = daily_frames(net, hour, 40)
        rates[hour] = float(net.transmit(meters, t, np.random.default_rng(1)).delivered.mean())
    assert rates[20.0] < rates[3.0] - 0.05


def test_delivery_falls_with_household_load() -> None:
    params = PlcParams(base_snr_db=13.0, load_noise_db_per_kw=2.0)
    net = plc(street(), params)
    meters, t = daily_frames(net, 3.0, 40)  # a quiet hour: the load is the noise
    rates = []
    for load_w in (0.0, 1_500.0, 4_000.0):
        load = np.full(meters.size, load_w)
        d = net.transmit(meters, t, np.random.default_rng(2), load)
        expected = predicted_delivery(net, 2.0 * load_w / 1_000.0)
        assert_poisson_binomial(int(d.delivered.sum()), expected[meters], f"{load_w} W")
        rates.append(float(d.delivered.mean()))
    assert rates[0] > rates[1] > rates[2]


def test_without_a_load_the_typical_household_load_sets_the_noise() -> None:
    params = PlcParams(base_snr_db=13.0, load_noise_db_per_kw=3.0, typical_load_w=2_000.0)
    net = plc(street(), params)
    meters, t = daily_frames(net, 3.0, 40)
    d = net.transmit(meters, t, np.random.default_rng(3))
    expected = predicted_delivery(net, 6.0)
    assert_poisson_binomial(int(d.delivered.sum()), expected[meters], "typical load")


# -- the channel -----------------------------------------------------------------------------


def test_a_frame_takes_its_serialisation_time_on_every_hop() -> None:
    # a quiet, short line: every attempt succeeds, so a route of h hops costs exactly h
    # serialisations (256 bytes at 4.8 kbit/s = 0.4267 s) plus h MAC overheads
    params = PlcParams(base_snr_db=60.0, wiring_db=0.0, hop_range_m=150.0, max_hops=4)
    pos = np.column_stack([100.0 * np.arange(1, 5), np.zeros(4)])
    net = plc(pos, params)
    assert net.hops.tolist() == [1, 2, 3, 4]
    d = net.transmit(np.arange(4), np.arange(4, dtype=np.float64) * 100.0, np.random.default_rng(0))
    serialise = 256 * 8 / 4_800.0
    assert np.allclose(d.latency_s, np.arange(1, 5) * (serialise + 0.020))
    assert d.latency_s[0] > 0.4  # a few kbit/s: one hop is slower than a whole RF route


@pytest.mark.parametrize("p_try", [0.5, 0.8])
def test_retries_add_attempts_and_retry_waits_as_the_hop_law_predicts(p_try: float) -> None:
    # no attenuation or wiring spread: every hop has the same per-attempt delivery p_try
    snr = 6.0 + 1.5 * math.log(p_try / (1.0 - p_try))
    params = PlcParams(
        base_snr_db=snr, attenuation_db_per_100m=0.0, wiring_db=0.0,
        evening_noise_db=0.0, morning_noise_db=0.0, load_noise_db_per_kw=0.0, retries=2,
    )  # fmt: skip
    pos = np.column_stack([100.0 * np.arange(1, 4), np.zeros(3)])
    net = plc(pos, params)
    per = 4_000
    meters = np.repeat(np.arange(3), per)
    d = net.transmit(
        meters, np.arange(meters.size, dtype=np.float64) * 10.0, np.random.default_rng(4)
    )
    serialise = 256 * 8 / 4_800.0
    for m in range(3):
        hops = m + 1
        sent = meters == m
        assert_binomial(int(d.delivered[sent].sum()), per, hop_success(p_try, 2) ** hops, "")
        attempts = hops * truncated_geometric_mean(p_try, 3)
        expected = attempts * (serialise + 0.020) + (attempts - hops) * 0.100
        assert_mean(d.latency_s[sent & d.delivered], expected, f"{hops} hops")


def test_the_segment_is_one_slow_shared_channel_with_a_finite_queue() -> None:
    params = PlcParams(base_snr_db=60.0, wiring_db=0.0, queue_limit=10)
    pos = np.random.default_rng(1).uniform(-60.0, 60.0, (30, 2))  # all one hop away
    net = plc(pos, params)
    assert (net.hops == 1).all()
    d = net.transmit(np.arange(30), np.zeros(30), np.random.default_rng(0))
    assert int(d.delivered.sum()) == 11  # one on the wire, ten waiting, the rest dropped
    serialise = 256 * 8 / 4_800.0
    expected = np.arange(11) * serialise + serialise + 0.020
    assert np.allclose(np.sort(d.latency_s[d.delivered]), expected)
    # the channel carries at most its bit rate: 11 frames took 11 serialisations
    assert float(np.nanmax(d.latency_s)) >= 11 * 256 * 8 / 4_800.0


# -- topology --------------------------------------------------------------------------------


def test_segments_follow_transformers_and_routes_never_cross_them() -> None:
    pos = np.random.default_rng(5).uniform(0.0, 1_500.0, (600, 2))
    params = PlcParams(meters_per_concentrator=20, hop_range_m=120.0, max_hops=4)
    net = plc(pos, params, aps=None)
    assert 20 <= net.n_access_points <= 30
    # every meter belongs to its nearest transformer's concentrator...
    nearest = cKDTree(net.access_points_m).query(pos)[1]
    assert np.array_equal(net.access_point, nearest)
    # ...and its route stays on that transformer's wires
    routed = np.flatnonzero(net.hops > 0)
    par = net.routes.parent[routed]
    seg_of = np.concatenate([net.access_point, np.arange(net.n_access_points)])
    assert np.array_equal(seg_of[par], net.access_point[routed])
    assert np.array_equal(net.routes.root[routed], net.access_point[routed])
    pts = np.vstack([pos, net.access_points_m])
    assert (np.hypot(*(pts[routed] - pts[par]).T) < 120.0).all()
    assert net.hops.max() <= 4


def test_meters_beyond_the_repeater_hops_are_unreachable() -> None:
    params = PlcParams(base_snr_db=60.0, hop_range_m=150.0, max_hops=2)
    pos = np.column_stack([100.0 * np.arange(1, 6), np.zeros(5)])
    net = plc(pos, params)
    assert net.hops.tolist() == [1, 2, -1, -1, -1]
    d = net.transmit(np.arange(5), np.arange(5, dtype=np.float64) * 10.0, np.random.default_rng(0))
    assert d.delivered.tolist() == [True, True, False, False, False]


def test_a_dead_repeater_cuts_off_the_meters_behind_it() -> None:
    params = PlcParams(base_snr_db=60.0, hop_range_m=150.0)
    pos = np.column_stack([100.0 * np.arange(1, 5), np.zeros(4)])
    net = plc(pos, params)
    net.fail(np.array([1]))
    assert net.hops.tolist() == [1, -1, -1, -1]
    d = net.transmit(np.arange(4), np.arange(4, dtype=np.float64) * 10.0, np.random.default_rng(0))
    assert d.delivered.tolist() == [True, False, False, False]
    net.restore(np.array([1]))
    assert net.hops.tolist() == [1, 2, 3, 4]


def test_jamming_lowers_every_attempt_inside_its_window_only() -> None:
    params = PlcParams(base_snr_db=60.0, wiring_db=0.0, retries=1)
    pos = np.column_stack([100.0 * np.arange(1, 3), np.zeros(2)])
    net = plc(pos, params)
    # a three-day jammer: the channel carries only a couple of frames a second, so the test
    # frames are spread thinly enough never to queue
    net.add_jamming(Jamming("A", jst(12.0), jst(12.0, day=3), 0.5))
    net.add_jamming(Jamming("B", jst(0.0, day=-9), jst(0.0, day=9), 0.0))
    per = 4_000
    meters = np.repeat(np.arange(2), per)
    rng = np.random.default_rng(6)
    for first_day, factor in ((-3, 1.0), (0, 0.5), (3, 1.0)):
        t = rng.uniform(jst(12.0, first_day), jst(12.0, first_day + 3), meters.size)
        d = net.transmit(meters, t, rng)
        for m in range(2):
            got = int(d.delivered[meters == m].sum())
            if factor == 1.0:
                assert got == per
            else:
                p = hop_success(factor, 1) ** (m + 1)
                assert_binomial(got, per, p, f"{m + 1} hops jammed")
