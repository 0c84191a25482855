"""Quality flags: one bit per finding, stored as a UInt32 per read, read out as CIM codes.

IEC 61968-9 (Annex D) names a reading's quality ``<system>.<category>.<index>``: the system
that raised it (1 end device, 2 data collection / head-end, 3 meter data management system),
the category (0 valid, 1 diagnostics, 2 power quality, 3 tamper / revenue protection, 4 data
collection, 5 reasonability, 6 validation, 7 edited, 8 estimated, 10 questionable, 11
derived, 12 projected) and an index within the category. A read can carry several codes.

Storing the strings per read would cost tens of bytes; a bitmask costs four bytes in memory
and next to nothing in Parquet (almost every read is 0, which dictionary/RLE encoding
collapses), and bit tests are cheap vectorised expressions. The table below is the only
place the bits meet the codes:

====================  ====  =============  ===============================================
flag                  bit   CIM code(s)    meaning
====================  ====  =============  ===============================================
MISSING               0     3.5.259        known missing read (no value for the interval)
SPIKE                 1     3.6.5          usage above its own history by a factor
REVERSE_FLOW          2     3.3.4          reverse rotation: export at a meter without PV
REGISTER_MISMATCH     3     3.6.1001 *     the day's intervals do not add up to the
                                           register's change
ZERO_USE              4     3.6.1          zero usage on an active (occupied) premise
CLOCK_ERROR           5     1.1.9          the meter flagged its clock invalid (AMR 0x02)
TIME_SHIFT            6     3.4.9          clock changed: stamped off the grid or ahead
                                           of its receipt
CONFLICT              7     3.5.258        suspect: one interval received twice with
                                           different values
OVER_CONTRACT         8     3.6.3          usage above the contract current's limit
SHORT_INTERVAL        9     3.4.2          partial interval: reads closer than configured
LONG_INTERVAL         10    3.4.3          long interval: one read spans several
POWER_DOWN            11    1.2.32         power fail during the interval (AMR 0x80);
                                           informational, not a failure
ESTIMATED_LINEAR      12    3.8.0 3.8.1001 estimated by linear interpolation
ESTIMATED_PROFILE     13    3.8.0 3.8.1002 estimated from the meter's own reference days
PRORATED              14    3.8.1003 *     estimates scaled to sum to the register change
EDITED                15    3.7.0          manually edited
====================  ====  =============  ===============================================

``*``: Annex D leaves indexes above 1000 to the system that raises them (vendors use them for
their own checks); openami's own indexes are marked with a star. A read with no failure bit
that went through VEE reports ``3.0.1`` (validated). Green Button (ESPI ``QualityOfReading``)
has one value per reading, so ``espi_quality`` picks the most telling one. Bits 16-31 are
free for a utility's own rules.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import IntFlag

import polars as pl

__all__ = [
    "CIM_CODES",
    "ESTIMATED",
    "FAILED",
    "FLAG_DTYPE",
    "VALIDATED_CODE",
    "Quality",
    "cim_codes",
    "describe",
    "espi_quality",
    "from_cim_codes",
    "has",
]

FLAG_DTYPE = pl.UInt32


class Quality(IntFlag):
    NONE = 0
    MISSING = 1 << 0
    SPIKE = 1 << 1
    REVERSE_FLOW = 1 << 2
    REGISTER_MISMATCH = 1 << 3
    ZERO_USE = 1 << 4
    CLOCK_ERROR = 1 << 5
    TIME_SHIFT = 1 << 6
    CONFLICT = 1 << 7
    OVER_CONTRACT = 1 << 8
    SHORT_INTERVAL = 1 << 9
    LONG_INTERVAL = 1 << 10
    POWER_DOWN = 1 << 11
    ESTIMATED_LINEAR = 1 << 12
    ESTIMATED_PROFILE = 1 << 13
    PRORATED = 1 << 14
    EDITED = 1 << 15


CIM_CODES: dict[Quality, tuple[str, ...]] = {
    Quality.MISSING: ("3.5.259",),
    Quality.SPIKE: ("3.6.5",),
    Quality.REVERSE_FLOW: ("3.3.4",),
    Quality.REGISTER_MISMATCH: ("3.6.1001",),
    Quality.ZERO_USE: ("3.6.1",),
    Quality.CLOCK_ERROR: ("1.1.9",),
    Quality.TIME_SHIFT: ("3.4.9",),
    Quality.CONFLICT: ("3.5.258",),
    Quality.OVER_CONTRACT: ("3.6.3",),
    Quality.SHORT_INTERVAL: ("3.4.2",),
    Quality.LONG_INTERVAL: ("3.4.3",),
    Quality.POWER_DOWN: ("1.2.32",),
    Quality.ESTIMATED_LINEAR: ("3.8.0", "3.8.1001"),
    Quality.ESTIMATED_PROFILE: ("3.8.0", "3.8.1002"),
    Quality.PRORATED: ("3.8.1003",),
    Quality.EDITED: ("3.7.0",),
}
VALIDATED_CODE = "3.0.1"

# Findings that make a value fail validation (POWER_DOWN is information, not a failure).
FAILED = (
    Quality.MISSING
    | Quality.SPIKE
    | Quality.REVERSE_FLOW
    | Quality.REGISTER_MISMATCH
    | Quality.ZERO_USE
    | Quality.CLOCK_ERROR
    | Quality.TIME_SHIFT
    | Quality.CONFLICT
    | Quality.OVER_CONTRACT
    | Quality.SHORT_INTERVAL
    | Quality.LONG_INTERVAL
)
ESTIMATED = Quality.ESTIMATED_LINEAR | Quality.ESTIMATED_PROFILE | Quality.PRORATED


def cim_codes(mask: int) -> list[str]:
    """The CIM ReadingQualityType codes of one flag mask, in bit order, without repeats."""
    codes: list[str] = []
    for flag, names in CIM_CODES.items():
        if mask & flag:
            codes.extend(c for c in names if c not in codes)
    if not mask & (FAILED | ESTIMATED | Quality.EDITED):
        codes.append(VALIDATED_CODE)
    return codes


def from_cim_codes(codes: Iterable[str]) -> Quality:
    """The flags for a list of CIM codes (a code shared by several flags, like 3.8.0, sets
    none on its own); unknown codes raise ``ValueError``."""
    wanted = set(codes) - {VALIDATED_CODE, "3.8.0"}
    mask = Quality.NONE
    for flag, names in CIM_CODES.items():
        specific = [c for c in names if c != "3.8.0"]
        if specific and all(c in wanted for c in specific):
            mask |= flag
    known = {c for names in CIM_CODES.values() for c in names}
    unknown = wanted - known
    if unknown:
        raise ValueError(f"unknown reading quality codes: {sorted(unknown)}")
    return mask


def espi_quality(mask: int) -> int:
    """Green Button ``QualityOfReading``: 7 manually edited, 8 estimated using reference day,
    9 estimated using linear interpolation, 10 questionable, 17 validated."""
    if mask & Quality.EDITED:
        return 7
    if mask & Quality.ESTIMATED_PROFILE:
        return 8
    if mask & Quality.ESTIMATED_LINEAR:
        return 9
    if mask & FAILED:
        return 10
    return 17


def has(column: str | pl.Expr, flags: int) -> pl.Expr:
    """Polars: whether any of ``flags`` is set in the flag column."""
    expr = pl.col(column) if isinstance(column, str) else column
    return (expr & pl.lit(int(flags), dtype=FLAG_DTYPE)) != 0


def describe(frame: pl.DataFrame, column: str = "flags") -> pl.DataFrame:
    """``frame`` with a ``quality`` column listing each row's CIM codes. Only the distinct
    masks are decoded (a day has a handful), then joined back."""
    masks = frame.select(pl.col(column).unique()).to_series().to_list()
    table = pl.DataFrame(
        {column: masks, "quality": [cim_codes(int(m)) for m in masks]},
        schema={column: frame.schema[column], "quality": pl.List(pl.String)},
    )
    return frame.join(table, on=column, how="left", maintain_order="left")
