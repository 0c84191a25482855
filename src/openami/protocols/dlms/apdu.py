"""Every APDU of Route A behind one pair of functions: ``encode_apdu`` and ``decode_apdu``.

The tag of the first octet picks the codec: ACSE (AARQ 0x60, AARE 0x61, RLRQ 0x62, RLRE
0x63; BER, in ``acse``), the xDLMS services (GET/SET/ACTION requests and responses,
exception-response and the glo-/ded- ciphered service APDUs, in ``services``), and the ones
defined here: data-notification (0x0F), general-glo-ciphering (0xDB) and
general-ded-ciphering (0xDC). Decoding raises only ``DecodeError``, on any input.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from openami.errors import DecodeError, LocalProtocolError
from openami.protocols.dlms.acse import AARE, AARQ, RLRE, RLRQ, AcseTag, decode_acse, encode_acse
from openami.protocols.dlms.axdr import (
    Data,
    decode_data_from,
    decode_length,
    encode_data,
    encode_length,
)
from openami.protocols.dlms.service_codec import ENCODERS as SERVICE_ENCODERS
from openami.protocols.dlms.service_codec import SERVICE_TAGS, decode_service
from openami.protocols.dlms.services import (
    ActionRequestNextPBlock,
    ActionRequestNormal,
    ActionRequestWithFirstPBlock,
    ActionRequestWithList,
    ActionRequestWithPBlock,
    ActionResponseNextPBlock,
    ActionResponseNormal,
    ActionResponseWithList,
    ActionResponseWithPBlock,
    CipheredService,
    DataAccessResult,
    ExceptionResponse,
    GetRequestNext,
    GetRequestNormal,
    GetRequestWithList,
    GetResponseNormal,
    GetResponseWithDataBlock,
    GetResponseWithList,
    SetRequestNormal,
    SetRequestWithDataBlock,
    SetRequestWithFirstDataBlock,
    SetRequestWithList,
    SetResponseDataBlock,
    SetResponseLastDataBlock,
    SetResponseNormal,
    SetResponseWithList,
)

__all__ = [
    "Apdu",
    "DataAccessResult",
    "DataNotification",
    "GeneralDedCiphering",
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
    GENERAL_DED_CIPHERING = 0xDC


@dataclass(frozen=True, slots=True)
class DataNotification:
    long_invoke_id: int  # long-invoke-id-and-priority, 4 octets
    date_time: bytes | None  # 12-octet COSEM date-time, or absent
    body: Data


@dataclass(frozen=True, slots=True)
class GeneralGloCiphering:
    system_title: bytes  # 8 octets: the sender's
    ciphered_content: bytes  # security header + ciphertext + tag


@dataclass(frozen=True, slots=True)
class GeneralDedCiphering:
    system_title: bytes
    ciphered_content: bytes


Apdu = (
    DataNotification
    | GeneralGloCiphering
    | GeneralDedCiphering
    | AARQ
    | AARE
    | RLRQ
    | RLRE
    | GetRequestNormal
    | GetRequestNext
    | GetRequestWithList
    | GetResponseNormal
    | GetResponseWithDataBlock
    | GetResponseWithList
    | SetRequestNormal
    | SetRequestWithFirstDataBlock
    | SetRequestWithDataBlock
    | SetRequestWithList
    | SetResponseNormal
    | SetResponseDataBlock
    | SetResponseLastDataBlock
    | SetResponseWithList
    | ActionRequestNormal
    | ActionRequestNextPBlock
    | ActionRequestWithList
    | ActionRequestWithFirstPBlock
    | ActionRequestWithPBlock
    | ActionResponseNormal
    | ActionResponseWithPBlock
    | ActionResponseWithList
    | ActionResponseNextPBlock
    | ExceptionResponse
    | CipheredService
)

_U32 = struct.Struct(">I")


def _enc_notification(apdu: DataNotification) -> bytes:
    if apdu.date_time is not None and len(apdu.date_time) != 12:
        raise LocalProtocolError("data-notification date-time must be 12 octets")
    dt = b"\x00" if apdu.date_time is None else b"\x0c" + apdu.date_time
    head = bytes((Tag.DATA_NOTIFICATION,)) + _U32.pack(apdu.long_invoke_id)
    return head + dt + encode_data(apdu.body)


def _enc_general(tag: int) -> Callable[[Any], bytes]:
    def encode(apdu: GeneralGloCiphering | GeneralDedCiphering) -> bytes:
        return (
            bytes((tag,))
            + encode_length(len(apdu.system_title))
            + apdu.system_title
            + encode_length(len(apdu.ciphered_content))
            + apdu.ciphered_content
        )

    return encode


def _dec_notification(buf: bytes) -> tuple[DataNotification, int]:
    if len(buf) < 6:
        raise DecodeError("truncated: data-notification header")
    invoke = _U32.unpack_from(buf, 1)[0]
    dt_len = buf[5]
    pos = 6
    if dt_len == 0:
        date_time = None
    elif dt_len == 12:
        if pos + 12 > len(buf):
            raise DecodeError("truncated: data-notification date-time")
        date_time = buf[pos : pos + 12]
        pos += 12
    else:
        raise DecodeError(f"data-notification date-time of {dt_len} octets")
    body, pos = decode_data_from(buf, pos)
    return DataNotification(invoke, date_time, body), pos


def _octet_string(buf: bytes, pos: int, what: str) -> tuple[bytes, int]:
    length, pos = decode_length(buf, pos)
    if pos + length > len(buf):
        raise DecodeError(f"truncated: {what}")
    return buf[pos : pos + length], pos + length


def _dec_general(
    cls: type[GeneralGloCiphering] | type[GeneralDedCiphering],
) -> Callable[[bytes], tuple[Any, int]]:
    def decode(buf: bytes) -> tuple[Any, int]:
        title, pos = _octet_string(buf, 1, "system-title")
        if len(title) != 8:
            raise DecodeError(f"system-title of {len(title)} octets, expected 8")
        content, pos = _octet_string(buf, pos, "ciphered-content")
        return cls(title, content), pos

    return decode


_ENCODERS: dict[type, Callable[[Any], bytes]] = {
    DataNotification: _enc_notification,
    GeneralGloCiphering: _enc_general(Tag.GENERAL_GLO_CIPHERING),
    GeneralDedCiphering: _enc_general(Tag.GENERAL_DED_CIPHERING),
    AARQ: encode_acse,
    AARE: encode_acse,
    RLRQ: encode_acse,
    RLRE: encode_acse,
    **SERVICE_ENCODERS,
}
_DECODERS: dict[int, Callable[[bytes], tuple[Any, int]]] = {
    Tag.DATA_NOTIFICATION: _dec_notification,
    Tag.GENERAL_GLO_CIPHERING: _dec_general(GeneralGloCiphering),
    Tag.GENERAL_DED_CIPHERING: _dec_general(GeneralDedCiphering),
    **{int(tag): decode_acse for tag in AcseTag},
    **{int(tag): decode_service for tag in SERVICE_TAGS},
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
    result: Apdu = apdu
    return result
