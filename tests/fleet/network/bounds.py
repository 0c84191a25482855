"""Acceptance bounds for the statistical tests, derived from the sample sizes.

Every check compares a measured count or mean with what the model's parameters predict and
accepts it inside a two-sided interval that a correct model leaves with probability ``ALPHA``.
The seeds are fixed, so a passing test stays passing; ``ALPHA`` only decides how far from the
prediction a wrong model must be for the test to notice it.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from scipy import stats  # type: ignore[import-untyped]

ALPHA = 1e-6
Z = float(stats.norm.isf(ALPHA / 2))  # about 4.9 standard errors


def binomial_bounds(n: int, p: float, alpha: float = ALPHA) -> tuple[int, int]:
    """Counts between which a Binomial(n, p) count falls with probability >= 1 - alpha."""
    lo = int(stats.binom.ppf(alpha / 2, n, p))
    hi = int(stats.binom.isf(alpha / 2, n, p))
    return lo, hi


def within_binomial(successes: int, n: int, p: float) -> bool:
    lo, hi = binomial_bounds(n, p)
    return lo <= successes <= hi


def assert_binomial(successes: int, n: int, p: float, what: str) -> None:
    """``successes`` out of ``n`` independent trials of probability ``p``."""
    lo, hi = binomial_bounds(n, p)
    assert lo <= successes <= hi, (
        f"{what}: {successes}/{n} = {successes / n:.5f}, expected p = {p:.5f} "
        f"(accepting {lo}..{hi})"
    )


def assert_poisson_binomial(successes: int, probs: npt.NDArray[np.float64], what: str) -> None:
    """``successes`` out of independent trials of unequal probabilities ``probs`` (normal
    approximation with the exact mean and variance, plus one for continuity)."""
    mean = float(probs.sum())
    sd = math.sqrt(float((probs * (1.0 - probs)).sum()))
    tol = Z * sd + 1.0
    assert abs(successes - mean) <= tol, (
        f"{what}: {successes} successes, expected {mean:.1f} +- {tol:.1f} ({probs.size} trials)"
    )


def assert_mean(
    sample: npt.NDArray[np.float64], expected: float, what: str, sd: float | None = None
) -> None:
    """The sample mean is ``expected`` within ``Z`` standard errors (of ``sd`` when the model
    gives it, else of the sample's own standard deviation)."""
    n = sample.size
    assert n > 1, f"{what}: no sample"
    spread = float(sample.std(ddof=1)) if sd is None else sd
    tol = Z * spread / math.sqrt(n) + 1e-12
    got = float(sample.mean())
    assert abs(got - expected) <= tol, (
        f"{what}: mean {got:.6g}, expected {expected:.6g} +- {tol:.3g} (n = {n})"
    )


def truncated_geometric_mean(p: float, tries: int) -> float:
    """Mean attempts of a hop that succeeds within ``tries`` attempts of probability ``p``."""
    q = 1.0 - p
    return sum(k * p * q ** (k - 1) for k in range(1, tries + 1)) / (1.0 - q**tries)


def hop_success(p: float, retries: int) -> float:
    """A hop gets through within ``retries + 1`` attempts."""
    return 1.0 - (1.0 - p) ** (retries + 1)
