from __future__ import annotations

import re

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from openami.mdm.vee.flags import (
    CIM_CODES,
    ESTIMATED,
    FAILED,
    VALIDATED_CODE,
    Quality,
    cim_codes,
    describe,
    espi_quality,
    from_cim_codes,
)

SINGLE = [q for q in Quality if q is not Quality.NONE]


def test_every_flag_is_one_bit_with_a_cim_code() -> None:
    assert len({int(q) for q in SINGLE}) == len(SINGLE)
    assert all(bin(int(q)).count("1") == 1 for q in SINGLE)
    assert max(int(q) for q in SINGLE) < 2**32
    assert set(CIM_CODES) == set(SINGLE)
    pattern = re.compile(r"^[0-5]\.(0|1|2|3|4|5|6|7|8|10|11|12)\.\d+$")
    assert all(pattern.match(c) for codes in CIM_CODES.values() for c in codes)


def test_codes_of_typical_reads() -> None:
    assert cim_codes(0) == [VALIDATED_CODE]
    assert cim_codes(Quality.POWER_DOWN) == ["1.2.32", VALIDATED_CODE]
    assert cim_codes(Quality.MISSING | Quality.ESTIMATED_LINEAR | Quality.PRORATED) == [
        "3.5.259",
        "3.8.0",
        "3.8.1001",
        "3.8.1003",
    ]
    assert cim_codes(Quality.SPIKE | Quality.EDITED) == ["3.6.5", "3.7.0"]
    assert cim_codes(Quality.CLOCK_ERROR) == ["1.1.9"]


@given(st.lists(st.sampled_from(SINGLE), unique=True))
def test_codes_round_trip(flags: list[Quality]) -> None:
    mask = Quality.NONE
    for f in flags:
        mask |= f
    assert from_cim_codes(cim_codes(mask)) == mask


def test_unknown_code_is_refused() -> None:
    with pytest.raises(ValueError, match=r"9\.9\.9"):
        from_cim_codes(["9.9.9"])


def test_failed_and_estimated_groups() -> None:
    assert not FAILED & Quality.POWER_DOWN
    assert not FAILED & ESTIMATED
    assert not FAILED & Quality.EDITED


def test_green_button_quality() -> None:
    assert espi_quality(0) == 17
    assert espi_quality(Quality.SPIKE) == 10
    assert espi_quality(Quality.MISSING | Quality.ESTIMATED_LINEAR) == 9
    assert espi_quality(Quality.MISSING | Quality.ESTIMATED_PROFILE) == 8
    assert espi_quality(Quality.SPIKE | Quality.EDITED) == 7


def test_describe_decodes_each_distinct_mask_once() -> None:
    frame = pl.DataFrame({"flags": [0, int(Quality.SPIKE), 0]}, schema={"flags": pl.UInt32})
    out = describe(frame)
    assert out["quality"].to_list() == [["3.0.1"], ["3.6.5"], ["3.0.1"]]
