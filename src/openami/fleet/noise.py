"""Counter-based random numbers: the same (seed, stream, keys) always give the same draw.

A fleet of a million meters cannot keep a random-number generator per meter, and a meter's
load profile must be computable for any interval on demand (a head-end may ask for any range
of the last 45 days). So every random quantity is a pure function of its coordinates, such as
(meter, interval number), hashed with the SplitMix64 finaliser. NumPy's unsigned arithmetic
wraps modulo 2**64, which is exactly what the hash needs.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["hash_normal", "hash_uniform"]

U64 = npt.NDArray[np.uint64]
FloatArray = npt.NDArray[np.float64]
Keys = npt.ArrayLike

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def _mix(x: U64) -> U64:
    with np.errstate(over="ignore"):  # wrapping modulo 2**64 is the point
        return _mix_wrapping(x)


def _mix_wrapping(x: U64) -> U64:
    x = x + _GOLDEN
    x = (x ^ (x >> np.uint64(30))) * _M1
    x = (x ^ (x >> np.uint64(27))) * _M2
    return x ^ (x >> np.uint64(31))


def _hash(seed: int, stream: int, keys: tuple[Keys, ...]) -> U64:
    start = (seed & 0xFFFFFFFF) << 24 | (stream & 0xFFFFFF)
    h = _mix(np.asarray(np.uint64(start)))
    for key in keys:
        h = _mix(h ^ np.asarray(key).astype(np.uint64))
    return h


def hash_uniform(seed: int, stream: int, *keys: Keys) -> FloatArray:
    """Uniform draws in (0, 1), broadcast over ``keys`` (integer arrays)."""
    h = _hash(seed, stream, keys)
    return np.asarray(((h >> np.uint64(11)).astype(np.float64) + 0.5) * 2.0**-53)


def hash_normal(seed: int, stream: int, *keys: Keys) -> FloatArray:
    """Standard normal draws (Box-Muller over two hashed uniforms), broadcast over ``keys``."""
    u1 = hash_uniform(seed, stream, *keys)
    u2 = hash_uniform(seed, stream ^ 0x800000, *keys)
    return np.asarray(np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2))
