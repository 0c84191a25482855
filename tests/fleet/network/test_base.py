"""The pieces every medium shares: the FIFO queue, jamming, positions, sites, batch checks."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from openami.errors import ConfigError
from openami.fleet.network import BackhaulKind, Jamming, Medium, build_area_network
from openami.fleet.network.base import (
    FloatArray,
    IntArray,
    check_positions,
    fifo_queue,
    jam_factor,
    place_sites,
)


def reference_queue(
    group: IntArray, arrival_s: FloatArray, service_s: FloatArray, max_wait_s: float
) -> tuple[FloatArray, np.ndarray[Any, np.dtype[np.bool_]]]:
    """A frame-by-frame FIFO with a finite buffer: a frame that finds more than ``max_wait_s``
    of work ahead is dropped and adds no work."""
    wait = np.zeros(arrival_s.size)
    admitted = np.zeros(arrival_s.size, dtype=np.bool_)
    for g in np.unique(group):
        members = np.flatnonzero(group == g)
        members = members[np.argsort(arrival_s[members], kind="stable")]
        work = 0.0
        last = arrival_s[members[0]]
        for i in members:
            work = max(work - (arrival_s[i] - last), 0.0)
            last = arrival_s[i]
            wait[i] = work
            if work <= max_wait_s * (1 + 1e-9) + 1e-9:
                admitted[i] = True
                work += service_s[i]
    return wait, admitted


frames = st.integers(1, 60).flatmap(
    lambda n: st.tuples(
        hnp.arrays(np.int64, n, elements=st.integers(0, 2)),
        hnp.arrays(np.float64, n, elements=st.floats(0.0, 20.0)),
        hnp.arrays(np.float64, n, elements=st.floats(0.01, 3.0)),
    )
)


@settings(max_examples=150, deadline=None)
@given(frames=frames, max_wait=st.one_of(st.just(math.inf), st.floats(0.0, 10.0)))
def test_fifo_queue_matches_a_frame_by_frame_queue(
    frames: tuple[IntArray, FloatArray, FloatArray], max_wait: float
) -> None:
    group, arrival, service = frames
    wait, admitted = fifo_queue(group, arrival, service, max_wait)
    ref_wait, ref_admitted = reference_queue(group, arrival, service, max_wait)
    assert np.array_equal(admitted, ref_admitted)
    assert np.allclose(wait[admitted], ref_wait[admitted], rtol=1e-9, atol=1e-9)


def test_an_overloaded_finite_buffer_serves_at_capacity_instead_of_collapsing() -> None:
    # one frame every 0.5 s, 1 s each, room for 3 s of work: the channel is busy from t = 0 to
    # the end, so it finishes about 50 frames plus the 3 waiting (it used to admit 7)
    t = np.arange(100, dtype=np.float64) * 0.5
    wait, admitted = fifo_queue(np.zeros(100, np.int64), t, np.ones(100), 3.0)
    assert int(admitted.sum()) == 53
    assert wait[admitted].max() <= 3.0


def test_simultaneous_frames_fill_the_buffer_exactly() -> None:
    n, limit = 50, 7
    wait, admitted = fifo_queue(np.zeros(n, np.int64), np.zeros(n), np.full(n, 0.1), limit * 0.1)
    assert int(admitted.sum()) == limit + 1  # one in service, `limit` waiting
    assert np.allclose(np.sort(wait[admitted]), 0.1 * np.arange(limit + 1))


def test_groups_do_not_share_a_channel() -> None:
    group = np.array([0, 1, 0, 1], dtype=np.int64)
    wait, admitted = fifo_queue(group, np.zeros(4), np.ones(4), math.inf)
    assert admitted.all()
    assert sorted(wait.tolist()) == [0.0, 0.0, 1.0, 1.0]


def test_jam_factor_applies_inside_the_window_only_and_overlaps_multiply() -> None:
    a = Jamming("A", 100.0, 200.0, 0.5)
    b = Jamming("A", 150.0, 250.0, 0.2)
    t = np.array([99.9, 100.0, 149.9, 150.0, 199.9, 200.0, 249.9, 250.0])
    expected = [1.0, 0.5, 0.5, 0.1, 0.1, 0.2, 0.2, 1.0]
    assert np.allclose(jam_factor([a, b], t), expected)


@pytest.mark.parametrize(
    ("kwargs", "names"),
    [
        ({"start_s": 10.0, "end_s": 10.0}, "Jamming.end_s"),
        ({"start_s": math.nan, "end_s": 10.0}, "Jamming.start_s"),
        ({"start_s": 0.0, "end_s": math.inf}, "Jamming.end_s"),
        ({"start_s": 0.0, "end_s": 1.0, "delivery_factor": 1.5}, "Jamming.delivery_factor"),
        ({"start_s": 0.0, "end_s": 1.0, "delivery_factor": math.nan}, "Jamming.delivery_factor"),
        ({"start_s": "0", "end_s": 1.0}, "Jamming.start_s"),
    ],
)
def test_bad_jamming_is_a_config_error(kwargs: dict[str, Any], names: str) -> None:
    with pytest.raises(ConfigError, match=names.replace(".", r"\.")) as info:
        Jamming("A", **kwargs)
    assert "\n" not in str(info.value)


shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=5)
any_floats = st.floats(allow_nan=True, allow_infinity=True, width=64)


@settings(max_examples=200, deadline=None)
@given(pos=hnp.arrays(np.float64, shapes, elements=any_floats))
def test_positions_are_an_n_by_2_finite_array_or_a_config_error(pos: FloatArray) -> None:
    valid = pos.ndim == 2 and pos.shape[1] == 2 and pos.shape[0] >= 1 and np.isfinite(pos).all()
    if valid:
        assert np.array_equal(check_positions(pos), pos)
    else:
        with pytest.raises(ConfigError, match="positions_m") as info:
            check_positions(pos)
        assert "\n" not in str(info.value)


@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(
        st.lists(st.one_of(st.floats(-1e3, 1e3), st.text(max_size=2), st.none()), max_size=3),
        max_size=4,
    )
)
def test_ragged_or_non_numeric_positions_are_a_config_error(rows: list[list[Any]]) -> None:
    ok = (
        len(rows) >= 1
        and all(len(r) == 2 for r in rows)
        and all(isinstance(v, float) for r in rows for v in r)
    )
    if ok:
        assert check_positions(rows).shape == (len(rows), 2)  # type: ignore[arg-type]
    else:
        with pytest.raises(ConfigError, match="positions_m"):
            check_positions(rows)  # type: ignore[arg-type]


def test_complex_positions_are_a_config_error_not_a_warning() -> None:
    with pytest.raises(ConfigError, match="positions_m"):
        check_positions(np.array([[1 + 2j, 3.0]]))


def test_sites_stand_on_meters_and_follow_density() -> None:
    rng = np.random.default_rng(4)
    town = rng.normal(0.0, 200.0, (900, 2))
    village = rng.normal(0.0, 200.0, (100, 2)) + np.array([5_000.0, 0.0])
    pos = np.vstack([town, village])
    sites = place_sites(pos, 10, np.random.default_rng(1))
    assert 1 <= sites.shape[0] <= 10
    # every site is one of the meters' positions (a pole or wall they already share)
    on_meter = (np.abs(sites[:, None, :] - pos[None, :, :]).sum(axis=2) == 0).any(axis=1)
    assert on_meter.all()
    # sites follow the meters: most stand in the town that holds 90 % of them, and the
    # village is not left without one
    in_town = sites[:, 0] < 2_500.0
    assert in_town.sum() > (~in_town).sum() >= 1


@pytest.mark.parametrize("medium", list(Medium))
def test_bad_transmit_arguments_are_config_errors_naming_them(medium: Medium) -> None:
    pos = np.random.default_rng(0).uniform(0, 300, (30, 2))
    net = build_area_network(medium, pos, BackhaulKind.OWN_FIBRE, None, 1, "A")
    rng = np.random.default_rng(0)
    one = np.array([0])
    cases: list[tuple[Any, Any, Any, str]] = [
        (np.array([30]), [0.0], None, "meters"),
        (np.array([-1]), [0.0], None, "meters"),
        (np.array([1.5]), [0.0], None, "meters"),
        ([[0, 1], [2]], [0.0], None, "meters"),
        (one, [0.0, 1.0], None, "send_time_s"),
        (one, [math.nan], None, "send_time_s"),
        (one, ["noon"], None, "send_time_s"),
        (one, [0.0], [1.0, 2.0], "load_w"),
        (one, [0.0], [math.inf], "load_w"),
    ]
    for meters, times, load, name in cases:
        with pytest.raises(ConfigError, match=name) as info:
            net.transmit(meters, times, rng, load)
        assert "\n" not in str(info.value)
    with pytest.raises(ConfigError, match="meters"):
        net.fail(np.array([30]))
    with pytest.raises(ConfigError, match="meters"):
        net.restore(np.array([-3]))


@pytest.mark.parametrize("medium", list(Medium))
def test_an_empty_batch_is_an_empty_delivery(medium: Medium) -> None:
    pos = np.random.default_rng(0).uniform(0, 300, (30, 2))
    net = build_area_network(medium, pos, BackhaulKind.LTE, None, 1, "A")
    d = net.transmit(np.zeros(0, np.int64), np.zeros(0), np.random.default_rng(0))
    assert d.delivered.shape == d.latency_s.shape == (0,)


@pytest.mark.parametrize("medium", list(Medium))
def test_latency_is_nan_exactly_where_a_frame_is_lost(medium: Medium) -> None:
    pos = np.random.default_rng(0).uniform(0, 3_000, (400, 2))
    net = build_area_network(medium, pos, BackhaulKind.LTE, None, 2, "A")
    net.fail(np.arange(0, 400, 7))
    net.add_jamming(Jamming("A", 1_000.0, 1_500.0, 0.3))
    meters = np.tile(np.arange(400), 5)
    t = np.random.default_rng(1).uniform(0, 3_000, meters.size)
    d = net.transmit(meters, t, np.random.default_rng(2))
    assert 0 < d.delivered.sum() < meters.size
    assert np.array_equal(np.isnan(d.latency_s), ~d.delivered)
    assert (d.latency_s[d.delivered] > 0).all()
