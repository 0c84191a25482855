"""Hypothesis strategies for COSEM data."""

from __future__ import annotations

import struct

from hypothesis import strategies as st

from openami.protocols.dlms.axdr import BitString, Data, DataType

_INTS = {
    DataType.DOUBLE_LONG: (-(2**31), 2**31 - 1),
    DataType.DOUBLE_LONG_UNSIGNED: (0, 2**32 - 1),
    DataType.BCD: (0, 255),
    DataType.INTEGER: (-128, 127),
    DataType.LONG: (-(2**15), 2**15 - 1),
    DataType.UNSIGNED: (0, 255),
    DataType.LONG_UNSIGNED: (0, 2**16 - 1),
    DataType.LONG64: (-(2**63), 2**63 - 1),
    DataType.LONG64_UNSIGNED: (0, 2**64 - 1),
    DataType.ENUM: (0, 255),
}


def _float32(x: float) -> float:
    return float(struct.unpack(">f", struct.pack(">f", x))[0])


def _ints(kind: DataType, lo: int, hi: int) -> st.SearchStrategy[Data]:
    return st.integers(lo, hi).map(lambda v: Data(kind, v))


@st.composite
def bit_strings(draw: st.DrawFn) -> BitString:
    length = draw(st.integers(0, 80))
    raw = draw(st.binary(min_size=(length + 7) // 8, max_size=(length + 7) // 8))
    return BitString(length, raw)


scalars = st.one_of(
    st.just(Data(DataType.NULL, None)),
    st.just(Data(DataType.DONT_CARE, None)),
    st.booleans().map(lambda b: Data(DataType.BOOLEAN, b)),
    *[_ints(t, lo, hi) for t, (lo, hi) in _INTS.items()],
    st.binary(max_size=300).map(lambda b: Data(DataType.OCTET_STRING, b)),
    st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=40).map(
        lambda s: Data(DataType.VISIBLE_STRING, s)
    ),
    st.text(max_size=40).map(lambda s: Data(DataType.UTF8_STRING, s)),
    st.floats(allow_nan=False, width=32).map(lambda f: Data(DataType.FLOAT32, _float32(f))),
    st.floats(allow_nan=False).map(lambda f: Data(DataType.FLOAT64, f)),
    st.binary(min_size=12, max_size=12).map(lambda b: Data(DataType.DATE_TIME, b)),
    st.binary(min_size=5, max_size=5).map(lambda b: Data(DataType.DATE, b)),
    st.binary(min_size=4, max_size=4).map(lambda b: Data(DataType.TIME, b)),
    bit_strings().map(lambda b: Data(DataType.BIT_STRING, b)),
)

data = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=6).map(lambda xs: Data(DataType.ARRAY, tuple(xs))),
        st.lists(children, max_size=6).map(lambda xs: Data(DataType.STRUCTURE, tuple(xs))),
    ),
    max_leaves=25,
)
