"""RF mesh: hop counts from geometry, delivery and latency from the per-hop parameters, route
repair around dead relays, jamming."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.sparse import coo_matrix  # type: ignore[import-untyped]
from scipy.sparse.csgraph import shortest_path  # type: ignore[import-untyped]
from scipy.spatial import cKDTree  # type: ignore[import-untyped]
from scipy.stats import spearmanr  # type: ignore[import-untyped]

from openami.fleet.network import (
    BackhaulKind,
    BackhaulParams,
    Jamming,
    Medium,
    MeshNetwork,
    MeshParams,
    build_area_network,
)
from openami.fleet.network.base import BoolArray, FloatArray, IntArray
from tests.fleet.network.bounds import (
    assert_binomial,
    assert_mean,
    hop_success,
    truncated_geometric_mean,
    within_binomial,
)

# A backhaul that neither loses nor delays, so the field-area network is measured alone.
CLEAN = BackhaulParams(
    BackhaulKind.OWN_FIBRE, latency_ms=0.0, jitter_ms=0.0, loss=0.0, monthly_fee_jpy=0.0
)
AP_AT_ORIGIN = np.array([[0.0, 0.0]])


def mesh(
    pos: FloatArray,
    params: MeshParams | None = None,
    *,
    seed: int = 1,
    aps: FloatArray | None = AP_AT_ORIGIN,
    backhaul: BackhaulParams = CLEAN,
) -> MeshNetwork:
    net = build_area_network(
        Medium.RF_MESH,
        pos,
        backhaul.kind,
        params,
        seed,
        "A",
        backhaul_params=backhaul,
        access_points_m=aps,
    )
    assert isinstance(net, MeshNetwork)
    return net


def line(n: int, spacing: float = 100.0) -> FloatArray:
    """Meters every ``spacing`` metres along the x axis, away from an AP at the origin."""
    return np.column_stack([spacing * np.arange(1, n + 1), np.zeros(n)])


def reference_hops(
    pos: FloatArray, aps: FloatArray, radius: float, alive: BoolArray, max_hops: int
) -> IntArray:
    """Fewest hops from each live meter to any access point over the radius graph of live
    nodes, by an independent all-pairs shortest path; -1 where none within ``max_hops``."""
    n = pos.shape[0]
    keep = np.concatenate([np.flatnonzero(alive), n + np.arange(aps.shape[0])])
    pts = np.vstack([pos, aps])[keep]
    pairs = cKDTree(pts).query_pairs(radius, output_type="ndarray")
    m = keep.size
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(m, m))
    n_alive = int(alive.sum())
    dist = shortest_path(graph, directed=False, unweighted=True, indices=np.arange(n_alive, m))
    best = dist.min(axis=0)[:n_alive]
    out = np.full(n, -1, dtype=np.int64)
    reach = np.isfinite(best) & (best <= max_hops)
    out[keep[:n_alive][reach]] = best[reach].astype(np.int64)
    return out


def town(n: int = 1_500, side: float = 1_500.0, seed: int = 7) -> FloatArray:
    return np.random.default_rng(seed).uniform(0.0, side, (n, 2))


# -- topology ------------------------------------------------------------------------------


def test_hop_count_is_the_fewest_hops_over_the_radio_graph() -> None:
    pos = town()
    params = MeshParams(radio_range_m=120.0, meters_per_ap=500, max_hops=6, cover_clusters_of=0)
    net = mesh(pos, params, aps=None)
    assert net.n_access_points == 3
    ref = reference_hops(
        pos, net.access_points_m, 120.0, np.ones(pos.shape[0], np.bool_), params.max_hops
    )
    assert np.array_equal(net.hops, ref)
    assert (net.hops == -1).any()  # max_hops=6 leaves some far corners unreached
    assert (net.hops > 0).mean() > 0.8


def test_the_planner_adds_access_points_until_every_cluster_has_a_route() -> None:
    # hamlets of 40 houses 2 km apart: one access point per 500 meters leaves most unrouted
    rng = np.random.default_rng(3)
    centres = rng.uniform(0.0, 20_000.0, (25, 2))
    pos = np.repeat(centres, 40, axis=0) + rng.normal(0.0, 60.0, (1_000, 2))
    lone = rng.uniform(0.0, 20_000.0, (3, 2))  # farms alone in the fields: no access point
    pos = np.vstack([pos, lone])
    bare = mesh(pos, MeshParams(cover_clusters_of=0), aps=None)
    planned = mesh(pos, MeshParams(), aps=None)
    assert (bare.hops > 0).mean() < 0.2
    # every house that hears a neighbour is routed; a straggler out of range may not be
    near = cKDTree(pos).query(pos[:1_000], k=2)[0][:, 1]
    assert (planned.hops[:1_000][near < 150.0] > 0).all()
    assert 25 <= planned.n_access_points <= 25 + bare.n_access_points
    # the lone farms are below the cluster threshold and stay unrouted
    assert (planned.hops[1_000:] == -1).all()


def test_access_points_given_by_a_planner_are_kept_as_they_are() -> None:
    pos = line(30, spacing=100.0)
    net = mesh(pos, MeshParams(max_hops=3), aps=np.array([[0.0, 0.0]]))
    assert net.n_access_points == 1
    assert (net.hops == -1).sum() > 0


def test_further_from_the_access_point_means_more_hops() -> None:
    pos = town()
    net = mesh(pos, MeshParams(radio_range_m=150.0), aps=None)
    routed = net.hops > 0
    d = cKDTree(net.access_points_m).query(pos)[0]
    # a hop spans at most the radio range, so no route is shorter than distance / range
    assert (net.hops[routed] >= np.ceil(d[routed] / 150.0 - 1e-9)).all()
    # and in a dense town the routes are nearly straight: hop count tracks distance closely
    rho = spearmanr(d[routed], net.hops[routed]).statistic
    assert rho > 0.9
    assert float((net.hops[routed] - d[routed] / 150.0).mean()) < 1.5
    by_ring = [net.hops[routed & (d >= lo) & (d < lo + 150.0)].mean() for lo in (0, 300, 600)]
    assert by_ring[0] < by_ring[1] < by_ring[2]


def test_each_meter_relays_through_the_closest_node_one_hop_nearer() -> None:
    pos = town(600, 800.0)
    net = mesh(pos, MeshParams(radio_range_m=100.0), aps=None)
    pts = np.vstack([pos, net.access_points_m])
    hop_all = np.concatenate([net.hops, np.zeros(net.n_access_points, np.int64)])
    for m in np.flatnonzero(net.hops > 0):
        par = net.parent[m]
        assert hop_all[par] == net.hops[m] - 1
        candidates = np.flatnonzero(hop_all == net.hops[m] - 1)
        d = np.hypot(*(pts[candidates] - pts[m]).T)
        assert math.isclose(float(np.hypot(*(pts[par] - pts[m]))), float(d.min()))
        assert d.min() < 100.0
        # the route ends at the AP its parent's route ends at
        root = net.access_point[par] if par < net.n_meters else par - net.n_meters
        assert net.access_point[m] == root


def test_a_line_of_meters_has_one_hop_per_spacing() -> None:
    net = mesh(line(8))
    assert net.hops.tolist() == [1, 2, 3, 4, 5, 6, 7, 8]
    assert net.parent.tolist() == [8, 0, 1, 2, 3, 4, 5, 6]  # 8 = the access point
    short = mesh(line(8), MeshParams(max_hops=5))
    assert short.hops.tolist() == [1, 2, 3, 4, 5, -1, -1, -1]


# -- delivery and latency --------------------------------------------------------------------


@pytest.mark.parametrize(("p_hop", "retries"), [(0.6, 1), (0.8, 0), (0.5, 3), (0.9, 3)])
def test_end_to_end_delivery_is_per_hop_delivery_with_retries_to_the_hop_count(
    p_hop: float, retries: int
) -> None:
    n, per_meter = 8, 4_000
    params = MeshParams(hop_delivery=p_hop, retries=retries, ap_bandwidth_bps=1e12)
    net = mesh(line(n), params)
    meters = np.repeat(np.arange(n), per_meter)
    t = np.arange(meters.size, dtype=np.float64) * 10.0
    d = net.transmit(meters, t, np.random.default_rng(11))
    for m in range(n):
        hops = m + 1
        got = int(d.delivered[meters == m].sum())
        expected = hop_success(p_hop, retries) ** hops
        assert_binomial(got, per_meter, expected, f"{hops} hops")
    # the bounds are tight enough to tell retries from none at the far end of the line
    if retries and p_hop < 0.9:
        far = int(d.delivered[meters == n - 1].sum())
        assert not within_binomial(far, per_meter, p_hop**n)


@pytest.mark.parametrize(("p_hop", "retries"), [(0.6, 2), (1.0, 0)])
def test_latency_is_airtime_backoff_and_retry_waits_of_every_attempt(
    p_hop: float, retries: int
) -> None:
    n, per_meter = 6, 3_000
    params = MeshParams(
        hop_delivery=p_hop,
        retries=retries,
        hop_latency_ms=30.0,
        hop_jitter_ms=15.0,
        retry_delay_ms=50.0,
        ap_bandwidth_bps=1e12,
    )
    net = mesh(line(n), params)
    meters = np.repeat(np.arange(n), per_meter)
    d = net.transmit(
        meters, np.arange(meters.size, dtype=np.float64) * 10.0, np.random.default_rng(5)
    )
    per_hop = truncated_geometric_mean(p_hop, retries + 1)
    for m in range(n):
        hops = m + 1
        lat = d.latency_s[(meters == m) & d.delivered]
        attempts = hops * per_hop
        expected_ms = attempts * (30.0 + 15.0) + (attempts - hops) * 50.0
        assert_mean(lat, expected_ms / 1000.0, f"{hops} hops")
        assert lat.min() >= hops * 0.030  # each hop costs at least its airtime


def test_without_jitter_or_losses_latency_is_exactly_the_airtime_plus_backhaul() -> None:
    backhaul = BackhaulParams(
        BackhaulKind.OWN_FIBRE, latency_ms=2.0, jitter_ms=0.0, loss=0.0, monthly_fee_jpy=0.0
    )
    params = MeshParams(hop_delivery=1.0, hop_jitter_ms=0.0, ap_bandwidth_bps=1e12)
    net = mesh(line(5), params, backhaul=backhaul)
    d = net.transmit(np.arange(5), np.arange(5, dtype=np.float64) * 100.0, np.random.default_rng(0))
    assert d.delivered.all()
    assert np.allclose(d.latency_s, 0.030 * np.arange(1, 6) + 0.002)


def test_frames_reaching_the_access_point_together_queue_for_its_channel() -> None:
    # 40 one-hop meters push at once; 256 bytes at 50 kbit/s is 40.96 ms per frame
    pos = np.column_stack([np.full(40, 50.0), np.linspace(-50, 50, 40)])
    params = MeshParams(hop_delivery=1.0, hop_jitter_ms=0.0, ap_bandwidth_bps=50_000.0)
    net = mesh(pos, params)
    d = net.transmit(np.arange(40), np.zeros(40), np.random.default_rng(0))
    service = 256 * 8 / 50_000.0
    assert np.allclose(np.sort(d.latency_s), 0.030 + service * np.arange(40))


# -- failures and route repair -------------------------------------------------------------


def test_a_dead_relay_cuts_off_a_line_and_restoring_it_heals_it() -> None:
    net = mesh(line(8), MeshParams(hop_delivery=1.0))
    net.fail(np.array([3]))
    assert net.hops.tolist() == [1, 2, 3, -1, -1, -1, -1, -1]
    d = net.transmit(np.arange(8), np.arange(8, dtype=np.float64) * 10.0, np.random.default_rng(0))
    assert d.delivered.tolist() == [True] * 3 + [False] * 5
    net.restore(np.array([3]))
    assert net.hops.tolist() == [1, 2, 3, 4, 5, 6, 7, 8]
    d = net.transmit(np.arange(8), np.arange(8, dtype=np.float64) * 10.0, np.random.default_rng(0))
    assert d.delivered.all()


def test_meters_behind_a_dead_relay_are_routed_around_it() -> None:
    # a ladder: two rows 100 m apart, 100 m between rungs, radio range 150 m
    n = 8
    pos = np.vstack([line(n), line(n) + np.array([0.0, 100.0])])
    net = mesh(pos, MeshParams(hop_delivery=1.0), aps=np.array([[0.0, 50.0]]))
    before = net.hops.copy()
    dead = np.array([2, n + 4])  # one relay in each row
    net.fail(dead)
    live = np.setdiff1d(np.arange(2 * n), dead)
    assert (net.hops[dead] == -1).all()
    assert (net.hops[live] > 0).all()  # every other meter still has a route...
    assert (net.hops[live] >= before[live]).all()  # ...no shorter than before
    assert not np.isin(net.parent, dead).any()  # and none passes through a dead relay
    everyone = np.arange(2 * n)
    d = net.transmit(everyone, everyone.astype(np.float64) * 10.0, np.random.default_rng(0))
    assert d.delivered.tolist() == [m not in dead for m in everyone]


def test_route_repair_gives_the_same_routes_as_routing_the_survivors_from_scratch() -> None:
    pos = town(800, 1_000.0, seed=3)
    params = MeshParams(radio_range_m=110.0, max_hops=10)
    net = mesh(pos, params, aps=None)
    rng = np.random.default_rng(9)
    alive = np.ones(pos.shape[0], np.bool_)
    for _ in range(4):
        dead = rng.choice(pos.shape[0], 60, replace=False)
        net.fail(dead)
        alive[dead] = False
        ref = reference_hops(pos, net.access_points_m, 110.0, alive, params.max_hops)
        assert np.array_equal(net.hops, ref)
        revived = rng.choice(np.flatnonzero(~alive), 30, replace=False)
        net.restore(revived)
        alive[revived] = True
        ref = reference_hops(pos, net.access_points_m, 110.0, alive, params.max_hops)
        assert np.array_equal(net.hops, ref)
    # every surviving route is a chain of live nodes, each a hop nearer and within range
    pts = np.vstack([pos, net.access_points_m])
    routed = np.flatnonzero(net.hops > 0)
    par = net.parent[routed]
    assert np.all(np.hypot(*(pts[routed] - pts[par]).T) < 110.0)
    relayed = par < net.n_meters
    assert alive[par[relayed]].all()
    assert np.array_equal(net.hops[par[relayed]], net.hops[routed[relayed]] - 1)


def test_a_dead_meter_sends_nothing_even_with_a_perfect_radio() -> None:
    pos = town(300, 500.0)
    net = mesh(pos, MeshParams(hop_delivery=1.0), aps=None)
    dead = np.arange(0, 300, 3)
    net.fail(dead)
    meters = np.tile(np.arange(300), 4)
    d = net.transmit(
        meters, np.arange(meters.size, dtype=np.float64) * 1.0, np.random.default_rng(0)
    )
    assert not d.delivered[np.isin(meters, dead)].any()
    reachable = np.isin(meters, np.flatnonzero(net.hops > 0))
    assert d.delivered[reachable].all()


# -- jamming -------------------------------------------------------------------------------


def test_jamming_lowers_each_attempt_inside_its_window_and_area_only() -> None:
    p_hop, retries, factor, per_cell = 0.9, 2, 0.4, 4_000
    net = mesh(line(3), MeshParams(hop_delivery=p_hop, retries=retries, ap_bandwidth_bps=1e12))
    net.add_jamming(Jamming("A", 10_000.0, 20_000.0, factor))
    net.add_jamming(Jamming("B", 0.0, 1e9, 0.0))  # another area's jammer: ignored
    rng = np.random.default_rng(3)
    meters = np.repeat(np.arange(3), per_cell)
    before = rng.uniform(0.0, 10_000.0, meters.size)
    inside = rng.uniform(10_000.0, 20_000.0, meters.size)
    after = rng.uniform(20_000.0, 30_000.0, meters.size)
    for times, p_try in ((before, p_hop), (inside, p_hop * factor), (after, p_hop)):
        d = net.transmit(meters, times, rng)
        for m in range(3):
            got = int(d.delivered[meters == m].sum())
            assert_binomial(got, per_cell, hop_success(p_try, retries) ** (m + 1), f"hop {m}")


def test_a_hop_almost_certain_to_fail_fails_without_a_numeric_warning() -> None:
    """A success chance so small that log(1 - p) is subnormal makes the attempts overflow
    to infinity: the hop is lost, and no RuntimeWarning escapes (the fleet build's property
    test drew such a chance)."""
    from openami.fleet.network.mesh import hop_attempts

    p_try = np.array([[1e-310, 4.9e-277], [5e-320, 0.5], [1.0, 1.0]])
    ok, attempts = hop_attempts(p_try, 3, np.array([2, 1, 2]), np.random.default_rng(0))
    assert ok.tolist() == [False, False, True]
    assert attempts[0] == 8 and attempts[1] == 4 and attempts[2] == 2
