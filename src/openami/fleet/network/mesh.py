"""RF multi-hop mesh: 920 MHz Wi-SUN-like radio where every meter relays for its neighbours.

Topology comes from geometry. Access points (border routers on poles) are placed where the
meters are, about ``meters_per_ap`` each; two nodes hear each other when they are closer than
the radio range; every meter routes along a shortest-hop path to the nearest access point in
hops (what RPL converges to when all links are alike), choosing as parent the closest node one
hop nearer. A frame crosses each hop with link-layer retries, so its end-to-end delivery is
``(1 - (1 - p_hop)**(retries + 1)) ** hops``; its latency is the airtime and backoff of every
attempt, the queue at the access point's shared channel, and the backhaul.

Routes are grown level by level (all nodes one hop from the access points, then two, ...),
asking a k-d tree of the previous level for each unrouted node's nearest node in range. That is
a breadth-first search from all access points at once whose cost does not depend on how many
neighbours a node has: in a dense town a 150 m radius holds hundreds of meters, and an explicit
neighbour graph for a quarter of a million of them would hold tens of millions of edges.
"""

from __future__ import annotations

import math

import msgspec
import numpy as np
from scipy.sparse import coo_matrix  # type: ignore[import-untyped]
from scipy.sparse.csgraph import connected_components  # type: ignore[import-untyped]
from scipy.spatial import cKDTree  # type: ignore[import-untyped]

from openami.fleet.network.base import (
    BoolArray,
    Delivery,
    FloatArray,
    IntArray,
    Medium,
    NetworkBase,
    check_count,
    check_non_negative,
    check_positions,
    check_positive,
    check_probability,
    fifo_queue,
    jam_factor,
    place_sites,
    seeded_rng,
)
from openami.fleet.network.wan import (
    BackhaulParams,
    apply_backhaul,
    monthly_cost_jpy,
    monthly_mb,
)

__all__ = ["MeshNetwork", "MeshParams", "RoutedNetwork", "Routes", "hop_attempts"]


class MeshParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Radio and topology of a Wi-SUN-like mesh.

    Defaults describe a 920 MHz FSK mesh at the 20 mW that ARIB STD-T108 allows without a
    licence, with meters in wall-mounted boxes in a Japanese town.
    """

    # Distance at which two nodes still hear each other. 20 mW at 920 MHz through houses and
    # walls: one to a few hundred metres; 150 m is a cautious urban figure.
    radio_range_m: float = 150.0
    # Probability that one transmission attempt over one hop is received and acknowledged.
    hop_delivery: float = 0.9
    # Link-layer retries after a failed attempt (IEEE 802.15.4 macMaxFrameRetries, default 3).
    retries: int = 3
    # Airtime plus forwarding of one attempt: 256 bytes at 100 kbit/s is ~20 ms on air, plus
    # preamble, ACK and turnaround.
    hop_latency_ms: float = 30.0
    # Mean random CSMA-CA backoff before each attempt (exponentially distributed).
    hop_jitter_ms: float = 15.0
    # Extra wait before a retry: the ACK timeout and a wider backoff window.
    retry_delay_ms: float = 50.0
    # Useful capacity of the access point's one radio channel: a 100 kbit/s PHY loses about
    # half to backoff, ACKs and headers. Sets the service time of the AP's queue.
    ap_bandwidth_bps: float = 50_000.0
    # One push on air: a DLMS data notification with the 62056-4-7 wrapper, GCM tag, UDP and
    # 6LoWPAN-compressed IPv6 headers.
    frame_bytes: int = 256
    # Meters each access point is sized for (border routers handle hundreds to a few thousand).
    meters_per_ap: int = 500
    # Longest route allowed; nodes farther away in hops count as unreachable.
    max_hops: int = 12
    # Planning: after placing access points by count, add one (or more, ``meters_per_ap``
    # each) to every cluster of at least this many meters that still has no route, as a
    # planner would for a hamlet beyond radio range. 0 leaves the first placement alone.
    cover_clusters_of: int = 5

    def __post_init__(self) -> None:
        for name in ("radio_range_m", "ap_bandwidth_bps"):
            check_positive("MeshParams", name, getattr(self, name))
        for name in ("hop_latency_ms", "hop_jitter_ms", "retry_delay_ms"):
            check_non_negative("MeshParams", name, getattr(self, name))
        check_probability("MeshParams", "hop_delivery", self.hop_delivery)
        check_count("MeshParams", "retries", self.retries, 0)
        for name in ("frame_bytes", "meters_per_ap", "max_hops"):
            check_count("MeshParams", name, getattr(self, name), 1)
        check_count("MeshParams", "cover_clusters_of", self.cover_clusters_of, 0)


class Routes:
    """Shortest-hop routing tree over a radius graph, rooted at the access points.

    Nodes are rows of ``points``: the routed nodes first, then ``n_roots`` roots (access
    points, which never die). Per node: ``hop`` (0 for roots, -1 when unreachable within
    ``max_hops``), ``parent`` (the next node towards the root, -1 for none) and ``root`` (the
    index of the access point the route ends at, -1 for none).
    """

    def __init__(self, points: FloatArray, n_roots: int, radius: float, max_hops: int) -> None:
        self.points = points
        self.n_nodes = points.shape[0] - n_roots
        self.n_roots = n_roots
        self.radius = radius
        self.max_hops = max_hops
        total = points.shape[0]
        self.alive: BoolArray = np.ones(total, dtype=np.bool_)
        self.hop: IntArray = np.full(total, -1, dtype=np.int64)
        self.parent: IntArray = np.full(total, -1, dtype=np.int64)
        self.root: IntArray = np.full(total, -1, dtype=np.int64)
        self.rebuild()

    def rebuild(self) -> None:
        """Route every live node from scratch."""
        n = self.n_nodes
        self.hop[:] = -1
        self.parent[:] = -1
        self.root[:] = -1
        self.hop[n:] = 0
        self.root[n:] = np.arange(self.n_roots, dtype=np.int64)
        self._grow()

    def fail(self, nodes: IntArray) -> None:
        """Remove ``nodes`` and repair the routes that passed through them.

        Only the dead nodes' descendants lose their route; everyone else keeps a shortest path
        (removing nodes never shortens one), so only the orphans are routed again, starting
        from the surviving tree. They come back with as many hops or more, or not at all.
        """
        dead = np.zeros(self.hop.size, dtype=np.bool_)
        dead[nodes] = True
        dead[self.n_nodes :] = False
        lost = dead.copy()
        top = int(self.hop.max())
        for level in range(1, top + 1):
            at = np.flatnonzero(self.hop == level)
            lost[at] |= lost[self.parent[at]]
        self.alive[dead] = False
        self.hop[lost] = -1
        self.parent[lost] = -1
        self.root[lost] = -1
        self._grow()

    def restore(self, nodes: IntArray) -> None:
        """Bring ``nodes`` back; they may shorten other routes too, so route everything again."""
        self.alive[nodes] = True
        self.rebuild()

    def link_m(self, nodes: IntArray) -> FloatArray:
        """Length of each node's hop to its parent (0 where it has none)."""
        par = self.parent[nodes]
        has = par >= 0
        out = np.zeros(nodes.size, dtype=np.float64)
        diff = self.points[nodes[has]] - self.points[par[has]]
        out[has] = np.sqrt((diff * diff).sum(axis=1))
        return out

    def _grow(self) -> None:
        """Breadth-first search by levels from every node that already has a hop count."""
        free = np.flatnonzero((self.hop < 0) & self.alive)
        top = int(self.hop.max())
        level = 0
        while free.size and level < self.max_hops:
            frontier = np.flatnonzero((self.hop == level) & self.alive)
            if frontier.size == 0:
                if level >= top:
                    break  # nothing at this level and nothing routed beyond it
                level += 1
                continue
            dist, nearest = cKDTree(self.points[frontier]).query(
                self.points[free], distance_upper_bound=self.radius
            )
            found = np.isfinite(np.asarray(dist, dtype=np.float64))
            new = free[found]
            parent = frontier[np.asarray(nearest, dtype=np.int64)[found]]
            self.hop[new] = level + 1
            self.parent[new] = parent
            self.root[new] = self.root[parent]
            free = free[~found]
            if new.size:
                top = max(top, level + 1)
            level += 1


def hop_attempts(
    p_try: FloatArray, tries: int, n_hops: IntArray, rng: np.random.Generator
) -> tuple[BoolArray, IntArray]:
    """Per frame: did every hop succeed within ``tries`` attempts, and how many attempts in all.

    ``p_try`` is the per-attempt success of each frame's hops: shape (frames,) when all hops of
    a frame are alike, or (frames, hops) when each hop has its own. The attempts a hop needs
    follow a geometric law, drawn by inverting its CDF from one uniform per hop; a hop that
    would need more than ``tries`` gives up and loses the frame.
    """
    n = n_hops.size
    if n == 0:
        return np.zeros(0, dtype=np.bool_), np.zeros(0, dtype=np.int64)
    width = max(int(n_hops.max()), 1)
    u = rng.random((n, width))
    p = np.broadcast_to(p_try.reshape(n, -1), (n, width))
    attempts = np.full((n, width), tries + 1, dtype=np.float64)
    can = p > 0
    # -inf when p == 1: one attempt; +inf (overflow) when p is so small that log_fail is
    # subnormal: more attempts than any retry budget, so the hop fails, as it should
    with np.errstate(divide="ignore", over="ignore"):
        log_fail = np.log1p(-np.minimum(p[can], 1.0))
        need = np.ceil(np.log1p(-u[can]) / log_fail)
    attempts[can] = np.clip(need, 1, tries + 1)
    active = np.arange(width)[None, :] < n_hops[:, None]
    ok = np.asarray(((attempts <= tries) | ~active).all(axis=1), dtype=np.bool_)
    total = np.where(active, attempts, 0).sum(axis=1).astype(np.int64)
    return ok, total


class RoutedNetwork(NetworkBase):
    """A network whose meters relay for each other along ``routes`` (mesh radio, PLC
    repeaters): a dead node takes its descendants' routes with it until they are repaired."""

    routes: Routes
    access_points_m: FloatArray

    @property
    def n_access_points(self) -> int:
        return int(self.access_points_m.shape[0])

    @property
    def hops(self) -> IntArray:
        """Per meter, hops to its access point; -1 where unreachable or dead."""
        return self.routes.hop[: self.n_meters]

    def fail(self, meters: IntArray) -> None:
        idx = self._local(meters)
        super().fail(idx)
        self.routes.fail(idx)

    def restore(self, meters: IntArray) -> None:
        idx = self._local(meters)
        super().restore(idx)
        self.routes.restore(idx)


class MeshNetwork(RoutedNetwork):
    """The RF mesh of one area (see the module docstring for the physics)."""

    medium = Medium.RF_MESH

    def __init__(
        self,
        positions_m: FloatArray,
        params: MeshParams,
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
            k = math.ceil(self.n_meters / params.meters_per_ap)
            sites = place_sites(pos, k, rng)
        else:
            sites = check_positions(access_points_m, "access_points_m")
        self.routes = self._route(sites)
        if access_points_m is None and params.cover_clusters_of > 0:
            for _ in range(3):  # a new access point can leave a far tail beyond max_hops
                extra = self._sites_for_unrouted(rng)
                if extra.shape[0] == 0:
                    break
                sites = np.vstack([sites, extra])
                self.routes = self._route(sites)
        self.access_points_m = sites

    def _route(self, sites: FloatArray) -> Routes:
        p = self.params
        points = np.vstack([self.positions_m, sites])
        return Routes(points, sites.shape[0], p.radio_range_m, p.max_hops)

    def _sites_for_unrouted(self, rng: np.random.Generator) -> FloatArray:
        """Access points for the clusters of meters (connected over the radio range) that no
        route reaches: ``meters_per_ap`` per site, none for clusters under the threshold."""
        p = self.params
        lost = np.flatnonzero(self.routes.hop[: self.n_meters] < 0)
        if lost.size < p.cover_clusters_of:
            return np.zeros((0, 2))
        pts = self.positions_m[lost]
        pairs = cKDTree(pts).query_pairs(p.radio_range_m, output_type="ndarray")
        graph = coo_matrix(
            (np.ones(pairs.shape[0]), (pairs[:, 0], pairs[:, 1])), shape=(lost.size, lost.size)
        )
        n_parts, label = connected_components(graph, directed=False)
        size = np.bincount(label, minlength=n_parts)
        out = [
            place_sites(pts[label == c], math.ceil(size[c] / p.meters_per_ap), rng)
            for c in np.flatnonzero(size >= p.cover_clusters_of).tolist()
        ]
        return np.vstack(out) if out else np.zeros((0, 2))

    @property
    def access_point(self) -> IntArray:
        """Per meter, the access point its route ends at; -1 where it has no route."""
        return self.routes.root[: self.n_meters]

    @property
    def parent(self) -> IntArray:
        """Per meter, the next node (meter index, or n_meters + AP index); -1 for none."""
        return self.routes.parent[: self.n_meters]

    def transmit(
        self,
        meters: IntArray,
        send_time_s: FloatArray,
        rng: np.random.Generator,
        load_w: FloatArray | None = None,
    ) -> Delivery:
        """Send one frame per entry of ``meters`` at ``send_time_s`` (``load_w`` is unused:
        radio noise does not follow household load)."""
        idx, t, _ = self._frames(meters, send_time_s, load_w)
        p = self.params
        hops = self.hops[idx]
        routed = (hops > 0) & self.alive[idx]
        n_hops = np.where(routed, hops, 0)
        p_try = p.hop_delivery * jam_factor(self.jamming, t)
        hop_ok, attempts = hop_attempts(p_try, p.retries + 1, n_hops, rng)
        reached = routed & hop_ok
        # Every attempt costs airtime and a random backoff; every retry also an ACK timeout.
        backoff = rng.gamma(np.maximum(attempts, 1).astype(np.float64), 1.0) * p.hop_jitter_ms
        fan_ms = attempts * p.hop_latency_ms + (attempts - n_hops) * p.retry_delay_ms + backoff
        fan_s = fan_ms / 1000.0
        # Frames that reach the access point share its one channel, first come first served.
        ap = np.where(routed, self.access_point[idx], -1)
        sel = np.flatnonzero(reached)
        service = np.full(sel.size, p.frame_bytes * 8 / p.ap_bandwidth_bps)
        wait, _ = fifo_queue(ap[sel], t[sel] + fan_s[sel], service, math.inf)
        latency = np.full(idx.size, np.nan)
        latency[sel] = fan_s[sel] + wait
        return apply_backhaul(Delivery(reached, latency), ap, self.backhaul, rng)

    def cost_per_month_jpy(self) -> float:
        mb = monthly_mb(self.n_meters, self.params.frame_bytes)
        return monthly_cost_jpy(self.backhaul, self.n_access_points, mb)
