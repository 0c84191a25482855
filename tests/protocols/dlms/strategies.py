"""Hypothesis strategies for COSEM data."""

from __future__ import annotations

import struct

from hypothesis import strategies as st

from openami.errors import LocalProtocolError
from openami.protocols.dlms.axdr import (
    BitString,
    CompactArray,
    Data,
    DataType,
    TypeDescription,
    encode_data,
)

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


# One strategy per simple (non-container) type: the values a compact-array may describe.
_SIMPLE: dict[DataType, st.SearchStrategy[Data]] = {
    DataType.NULL: st.just(Data(DataType.NULL, None)),
    DataType.DONT_CARE: st.just(Data(DataType.DONT_CARE, None)),
    DataType.BOOLEAN: st.booleans().map(lambda b: Data(DataType.BOOLEAN, b)),
    **{t: _ints(t, lo, hi) for t, (lo, hi) in _INTS.items()},
    DataType.OCTET_STRING: st.binary(max_size=300).map(lambda b: Data(DataType.OCTET_STRING, b)),
    DataType.VISIBLE_STRING: st.text(
        alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=40
    ).map(lambda s: Data(DataType.VISIBLE_STRING, s)),
    DataType.UTF8_STRING: st.text(max_size=40).map(lambda s: Data(DataType.UTF8_STRING, s)),
    DataType.FLOAT32: st.floats(allow_nan=False, width=32).map(
        lambda f: Data(DataType.FLOAT32, _float32(f))
    ),
    DataType.FLOAT64: st.floats(allow_nan=False).map(lambda f: Data(DataType.FLOAT64, f)),
    DataType.DATE_TIME: st.binary(min_size=12, max_size=12).map(
        lambda b: Data(DataType.DATE_TIME, b)
    ),
    DataType.DATE: st.binary(min_size=5, max_size=5).map(lambda b: Data(DataType.DATE, b)),
    DataType.TIME: st.binary(min_size=4, max_size=4).map(lambda b: Data(DataType.TIME, b)),
    DataType.BIT_STRING: bit_strings().map(lambda b: Data(DataType.BIT_STRING, b)),
}

scalars = st.one_of(*_SIMPLE.values())


def _describes_something(desc: TypeDescription) -> bool:
    """Whether the encoder accepts ``desc`` (it refuses elements of zero octets, for one)."""
    try:
        encode_data(Data(DataType.COMPACT_ARRAY, CompactArray(desc, ())))
    except LocalProtocolError:
        return False
    return True


type_descriptions = st.recursive(
    st.sampled_from(list(_SIMPLE)).map(TypeDescription),
    lambda inner: st.one_of(
        st.builds(TypeDescription.array, st.integers(0, 4), inner),
        st.lists(inner, max_size=4).map(lambda fields: TypeDescription.structure(*fields)),
    ),
    max_leaves=6,
).filter(_describes_something)


def values_of(desc: TypeDescription) -> st.SearchStrategy[Data]:
    """Values of the type ``desc`` describes."""
    if desc.type is DataType.ARRAY:
        members = [values_of(desc.children[0])] * desc.count
    elif desc.type is DataType.STRUCTURE:
        members = [values_of(child) for child in desc.children]
    else:
        return _SIMPLE[desc.type]
    return st.tuples(*members).map(lambda xs: Data(desc.type, xs))


@st.composite
def compact_arrays(draw: st.DrawFn) -> Data:
    desc = draw(type_descriptions)
    elements = draw(st.lists(values_of(desc), max_size=5))
    return Data(DataType.COMPACT_ARRAY, CompactArray(desc, tuple(elements)))


data = st.recursive(
    st.one_of(scalars, compact_arrays()),
    lambda children: st.one_of(
        st.lists(children, max_size=6).map(lambda xs: Data(DataType.ARRAY, tuple(xs))),
        st.lists(children, max_size=6).map(lambda xs: Data(DataType.STRUCTURE, tuple(xs))),
    ),
    max_leaves=25,
)
