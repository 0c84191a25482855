"""A-XDR encoding of COSEM ``Data`` (IEC 62056-6-2 / DLMS Green Book).

A value is a ``Data(type, value)`` pair so that encoding is explicit and
``decode_data(encode_data(x)) == x`` for every valid ``x``. Python values per type:

========================  ==========================================
null, dont-care           ``None``
array, structure          ``tuple[Data, ...]``
boolean                   ``bool``
bit-string                ``BitString(length, bits)``
integer types, enum, bcd  ``int``
octet-string              ``bytes``
visible-string            ``str`` (ASCII)
utf8-string               ``str``
float32, float64          ``float``
date-time, date, time     ``bytes`` of 12, 5 and 4 octets (see ``cosem_datetime``)
compact-array             ``CompactArray(description, elements)``
========================  ==========================================

A compact-array (tag 19) is a contents-description (a ``TypeDescription``) followed by an
octet string holding every element's value *without* its type tag: the description says how
to read them. Each decoded element is an ordinary ``Data`` of the described type, so
``CompactArray(d, elements)`` round-trips like any other value.

Decoding raises only ``DecodeError``, on any input.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum
from itertools import repeat
from typing import Any, NamedTuple

from openami.errors import DecodeError, LocalProtocolError, ProtocolError

__all__ = [
    "MAX_DEPTH",
    "BitString",
    "CompactArray",
    "Data",
    "DataType",
    "TypeDescription",
    "decode_data",
    "decode_data_from",
    "decode_length",
    "encode_data",
    "encode_length",
]

MAX_DEPTH = 16  # nesting deeper than this is refused rather than recursed into
# A compact-array element may decode into at most this many values per octet of its smallest
# encoding, so that a short input cannot expand into millions of null-data values.
_MAX_VALUES_PER_OCTET = 32


class DataType(IntEnum):
    NULL = 0
    ARRAY = 1
    STRUCTURE = 2
    BOOLEAN = 3
    BIT_STRING = 4
    DOUBLE_LONG = 5
    DOUBLE_LONG_UNSIGNED = 6
    OCTET_STRING = 9
    VISIBLE_STRING = 10
    UTF8_STRING = 12
    BCD = 13
    INTEGER = 15
    LONG = 16
    UNSIGNED = 17
    LONG_UNSIGNED = 18
    COMPACT_ARRAY = 19
    LONG64 = 20
    LONG64_UNSIGNED = 21
    ENUM = 22
    FLOAT32 = 23
    FLOAT64 = 24
    DATE_TIME = 25
    DATE = 26
    TIME = 27
    DONT_CARE = 255


class BitString(NamedTuple):
    length: int  # number of bits
    bits: bytes  # ceil(length / 8) octets, first bit in the most significant position


class Data(NamedTuple):
    type: DataType
    value: Any


@dataclass(frozen=True, slots=True)
class TypeDescription:
    """The type of every element of a compact-array (its contents-description).

    A simple type is its tag alone: ``TypeDescription(DataType.LONG_UNSIGNED)``. An array has
    ``count`` elements of type ``children[0]``; a structure has one field per entry of
    ``children`` and a ``count`` of 0. ``array`` and ``structure`` build them.
    """

    type: DataType
    count: int = 0
    children: tuple[TypeDescription, ...] = ()

    @classmethod
    def array(cls, count: int, element: TypeDescription) -> TypeDescription:
        return cls(DataType.ARRAY, count, (element,))

    @classmethod
    def structure(cls, *fields: TypeDescription) -> TypeDescription:
        return cls(DataType.STRUCTURE, 0, fields)


class CompactArray(NamedTuple):
    description: TypeDescription
    elements: tuple[Data, ...]  # each of the type ``description`` describes


# Fixed-size scalar types: type -> struct format (big-endian).
_FIXED: dict[DataType, struct.Struct] = {
    DataType.DOUBLE_LONG: struct.Struct(">i"),
    DataType.DOUBLE_LONG_UNSIGNED: struct.Struct(">I"),
    DataType.BCD: struct.Struct(">B"),
    DataType.INTEGER: struct.Struct(">b"),
    DataType.LONG: struct.Struct(">h"),
    DataType.UNSIGNED: struct.Struct(">B"),
    DataType.LONG_UNSIGNED: struct.Struct(">H"),
    DataType.LONG64: struct.Struct(">q"),
    DataType.LONG64_UNSIGNED: struct.Struct(">Q"),
    DataType.ENUM: struct.Struct(">B"),
    DataType.FLOAT32: struct.Struct(">f"),
    DataType.FLOAT64: struct.Struct(">d"),
}
# Fixed-length octet strings.
_OCTETS: dict[DataType, int] = {DataType.DATE_TIME: 12, DataType.DATE: 5, DataType.TIME: 4}
_INT_RANGE: dict[DataType, tuple[int, int]] = {
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
_TYPES = {t.value: t for t in DataType}


def encode_length(n: int) -> bytes:
    """A-XDR length: one octet below 128, else 0x8k followed by k big-endian octets."""
    if n < 0:
        raise LocalProtocolError(f"negative length {n}")
    if n < 0x80:
        return bytes((n,))
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    if len(body) > 4:
        raise LocalProtocolError(f"length {n} does not fit in four octets")
    return bytes((0x80 | len(body),)) + body


def decode_length(buf: bytes | memoryview, pos: int) -> tuple[int, int]:
    """Decode an A-XDR length at ``pos``; return (length, position after it)."""
    if pos >= len(buf):
        raise DecodeError("truncated: length expected")
    first = buf[pos]
    if first < 0x80:
        return first, pos + 1
    k = first & 0x7F
    if not 1 <= k <= 4:
        raise DecodeError(f"length prefix 0x{first:02x} not supported")
    end = pos + 1 + k
    if end > len(buf):
        raise DecodeError("truncated: multi-octet length")
    return int.from_bytes(buf[pos + 1 : end], "big"), end


def encode_data(item: Data) -> bytes:
    """Encode one ``Data`` with its type tag."""
    out = bytearray()
    _encode_into(item, out, 0)
    return bytes(out)


def _encode_into(item: Data, out: bytearray, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise LocalProtocolError(f"data nested deeper than {MAX_DEPTH}")
    kind, value = item
    try:
        kind = DataType(kind)
    except ValueError:
        raise LocalProtocolError(f"unknown data type {kind!r}") from None
    out.append(kind)
    _encode_body(kind, value, out, depth)


def _encode_body(kind: DataType, value: Any, out: bytearray, depth: int) -> None:
    """Encode ``value`` of type ``kind`` without its type tag."""
    if kind in (DataType.NULL, DataType.DONT_CARE):
        return
    if kind in (DataType.ARRAY, DataType.STRUCTURE):
        out += encode_length(len(value))
        for element in value:
            _encode_into(element, out, depth + 1)
    elif kind is DataType.BOOLEAN:
        out.append(0xFF if value else 0x00)
    elif kind in _FIXED:
        lo_hi = _INT_RANGE.get(kind)
        if lo_hi is not None and not (isinstance(value, int) and lo_hi[0] <= value <= lo_hi[1]):
            raise LocalProtocolError(f"{kind.name} value {value!r} out of range {lo_hi}")
        out += _FIXED[kind].pack(value)
    elif kind in _OCTETS:
        if len(value) != _OCTETS[kind]:
            raise LocalProtocolError(f"{kind.name} needs {_OCTETS[kind]} octets, got {len(value)}")
        out += value
    elif kind is DataType.OCTET_STRING:
        out += encode_length(len(value))
        out += value
    elif kind in (DataType.VISIBLE_STRING, DataType.UTF8_STRING):
        raw = value.encode("ascii" if kind is DataType.VISIBLE_STRING else "utf-8")
        out += encode_length(len(raw))
        out += raw
    elif kind is DataType.BIT_STRING:
        if len(value.bits) != (value.length + 7) // 8:
            raise LocalProtocolError("bit-string octets do not match its length")
        out += encode_length(value.length)
        out += value.bits
    else:  # COMPACT_ARRAY
        _encode_compact(value, out, depth)


def decode_data(buf: bytes | memoryview) -> Data:
    """Decode exactly one ``Data`` filling the whole buffer."""
    item, pos = decode_data_from(buf, 0)
    if pos != len(buf):
        raise DecodeError(f"{len(buf) - pos} trailing octets after data")
    return item


def decode_data_from(buf: bytes | memoryview, pos: int, depth: int = 0) -> tuple[Data, int]:
    """Decode one ``Data`` at ``pos``; return it and the position after it."""
    if depth > MAX_DEPTH:
        raise DecodeError(f"data nested deeper than {MAX_DEPTH}")
    if pos >= len(buf):
        raise DecodeError("truncated: data type tag expected")
    kind = _TYPES.get(buf[pos])
    if kind is None:
        raise DecodeError(f"unknown data type tag {buf[pos]} at offset {pos}")
    return _decode_body(kind, buf, pos + 1, depth)


def _decode_body(kind: DataType, buf: bytes | memoryview, pos: int, depth: int) -> tuple[Data, int]:
    """Decode a value of type ``kind`` (its tag already read) at ``pos``."""
    if kind is DataType.NULL or kind is DataType.DONT_CARE:
        return Data(kind, None), pos
    if kind is DataType.ARRAY or kind is DataType.STRUCTURE:
        count, pos = decode_length(buf, pos)
        if count > len(buf) - pos:  # every element takes at least one octet
            raise DecodeError(f"{kind.name.lower()} of {count} elements exceeds the input")
        elements = []
        for _ in range(count):
            element, pos = decode_data_from(buf, pos, depth + 1)
            elements.append(element)
        return Data(kind, tuple(elements)), pos
    fixed = _FIXED.get(kind)
    if fixed is not None:
        end = pos + fixed.size
        if end > len(buf):
            raise DecodeError(f"truncated: {kind.name} needs {fixed.size} octets")
        return Data(kind, fixed.unpack_from(buf, pos)[0]), end
    if kind is DataType.BOOLEAN:
        if pos >= len(buf):
            raise DecodeError("truncated: boolean")
        return Data(kind, buf[pos] != 0), pos + 1
    size = _OCTETS.get(kind)
    if size is not None:
        end = pos + size
        if end > len(buf):
            raise DecodeError(f"truncated: {kind.name} needs {size} octets")
        return Data(kind, bytes(buf[pos:end])), end
    if kind is DataType.COMPACT_ARRAY:
        compact, end = _decode_compact(buf, pos, depth)
        return Data(kind, compact), end
    length, pos = decode_length(buf, pos)
    nbytes = (length + 7) // 8 if kind is DataType.BIT_STRING else length
    end = pos + nbytes
    if end > len(buf):
        raise DecodeError(f"truncated: {kind.name} of {nbytes} octets")
    raw = bytes(buf[pos:end])
    if kind is DataType.OCTET_STRING:
        return Data(kind, raw), end
    if kind is DataType.BIT_STRING:
        return Data(kind, BitString(length, raw)), end
    try:
        text = raw.decode("ascii" if kind is DataType.VISIBLE_STRING else "utf-8")
    except UnicodeDecodeError as exc:
        raise DecodeError(f"{kind.name} is not valid text: {exc.reason}") from None
    return Data(kind, text), end


# --- compact-array ---------------------------------------------------------------------------


def _fields(desc: TypeDescription) -> Iterable[TypeDescription]:
    """The types of an array's or structure's members, in order."""
    return repeat(desc.children[0], desc.count) if desc.type == DataType.ARRAY else desc.children


def _shape(desc: TypeDescription) -> tuple[int, bool, int]:
    """(smallest encoding of one element, whether all have that size, values in one element)."""
    if desc.type == DataType.ARRAY:
        size, fixed, values = _shape(desc.children[0])
        return desc.count * size, fixed, 1 + desc.count * values
    if desc.type == DataType.STRUCTURE:
        shapes = [_shape(child) for child in desc.children]
        return sum(s[0] for s in shapes), all(s[1] for s in shapes), 1 + sum(s[2] for s in shapes)
    if desc.type in (DataType.NULL, DataType.DONT_CARE):
        return 0, True, 1
    scalar = _FIXED.get(desc.type)
    width = scalar.size if scalar is not None else _OCTETS.get(desc.type)
    if width is not None:
        return width, True, 1
    if desc.type == DataType.BOOLEAN:
        return 1, True, 1
    return 1, False, 1  # a length-prefixed string: at least its length octet


def _element_shape(desc: TypeDescription, error: type[ProtocolError]) -> tuple[int, bool]:
    """Size and fixedness of one element; refuse descriptions no contents can measure."""
    size, fixed, values = _shape(desc)
    if size == 0:
        raise error("compact-array elements of zero octets cannot be counted")
    if values > _MAX_VALUES_PER_OCTET * size:
        raise error(f"compact-array element of {values} values in {size} octets")
    return size, fixed


def _encode_description(desc: TypeDescription, out: bytearray, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise LocalProtocolError(f"type description nested deeper than {MAX_DEPTH}")
    kind = _TYPES.get(desc.type)
    if kind is None or kind is DataType.COMPACT_ARRAY:
        raise LocalProtocolError(f"no type description for data type {desc.type!r}")
    out.append(kind)
    if kind is DataType.ARRAY:
        if not 0 <= desc.count <= 0xFFFF or len(desc.children) != 1:
            raise LocalProtocolError("an array description needs 0..65535 elements of one type")
        out += desc.count.to_bytes(2, "big")
    elif kind is DataType.STRUCTURE:
        if desc.count != 0:
            raise LocalProtocolError("a structure description has fields, not a count")
        out += encode_length(len(desc.children))
    elif desc.count != 0 or desc.children:
        raise LocalProtocolError(f"{kind.name} description has no count or children")
    for child in desc.children:
        _encode_description(child, out, depth + 1)


def _encode_compact(value: CompactArray, out: bytearray, depth: int) -> None:
    desc, elements = value
    _encode_description(desc, out, depth + 1)
    _element_shape(desc, LocalProtocolError)
    contents = bytearray()
    for element in elements:
        _encode_element(element, desc, contents, depth + 1)
    out += encode_length(len(contents))
    out += contents


def _encode_element(item: Data, desc: TypeDescription, out: bytearray, depth: int) -> None:
    if item.type != desc.type:
        raise LocalProtocolError(f"compact-array value of type {item.type!r}, described as {desc}")
    kind, value = _TYPES[desc.type], item.value  # the description is already checked
    if kind is not DataType.ARRAY and kind is not DataType.STRUCTURE:
        _encode_body(kind, value, out, depth)
        return
    expected = desc.count if kind is DataType.ARRAY else len(desc.children)
    if len(value) != expected:
        raise LocalProtocolError(f"compact-array {kind.name} of {len(value)}, not {expected}")
    for member, member_desc in zip(value, _fields(desc), strict=True):
        _encode_element(member, member_desc, out, depth + 1)


def _decode_description(
    buf: bytes | memoryview, pos: int, depth: int
) -> tuple[TypeDescription, int]:
    if depth > MAX_DEPTH:
        raise DecodeError(f"type description nested deeper than {MAX_DEPTH}")
    if pos >= len(buf):
        raise DecodeError("truncated: type description expected")
    kind = _TYPES.get(buf[pos])
    if kind is None or kind is DataType.COMPACT_ARRAY:
        raise DecodeError(f"type description tag {buf[pos]} at offset {pos} is not allowed")
    pos += 1
    if kind is DataType.ARRAY:
        if pos + 2 > len(buf):
            raise DecodeError("truncated: array description needs its number of elements")
        count = int.from_bytes(buf[pos : pos + 2], "big")
        element, pos = _decode_description(buf, pos + 2, depth + 1)
        return TypeDescription(kind, count, (element,)), pos
    if kind is DataType.STRUCTURE:
        count, pos = decode_length(buf, pos)
        if count > len(buf) - pos:  # every field takes at least one octet
            raise DecodeError(f"structure description of {count} fields exceeds the input")
        fields = []
        for _ in range(count):
            field, pos = _decode_description(buf, pos, depth + 1)
            fields.append(field)
        return TypeDescription(kind, 0, tuple(fields)), pos
    return TypeDescription(kind), pos


def _decode_compact(buf: bytes | memoryview, pos: int, depth: int) -> tuple[CompactArray, int]:
    desc, pos = _decode_description(buf, pos, depth + 1)
    size, fixed = _element_shape(desc, DecodeError)
    length, pos = decode_length(buf, pos)
    end = pos + length
    if end > len(buf):
        raise DecodeError(f"truncated: compact-array contents of {length} octets")
    if fixed and length % size:
        raise DecodeError(f"compact-array contents of {length} octets are not whole {size}s")
    contents = bytes(buf[pos:end])  # elements cannot run past the contents
    elements = []
    at = 0
    while at < length:
        if length - at < size:  # before its values: at most 32 per octet that is really there
            raise DecodeError(f"truncated: compact-array element needs {size} octets")
        element, at = _decode_element(contents, at, desc)
        elements.append(element)
    return CompactArray(desc, tuple(elements)), end


def _decode_element(buf: bytes, pos: int, desc: TypeDescription) -> tuple[Data, int]:
    if desc.type is not DataType.ARRAY and desc.type is not DataType.STRUCTURE:
        return _decode_body(desc.type, buf, pos, 0)
    members = []
    for member_desc in _fields(desc):
        member, pos = _decode_element(buf, pos, member_desc)
        members.append(member)
    return Data(desc.type, tuple(members)), pos
