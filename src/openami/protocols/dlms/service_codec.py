"""Encoding and decoding of the xDLMS service APDUs defined in ``services``.

``ENCODERS`` (type -> function) and ``decode_service`` (by first octet) are the tables
``apdu.py`` dispatches through. Decoding raises only ``DecodeError``.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from enum import IntEnum
from typing import Any

from openami.errors import DecodeError, LocalProtocolError
from openami.protocols.dlms.axdr import (
    Data,
    decode_data_from,
    decode_length,
    encode_data,
    encode_length,
)
from openami.protocols.dlms.services import (
    CIPHERED_TAGS,
    ActionRequestNextPBlock,
    ActionRequestNormal,
    ActionRequestWithFirstPBlock,
    ActionRequestWithList,
    ActionRequestWithPBlock,
    ActionResponseNextPBlock,
    ActionResponseNormal,
    ActionResponseWithList,
    ActionResponseWithPBlock,
    ActionResult,
    AttributeDescriptor,
    CipheredService,
    DataAccessResult,
    ExceptionResponse,
    GetRequestNext,
    GetRequestNormal,
    GetRequestWithList,
    GetResponseNormal,
    GetResponseWithDataBlock,
    GetResponseWithList,
    MethodDescriptor,
    Selection,
    ServiceTag,
    SetRequestNormal,
    SetRequestWithDataBlock,
    SetRequestWithFirstDataBlock,
    SetRequestWithList,
    SetResponseDataBlock,
    SetResponseLastDataBlock,
    SetResponseNormal,
    SetResponseWithList,
)

__all__ = ["ENCODERS", "SERVICE_TAGS", "decode_service"]

# --- codec helpers -----------------------------------------------------------------------

_DESC = struct.Struct(">H6sb")
_U32 = struct.Struct(">I")


class _Reader:
    """A cursor over one APDU that raises DecodeError instead of running off the end."""

    def __init__(self, buf: bytes, pos: int) -> None:
        self.buf = buf
        self.pos = pos

    def take(self, n: int, what: str) -> bytes:
        if self.pos + n > len(self.buf):
            raise DecodeError(f"truncated: {what}")
        out = self.buf[self.pos : self.pos + n]
        self.pos += n
        return out

    def u8(self, what: str) -> int:
        return self.take(1, what)[0]

    def u32(self, what: str) -> int:
        return int(_U32.unpack(self.take(4, what))[0])

    def boolean(self, what: str) -> bool:
        return self.u8(what) != 0

    def flag(self, what: str) -> bool:
        value = self.u8(what)
        if value > 1:
            raise DecodeError(f"{what} presence flag {value} is not 0 or 1")
        return value == 1

    def descriptor(self) -> tuple[int, bytes, int]:
        raw = self.take(_DESC.size, "descriptor")
        class_id, instance, member = _DESC.unpack(raw)
        return int(class_id), bytes(instance), int(member)

    def data(self) -> Data:
        item, self.pos = decode_data_from(self.buf, self.pos)
        return item

    def octets(self, what: str) -> bytes:
        length, self.pos = decode_length(self.buf, self.pos)
        return bytes(self.take(length, what))

    def count(self, what: str) -> int:
        n, self.pos = decode_length(self.buf, self.pos)
        if n > len(self.buf) - self.pos:
            raise DecodeError(f"{what} of {n} items exceeds the input")
        return n

    def selection(self) -> Selection | None:
        if not self.flag("access-selection"):
            return None
        selector = self.u8("access selector")
        return Selection(selector, self.data())

    def enum(self, kind: type[IntEnum], what: str) -> Any:
        value = self.u8(what)
        try:
            return kind(value)
        except ValueError:
            raise DecodeError(f"unknown {what} {value}") from None


def _desc(class_id: int, instance: bytes, member: int) -> bytes:
    if len(instance) != 6:
        raise LocalProtocolError("instance-id must be 6 octets")
    try:
        return _DESC.pack(class_id, instance, member)
    except struct.error as exc:
        raise LocalProtocolError(f"descriptor out of range: {exc}") from None


def _sel(selection: Selection | None) -> bytes:
    if selection is None:
        return b"\x00"
    return bytes((0x01, selection.selector)) + encode_data(selection.parameters)


def _block(last: bool, number: int, raw: bytes) -> bytes:
    return bytes((0xFF if last else 0x00,)) + _U32.pack(number) + encode_length(len(raw)) + raw


def _head(tag: int, choice: int, invoke_id: int) -> bytes:
    return bytes((tag, choice, invoke_id))


def _get_data_result(result: Data | DataAccessResult) -> bytes:
    if isinstance(result, DataAccessResult):
        return bytes((0x01, result))
    return b"\x00" + encode_data(result)


def _read_get_data_result(r: _Reader) -> Data | DataAccessResult:
    choice = r.u8("get-data-result")
    if choice == 0:
        return r.data()
    if choice == 1:
        result: DataAccessResult = r.enum(DataAccessResult, "data-access-result")
        return result
    raise DecodeError(f"get-data-result choice {choice} is not 0 or 1")


def _optional_return(value: Data | DataAccessResult | None) -> bytes:
    return b"\x00" if value is None else b"\x01" + _get_data_result(value)


def _read_optional_return(r: _Reader) -> Data | DataAccessResult | None:
    return _read_get_data_result(r) if r.flag("return-parameters") else None


# --- encoders ----------------------------------------------------------------------------

G, S, A = ServiceTag.GET_REQUEST, ServiceTag.SET_REQUEST, ServiceTag.ACTION_REQUEST
GR, SR, AR = ServiceTag.GET_RESPONSE, ServiceTag.SET_RESPONSE, ServiceTag.ACTION_RESPONSE


def _items(items: tuple[tuple[AttributeDescriptor, Selection | None], ...]) -> bytes:
    return encode_length(len(items)) + b"".join(
        _desc(d.class_id, d.instance_id, d.attribute_id) + _sel(s) for d, s in items
    )


ENCODERS: dict[type, Callable[[Any], bytes]] = {
    GetRequestNormal: lambda a: (
        _head(G, 1, a.invoke_id)
        + _desc(a.class_id, a.instance_id, a.attribute_id)
        + (
            _sel(None)
            if a.access_selector is None
            else _sel(Selection(a.access_selector, _required(a.access_parameters)))
        )
    ),
    GetRequestNext: lambda a: _head(G, 2, a.invoke_id) + _U32.pack(a.block_number),
    GetRequestWithList: lambda a: _head(G, 3, a.invoke_id) + _items(a.items),
    GetResponseNormal: lambda a: _head(GR, 1, a.invoke_id) + _get_data_result(a.result),
    GetResponseWithDataBlock: lambda a: (
        _head(GR, 2, a.invoke_id)
        + bytes((0xFF if a.last_block else 0x00,))
        + _U32.pack(a.block_number)
        + (
            bytes((0x01, a.raw_data))
            if isinstance(a.raw_data, DataAccessResult)
            else b"\x00" + encode_length(len(a.raw_data)) + a.raw_data
        )
    ),
    GetResponseWithList: lambda a: (
        _head(GR, 3, a.invoke_id)
        + encode_length(len(a.results))
        + b"".join(_get_data_result(r) for r in a.results)
    ),
    SetRequestNormal: lambda a: (
        _head(S, 1, a.invoke_id)
        + _desc(a.descriptor.class_id, a.descriptor.instance_id, a.descriptor.attribute_id)
        + _sel(a.selection)
        + encode_data(a.value)
    ),
    SetRequestWithFirstDataBlock: lambda a: (
        _head(S, 2, a.invoke_id)
        + _desc(a.descriptor.class_id, a.descriptor.instance_id, a.descriptor.attribute_id)
        + _sel(a.selection)
        + _block(a.last_block, a.block_number, a.raw_data)
    ),
    SetRequestWithDataBlock: lambda a: (
        _head(S, 3, a.invoke_id) + _block(a.last_block, a.block_number, a.raw_data)
    ),
    SetRequestWithList: lambda a: (
        _head(S, 4, a.invoke_id)
        + _items(a.items)
        + encode_length(len(a.values))
        + b"".join(encode_data(v) for v in a.values)
    ),
    SetResponseNormal: lambda a: _head(SR, 1, a.invoke_id) + bytes((a.result,)),
    SetResponseDataBlock: lambda a: _head(SR, 2, a.invoke_id) + _U32.pack(a.block_number),
    SetResponseLastDataBlock: lambda a: (
        _head(SR, 3, a.invoke_id) + bytes((a.result,)) + _U32.pack(a.block_number)
    ),
    SetResponseWithList: lambda a: (
        _head(SR, 5, a.invoke_id) + encode_length(len(a.results)) + bytes(a.results)
    ),
    ActionRequestNormal: lambda a: (
        _head(A, 1, a.invoke_id)
        + _desc(a.method.class_id, a.method.instance_id, a.method.method_id)
        + (b"\x00" if a.parameters is None else b"\x01" + encode_data(a.parameters))
    ),
    ActionRequestNextPBlock: lambda a: _head(A, 2, a.invoke_id) + _U32.pack(a.block_number),
    ActionRequestWithList: lambda a: (
        _head(A, 3, a.invoke_id)
        + encode_length(len(a.methods))
        + b"".join(_desc(m.class_id, m.instance_id, m.method_id) for m in a.methods)
        + encode_length(len(a.parameters))
        + b"".join(encode_data(p) for p in a.parameters)
    ),
    ActionRequestWithFirstPBlock: lambda a: (
        _head(A, 4, a.invoke_id)
        + _desc(a.method.class_id, a.method.instance_id, a.method.method_id)
        + _block(a.last_block, a.block_number, a.raw_data)
    ),
    ActionRequestWithPBlock: lambda a: (
        _head(A, 6, a.invoke_id) + _block(a.last_block, a.block_number, a.raw_data)
    ),
    ActionResponseNormal: lambda a: (
        _head(AR, 1, a.invoke_id) + bytes((a.result,)) + _optional_return(a.return_data)
    ),
    ActionResponseWithPBlock: lambda a: (
        _head(AR, 2, a.invoke_id) + _block(a.last_block, a.block_number, a.raw_data)
    ),
    ActionResponseWithList: lambda a: (
        _head(AR, 3, a.invoke_id)
        + encode_length(len(a.results))
        + b"".join(bytes((res,)) + _optional_return(ret) for res, ret in a.results)
    ),
    ActionResponseNextPBlock: lambda a: _head(AR, 4, a.invoke_id) + _U32.pack(a.block_number),
    ExceptionResponse: lambda a: (
        bytes((ServiceTag.EXCEPTION_RESPONSE, a.state_error, a.service_error))
        + (b"" if a.invocation_counter is None else _U32.pack(a.invocation_counter))
    ),
    CipheredService: lambda a: (
        bytes((a.tag,)) + encode_length(len(a.ciphered_content)) + a.ciphered_content
    ),
}


def _required(value: Data | None) -> Data:
    if value is None:
        raise LocalProtocolError("selective access needs access parameters")
    return value


# --- decoders ----------------------------------------------------------------------------


def _read_items(r: _Reader) -> tuple[tuple[AttributeDescriptor, Selection | None], ...]:
    items = []
    for _ in range(r.count("attribute list")):
        descriptor = AttributeDescriptor(*r.descriptor())
        items.append((descriptor, r.selection()))
    return tuple(items)


def _read_block(r: _Reader) -> tuple[bool, int, bytes]:
    return r.boolean("last-block"), r.u32("block-number"), r.octets("raw-data")


def _dec_get_request(r: _Reader, choice: int, invoke: int) -> object:
    if choice == 1:
        class_id, instance, attribute = r.descriptor()
        selection = r.selection()
        if selection is None:
            return GetRequestNormal(invoke, class_id, instance, attribute)
        return GetRequestNormal(
            invoke, class_id, instance, attribute, selection.selector, selection.parameters
        )
    if choice == 2:
        return GetRequestNext(invoke, r.u32("block-number"))
    if choice == 3:
        return GetRequestWithList(invoke, _read_items(r))
    raise DecodeError(f"get-request choice {choice} unknown")


def _dec_get_response(r: _Reader, choice: int, invoke: int) -> object:
    if choice == 1:
        return GetResponseNormal(invoke, _read_get_data_result(r))
    if choice == 2:
        last, number = r.boolean("last-block"), r.u32("block-number")
        which = r.u8("datablock result")
        if which == 0:
            return GetResponseWithDataBlock(invoke, last, number, r.octets("raw-data"))
        if which == 1:
            return GetResponseWithDataBlock(
                invoke, last, number, r.enum(DataAccessResult, "result")
            )
        raise DecodeError(f"datablock result choice {which} is not 0 or 1")
    if choice == 3:
        return GetResponseWithList(
            invoke, tuple(_read_get_data_result(r) for _ in range(r.count("result list")))
        )
    raise DecodeError(f"get-response choice {choice} unknown")


def _dec_set_request(r: _Reader, choice: int, invoke: int) -> object:
    if choice in (1, 2):
        descriptor = AttributeDescriptor(*r.descriptor())
        selection = r.selection()
        if choice == 1:
            return SetRequestNormal(invoke, descriptor, selection, r.data())
        return SetRequestWithFirstDataBlock(invoke, descriptor, selection, *_read_block(r))
    if choice == 3:
        return SetRequestWithDataBlock(invoke, *_read_block(r))
    if choice == 4:
        items = _read_items(r)
        values = tuple(r.data() for _ in range(r.count("value list")))
        return SetRequestWithList(invoke, items, values)
    raise DecodeError(f"set-request choice {choice} unknown")


def _dec_set_response(r: _Reader, choice: int, invoke: int) -> object:
    if choice == 1:
        return SetResponseNormal(invoke, r.enum(DataAccessResult, "data-access-result"))
    if choice == 2:
        return SetResponseDataBlock(invoke, r.u32("block-number"))
    if choice == 3:
        return SetResponseLastDataBlock(
            invoke, r.enum(DataAccessResult, "result"), r.u32("block-number")
        )
    if choice == 5:
        return SetResponseWithList(
            invoke, tuple(r.enum(DataAccessResult, "result") for _ in range(r.count("results")))
        )
    raise DecodeError(f"set-response choice {choice} unknown")


def _dec_action_request(r: _Reader, choice: int, invoke: int) -> object:
    if choice == 1:
        method = MethodDescriptor(*r.descriptor())
        return ActionRequestNormal(invoke, method, r.data() if r.flag("parameters") else None)
    if choice == 2:
        return ActionRequestNextPBlock(invoke, r.u32("block-number"))
    if choice == 3:
        methods = tuple(MethodDescriptor(*r.descriptor()) for _ in range(r.count("method list")))
        params = tuple(r.data() for _ in range(r.count("parameter list")))
        return ActionRequestWithList(invoke, methods, params)
    if choice == 4:
        method = MethodDescriptor(*r.descriptor())
        return ActionRequestWithFirstPBlock(invoke, method, *_read_block(r))
    if choice == 6:
        return ActionRequestWithPBlock(invoke, *_read_block(r))
    raise DecodeError(f"action-request choice {choice} unknown")


def _dec_action_response(r: _Reader, choice: int, invoke: int) -> object:
    if choice == 1:
        result = r.enum(ActionResult, "action-result")
        return ActionResponseNormal(invoke, result, _read_optional_return(r))
    if choice == 2:
        return ActionResponseWithPBlock(invoke, *_read_block(r))
    if choice == 3:
        results = []
        for _ in range(r.count("action results")):
            result = r.enum(ActionResult, "action-result")
            results.append((result, _read_optional_return(r)))
        return ActionResponseWithList(invoke, tuple(results))
    if choice == 4:
        return ActionResponseNextPBlock(invoke, r.u32("block-number"))
    raise DecodeError(f"action-response choice {choice} unknown")


_BY_CHOICE: dict[int, Callable[[_Reader, int, int], object]] = {
    ServiceTag.GET_REQUEST: _dec_get_request,
    ServiceTag.GET_RESPONSE: _dec_get_response,
    ServiceTag.SET_REQUEST: _dec_set_request,
    ServiceTag.SET_RESPONSE: _dec_set_response,
    ServiceTag.ACTION_REQUEST: _dec_action_request,
    ServiceTag.ACTION_RESPONSE: _dec_action_response,
}


def decode_service(buf: bytes) -> tuple[object, int]:
    """Decode the service APDU at the start of ``buf``; return it and its length."""
    r = _Reader(buf, 1)
    tag = buf[0]
    if tag == ServiceTag.EXCEPTION_RESPONSE:
        state, service = r.u8("state-error"), r.u8("service-error")
        counter = r.u32("invocation counter") if service == 6 else None
        return ExceptionResponse(state, service, counter), r.pos
    if tag in CIPHERED_TAGS:
        return CipheredService(tag, r.octets("ciphered content")), r.pos
    decoder = _BY_CHOICE.get(tag)
    if decoder is None:
        raise DecodeError(f"not a service APDU tag: 0x{tag:02x}")
    choice = r.u8("service choice")
    invoke = r.u8("invoke-id-and-priority")
    return decoder(r, choice, invoke), r.pos


SERVICE_TAGS = frozenset(_BY_CHOICE) | {ServiceTag.EXCEPTION_RESPONSE} | frozenset(CIPHERED_TAGS)
