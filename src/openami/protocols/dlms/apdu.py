"""xDLMS APDUs used on Route A (IEC 62056-5-3), as frozen dataclasses.

``encode_apdu`` and ``decode_apdu`` walk the tag table at the bottom of this module.
Covered so far: data-notification, get-request-normal (with selective access),
get-response-normal and general-glo-ciphering. The rest of the xDLMS set is added by the
DLMS stack work on top of the same table.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum

from openami.errors import DecodeError, LocalProtocolError
from openami.protocols.dlms.axdr import (
    Data,
    decode_data_from,
    decode_length,
    encode_data,
    encode_length,
)

__all__ = [
    "Apdu",
    "DataAccessResult",
    "DataNotification",
    "GeneralGloCiphering",
    "GetRequestNormal",
    "GetResponseNormal",
    "Tag",
    "decode_apdu",
    "encode_apdu",
]


class Tag(IntEnum):
    DATA_NOTIFICATION = 0x0F
    GET_REQUEST = 0xC0
    GET_RESPONSE = 0xC4
    GENERAL_GLO_CIPHERING = 0xDB


class DataAccessResult(IntEnum):
    SUCCESS = 0
    HARDWARE_FAULT = 1
    TEMPORARY_FAILURE = 2
    READ_WRITE_DENIED = 3
    OBJECT_UNDEFINED = 4
    OBJECT_CLASS_INCONSISTENT = 9
    OBJECT_UNAVAILABLE = 11
    TYPE_UNMATCHED = 12
    SCOPE_OF_ACCESS_VIOLATED = 13
    DATA_BLOCK_UNAVAILABLE = 14
    LONG_GET_ABORTED = 15
    NO_LONG_GET_IN_PROGRESS = 16
    LONG_SET_ABORTED = 17
    NO_LONG_SET_IN_PROGRESS = 18
    DATA_BLOCK_NUMBER_INVALID = 19
    OTHER_REASON = 250


@dataclass(frozen=True, slots=True)
class DataNotification:
    long_invoke_id: int  # long-invoke-id-and-priority, 4 octets
    date_time: bytes | None  # 12-octet COSEM date-time, or absent
    body: Data


@dataclass(frozen=True, slots=True)
class GetRequestNormal:
    invoke_id: int  # invoke-id-and-priority octet
    class_id: int
    instance_id: bytes  # 6-octet OBIS code
    attribute_id: int
    access_selector: int | None = None
    access_parameters: Data | None = None


@dataclass(frozen=True, slots=True)
class GetResponseNormal:
    invoke_id: int
    result: Data | DataAccessResult


@dataclass(frozen=True, slots=True)
class GeneralGloCiphering:
    system_title: bytes  # 8 octets: the sender's
    ciphered_content: bytes  # security header + ciphertext + tag


Apdu = DataNotification | GetRequestNormal | GetResponseNormal | GeneralGloCiphering

_U32 = struct.Struct(">I")
_DESCRIPTOR = struct.Struct(">H6sb")  # class-id, instance-id, attribute-id


def _need(buf: bytes, pos: int, n: int, what: str) -> None:
    if pos + n > len(buf):
        raise DecodeError(f"truncated: {what} needs {n} octets at offset {pos}")


def _octet_string(buf: bytes, pos: int, what: str) -> tuple[bytes, int]:
    length, pos = decode_length(buf, pos)
    _need(buf, pos, length, what)
    return buf[pos : pos + length], pos + length


# --- encoders ------------------------------------------------------------------------------


def _enc_notification(apdu: DataNotification) -> bytes:
    if apdu.date_time is not None and len(apdu.date_time) != 12:
        raise LocalProtocolError("data-notification date-time must be 12 octets")
    dt = b"\x00" if apdu.date_time is None else b"\x0c" + apdu.date_time
    return (
        bytes((Tag.DATA_NOTIFICATION,))
        + _U32.pack(apdu.long_invoke_id)
        + dt
        + encode_data(apdu.body)
    )


def _enc_get_request(apdu: GetRequestNormal) -> bytes:
    if len(apdu.instance_id) != 6:
        raise LocalProtocolError("instance-id must be 6 octets")
    head = bytes((Tag.GET_REQUEST, 0x01, apdu.invoke_id)) + _DESCRIPTOR.pack(
        apdu.class_id, apdu.instance_id, apdu.attribute_id
    )
    if apdu.access_selector is None:
        return head + b"\x00"
    if apdu.access_parameters is None:
        raise LocalProtocolError("selective access needs access parameters")
    return head + bytes((0x01, apdu.access_selector)) + encode_data(apdu.access_parameters)


def _enc_get_response(apdu: GetResponseNormal) -> bytes:
    head = bytes((Tag.GET_RESPONSE, 0x01, apdu.invoke_id))
    if isinstance(apdu.result, DataAccessResult):
        return head + bytes((0x01, apdu.result))
    return head + b"\x00" + encode_data(apdu.result)


def _enc_glo(apdu: GeneralGloCiphering) -> bytes:
    return (
        bytes((Tag.GENERAL_GLO_CIPHERING,))
        + encode_length(len(apdu.system_title))
        + apdu.system_title
        + encode_length(len(apdu.ciphered_content))
        + apdu.ciphered_content
    )


# --- decoders ------------------------------------------------------------------------------


def _dec_notification(buf: bytes) -> tuple[DataNotification, int]:
    _need(buf, 1, 5, "data-notification header")
    invoke = _U32.unpack_from(buf, 1)[0]
    dt_len = buf[5]
    pos = 6
    if dt_len == 0:
        date_time = None
    elif dt_len == 12:
        _need(buf, pos, 12, "data-notification date-time")
        date_time = buf[pos : pos + 12]
        pos += 12
    else:
        raise DecodeError(f"data-notification date-time of {dt_len} octets")
    body, pos = decode_data_from(buf, pos)
    return DataNotification(invoke, date_time, body), pos


def _dec_get_request(buf: bytes) -> tuple[GetRequestNormal, int]:
    _need(buf, 1, 2 + _DESCRIPTOR.size + 1, "get-request")
    if buf[1] != 0x01:
        raise DecodeError(f"get-request choice {buf[1]} is not supported")
    class_id, instance, attr = _DESCRIPTOR.unpack_from(buf, 3)
    pos = 3 + _DESCRIPTOR.size
    if buf[pos] == 0x00:
        return GetRequestNormal(buf[2], class_id, instance, attr), pos + 1
    if buf[pos] != 0x01:
        raise DecodeError(f"access-selection flag {buf[pos]} is not 0 or 1")
    _need(buf, pos + 1, 1, "access selector")
    params, end = decode_data_from(buf, pos + 2)
    return GetRequestNormal(buf[2], class_id, instance, attr, buf[pos + 1], params), end


def _dec_get_response(buf: bytes) -> tuple[GetResponseNormal, int]:
    _need(buf, 1, 3, "get-response")
    if buf[1] != 0x01:
        raise DecodeError(f"get-response choice {buf[1]} is not supported")
    if buf[3] == 0x00:
        data, end = decode_data_from(buf, 4)
        return GetResponseNormal(buf[2], data), end
    if buf[3] != 0x01:
        raise DecodeError(f"get-data-result choice {buf[3]} is not 0 or 1")
    _need(buf, 4, 1, "data-access-result")
    try:
        result = DataAccessResult(buf[4])
    except ValueError:
        raise DecodeError(f"unknown data-access-result {buf[4]}") from None
    return GetResponseNormal(buf[2], result), 5


def _dec_glo(buf: bytes) -> tuple[GeneralGloCiphering, int]:
    title, pos = _octet_string(buf, 1, "system-title")
    if len(title) != 8:
        raise DecodeError(f"system-title of {len(title)} octets, expected 8")
    content, pos = _octet_string(buf, pos, "ciphered-content")
    return GeneralGloCiphering(title, content), pos


_ENCODERS: dict[type, Callable[[object], bytes]] = {
    DataNotification: _enc_notification,  # type: ignore[dict-item]
    GetRequestNormal: _enc_get_request,  # type: ignore[dict-item]
    GetResponseNormal: _enc_get_response,  # type: ignore[dict-item]
    GeneralGloCiphering: _enc_glo,  # type: ignore[dict-item]
}
_DECODERS: dict[int, Callable[[bytes], tuple[Apdu, int]]] = {
    Tag.DATA_NOTIFICATION: _dec_notification,
    Tag.GET_REQUEST: _dec_get_request,
    Tag.GET_RESPONSE: _dec_get_response,
    Tag.GENERAL_GLO_CIPHERING: _dec_glo,
}


def encode_apdu(apdu: Apdu) -> bytes:
    encoder = _ENCODERS.get(type(apdu))
    if encoder is None:
        raise LocalProtocolError(f"no encoder for {type(apdu).__name__}")
    return encoder(apdu)


def decode_apdu(buf: bytes) -> Apdu:
    """Decode one APDU filling the whole buffer; raise ``DecodeError`` on anything else."""
    buf = bytes(buf)
    if not buf:
        raise DecodeError("empty APDU")
    decoder = _DECODERS.get(buf[0])
    if decoder is None:
        raise DecodeError(f"unsupported APDU tag 0x{buf[0]:02x}")
    apdu, end = decoder(buf)
    if end != len(buf):
        raise DecodeError(f"{len(buf) - end} trailing octets after APDU")
    return apdu
