"""Counter-based random numbers: a pure function of (seed, stream, keys).

The statistical tests use fixed seeds and keys, so each one has a fixed outcome; the
thresholds say how unlikely a failure would be for a correct generator (p < 1e-4, or
several standard errors), so they pass for good numbers and fail for biased ones.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy import stats  # type: ignore[import-untyped]

from openami.fleet.noise import hash_normal, hash_uniform

N = 200_000
KEYS = np.arange(N, dtype=np.int64)
P_MIN = 1e-4  # a correct generator fails a test at this level once in 10,000 seeds
SE = 1.0 / np.sqrt(N)  # standard error of a mean or a correlation of N standard draws

seeds = st.integers(min_value=0, max_value=2**32 - 1)
streams = st.integers(min_value=0, max_value=0x7FFFFF)
key_arrays = hnp.arrays(
    np.int64, hnp.array_shapes(max_dims=2, max_side=8), elements=st.integers(-(2**62), 2**62)
)


def _corr(a: npt.NDArray[np.float64], b: npt.NDArray[np.float64]) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def test_uniform_draws_are_strictly_inside_the_unit_interval_and_uniform() -> None:
    u = hash_uniform(7, 1, KEYS)
    assert u.dtype == np.float64
    assert u.shape == (N,)
    assert u.min() > 0.0 and u.max() < 1.0
    assert stats.kstest(u, "uniform").pvalue > P_MIN
    # and the low bits too: 100 equal bins, chi-square
    counts = np.bincount((u * 100).astype(np.int64), minlength=100)
    assert stats.chisquare(counts).pvalue > P_MIN


def test_uniform_draws_are_uniform_along_every_key_of_a_grid() -> None:
    meters = np.arange(500, dtype=np.int64)[:, None]
    numbers = 990_000 + np.arange(400, dtype=np.int64)[None, :]
    u = hash_uniform(3, 5, meters, numbers)
    assert u.shape == (500, 400)
    assert stats.kstest(u.ravel(), "uniform").pvalue > P_MIN
    # no meter and no interval is systematically high or low: row and column means of
    # uniforms have standard deviation sqrt(1/12/len); allow 5 standard deviations
    assert np.abs(u.mean(axis=1) - 0.5).max() < 5 * np.sqrt(1 / 12 / 400)
    assert np.abs(u.mean(axis=0) - 0.5).max() < 5 * np.sqrt(1 / 12 / 500)


def test_normal_draws_are_standard_normal() -> None:
    z = hash_normal(11, 2, KEYS)
    assert np.isfinite(z).all()
    assert stats.kstest(z, "norm").pvalue > P_MIN
    assert abs(z.mean()) < 5 * SE
    assert abs(z.std() - 1.0) < 5 * SE  # sd of the sample sd of N normals is 1/sqrt(2N)
    assert abs(stats.skew(z)) < 5 * np.sqrt(6 / N)
    assert abs(stats.kurtosis(z)) < 5 * np.sqrt(24 / N)
    # tails: Box-Muller must reach beyond 4 sigma about N * 6.3e-5 = 13 times
    assert 3 <= int((np.abs(z) > 4).sum()) <= 30


def test_streams_seeds_and_neighbouring_keys_are_uncorrelated() -> None:
    a = hash_normal(1, 1, KEYS)
    others = {
        "another stream": hash_normal(1, 2, KEYS),
        "another seed": hash_normal(2, 1, KEYS),
        "the next key": hash_normal(1, 1, KEYS + 1),
        "the uniform pair of Box-Muller": hash_uniform(1, 1 ^ 0x800000, KEYS),
    }
    for what, b in others.items():
        assert abs(_corr(a, b)) < 5 * SE, what
    # two keys are not one key: (m, n) and (n, m) differ, and so do (m, n) and (m + n,)
    m = np.arange(1000, dtype=np.int64)[:, None]
    n = np.arange(1000, dtype=np.int64)[None, :]
    grid = hash_uniform(4, 1, m, n)
    assert abs(_corr(grid, grid.T)) < 5 / 1000
    assert abs(_corr(grid, hash_uniform(4, 1, m + n))) < 5 / 1000


def test_the_same_coordinates_give_the_same_draws() -> None:
    a = hash_uniform(123, 4, KEYS, 17)
    b = hash_uniform(123, 4, KEYS.copy(), np.int64(17))
    assert np.array_equal(a, b)
    assert not np.array_equal(a, hash_uniform(124, 4, KEYS, 17))
    assert not np.array_equal(a, hash_uniform(123, 5, KEYS, 17))
    assert not np.array_equal(a, hash_uniform(123, 4, KEYS, 18))


def test_the_algorithm_is_pinned() -> None:
    # Reads already stored by an MDMS are recomputed when a head-end collects a range again;
    # if the hash changed between releases the two would disagree. These are SplitMix64
    # values: change them only together with a deliberate change of the algorithm.
    assert float(hash_uniform(1, 1, 0)) == 0.29166167639826596
    assert float(hash_uniform(27, 3, 1_000_000, 987_654)) == 0.8292844753194404
    # uniforms are exact integer arithmetic; normals go through libm's log and cos, which may
    # differ in the last bit between platforms
    assert float(hash_normal(27, 3, 1_000_000, 987_654)) == pytest.approx(0.3526612112184669)


@settings(max_examples=60, deadline=None)
@given(seed=seeds, stream=streams, a=key_arrays, b=st.integers(-(2**62), 2**62))
def test_draws_broadcast_like_numpy_and_each_cell_is_its_own_draw(
    seed: int, stream: int, a: npt.NDArray[np.int64], b: int
) -> None:
    col = np.arange(3, dtype=np.int64)
    u = hash_uniform(seed, stream, a[..., None], col)
    z = hash_normal(seed, stream, a[..., None], col)
    assert u.shape == z.shape == (*a.shape, 3)
    assert ((u > 0) & (u < 1)).all()
    assert np.isfinite(z).all()
    # a cell does not depend on the rest of the block: computed alone it is the same
    for index in np.ndindex(a.shape):
        for j in range(3):
            assert u[(*index, j)] == hash_uniform(seed, stream, a[index], j)
            assert z[(*index, j)] == hash_normal(seed, stream, a[index], j)
    # a scalar key broadcasts against an array key
    assert hash_uniform(seed, stream, a, b).shape == a.shape
