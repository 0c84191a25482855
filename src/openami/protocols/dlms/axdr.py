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
========================  ==========================================

Decoding raises only ``DecodeError``, on any input.
"""

from __future__ import annotations

import struct
from enum import IntEnum
from typing import Any, NamedTuple

from openami.errors import DecodeError, LocalProtocolError

__all__ = [
    "MAX_DEPTH",
    "BitString",
    "Data",
    "DataType",
    "decode_data",
    "decode_data_from",
    "decode_length",
    "encode_data",
    "encode_length",
]

MAX_DEPTH = 16  # nesting deeper than this is refused rather than recursed into


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
        raise LocalProtocolError(f"{kind.name} encoding is not supported yet")


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
    pos += 1
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
        raise DecodeError("compact-array is not supported yet")
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
