"""ACSE APDUs (AARQ, AARE, RLRQ, RLRE) and the xDLMS initiate request/response they carry.

ACSE APDUs are BER-encoded (tag, length, value); the xDLMS InitiateRequest/InitiateResponse
inside their user-information field are A-XDR. Only the fields DLMS/COSEM uses are modelled
(DLMS Green Book, "AARQ and AARE encoding"); unknown context tags are skipped on decode, as
BER allows, and rejected nowhere else.

Application context names are 2.16.756.5.8.1.N (N = 1 LN, 2 SN, 3 LN with ciphering, 4 SN
with ciphering); mechanism names are 2.16.756.5.8.2.N (1 LLS, 5 HLS with GMAC).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

from openami.errors import DecodeError, LocalProtocolError

__all__ = [
    "AARE",
    "AARQ",
    "RLRE",
    "RLRQ",
    "AcseResult",
    "AcseTag",
    "ApplicationContext",
    "Conformance",
    "InitiateRequest",
    "InitiateResponse",
    "Mechanism",
    "SourceDiagnostic",
    "decode_acse",
    "decode_initiate_request",
    "decode_initiate_response",
    "encode_acse",
    "encode_initiate_request",
    "encode_initiate_response",
]

_CONTEXT_PREFIX = bytes.fromhex("608574050801")  # 2.16.756.5.8.1
_MECHANISM_PREFIX = bytes.fromhex("608574050802")  # 2.16.756.5.8.2
_AUTH_FUNCTIONAL_UNIT = b"\x07\x80"  # BIT STRING: 7 unused bits, bit 0 set
LN_VAA_NAME = 0x0007


class AcseTag(IntEnum):
    AARQ = 0x60
    AARE = 0x61
    RLRQ = 0x62
    RLRE = 0x63


class ApplicationContext(IntEnum):
    LOGICAL_NAME = 1
    SHORT_NAME = 2
    LOGICAL_NAME_CIPHERED = 3
    SHORT_NAME_CIPHERED = 4


class Mechanism(IntEnum):
    LOWEST = 0
    LOW = 1  # LLS: a password
    HIGH = 2
    HIGH_MD5 = 3
    HIGH_SHA1 = 4
    HIGH_GMAC = 5
    HIGH_SHA256 = 6
    HIGH_ECDSA = 7


class AcseResult(IntEnum):
    ACCEPTED = 0
    REJECTED_PERMANENT = 1
    REJECTED_TRANSIENT = 2


class SourceDiagnostic(IntEnum):
    """acse-service-user diagnostics (the ones a meter gives)."""

    NULL = 0
    NO_REASON_GIVEN = 1
    APPLICATION_CONTEXT_NAME_NOT_SUPPORTED = 2
    AUTHENTICATION_MECHANISM_NAME_NOT_RECOGNISED = 11
    AUTHENTICATION_MECHANISM_NAME_REQUIRED = 12
    AUTHENTICATION_FAILURE = 13
    AUTHENTICATION_REQUIRED = 14


class Conformance:
    """Bits of the 24-bit conformance block (bit 0 is the most significant)."""

    GENERAL_PROTECTION = 1 << 22
    GENERAL_BLOCK_TRANSFER = 1 << 21
    ATTRIBUTE0_WITH_SET = 1 << 15
    PRIORITY_MGMT = 1 << 14
    ATTRIBUTE0_WITH_GET = 1 << 13
    BLOCK_TRANSFER_WITH_GET = 1 << 12
    BLOCK_TRANSFER_WITH_SET = 1 << 11
    BLOCK_TRANSFER_WITH_ACTION = 1 << 10
    MULTIPLE_REFERENCES = 1 << 9
    DATA_NOTIFICATION = 1 << 7
    ACCESS = 1 << 6
    GET = 1 << 4
    SET = 1 << 3
    SELECTIVE_ACCESS = 1 << 2
    EVENT_NOTIFICATION = 1 << 1
    ACTION = 1 << 0


@dataclass(frozen=True, slots=True)
class InitiateRequest:
    proposed_conformance: int
    client_max_receive_pdu_size: int = 0xFFFF
    dedicated_key: bytes | None = None
    response_allowed: bool = True
    proposed_quality_of_service: int | None = None
    dlms_version: int = 6


@dataclass(frozen=True, slots=True)
class InitiateResponse:
    negotiated_conformance: int
    server_max_receive_pdu_size: int
    negotiated_quality_of_service: int | None = None
    dlms_version: int = 6
    vaa_name: int = LN_VAA_NAME


@dataclass(frozen=True, slots=True)
class AARQ:
    application_context: ApplicationContext = ApplicationContext.LOGICAL_NAME
    calling_ap_title: bytes | None = None  # the client's system title, for ciphered contexts
    mechanism: Mechanism | None = None
    calling_authentication_value: bytes | None = None  # password (LLS) or challenge (HLS)
    user_information: bytes | None = None  # xDLMS initiate-request, plain or ciphered


@dataclass(frozen=True, slots=True)
class AARE:
    result: AcseResult
    diagnostic: int = SourceDiagnostic.NULL
    diagnostic_from_provider: bool = False  # acse-service-provider rather than -user
    application_context: ApplicationContext = ApplicationContext.LOGICAL_NAME
    responding_ap_title: bytes | None = None
    mechanism: Mechanism | None = None
    responding_authentication_value: bytes | None = None
    user_information: bytes | None = None


@dataclass(frozen=True, slots=True)
class RLRQ:
    reason: int | None = 0  # 0 normal, 1 urgent, 30 user-defined
    user_information: bytes | None = None


@dataclass(frozen=True, slots=True)
class RLRE:
    reason: int | None = 0  # 0 normal, 1 not-finished, 30 user-defined
    user_information: bytes | None = None


AcseApdu = AARQ | AARE | RLRQ | RLRE


# --- BER -------------------------------------------------------------------------------


def _ber_length(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(body),)) + body


def _tlv(tag: int, value: bytes) -> bytes:
    return bytes((tag,)) + _ber_length(len(value)) + value


def _read_tlv(buf: bytes, pos: int) -> tuple[int, bytes, int]:
    """One TLV at ``pos``: (tag, value, position after it). Single-octet tags only, as DLMS."""
    if pos + 2 > len(buf):
        raise DecodeError("truncated BER element")
    tag = buf[pos]
    if tag & 0x1F == 0x1F:
        raise DecodeError(f"multi-octet BER tag 0x{tag:02x} is not used by DLMS")
    first = buf[pos + 1]
    pos += 2
    if first < 0x80:
        length = first
    else:
        k = first & 0x7F
        if not 1 <= k <= 3 or pos + k > len(buf):
            raise DecodeError(f"BER length prefix 0x{first:02x} not usable")
        length = int.from_bytes(buf[pos : pos + k], "big")
        pos += k
    if pos + length > len(buf):
        raise DecodeError(f"BER element 0x{tag:02x} of {length} octets exceeds the input")
    return tag, buf[pos : pos + length], pos + length


def _elements(body: bytes) -> dict[int, bytes]:
    out: dict[int, bytes] = {}
    pos = 0
    while pos < len(body):
        tag, value, pos = _read_tlv(body, pos)
        if tag in out:
            raise DecodeError(f"BER element 0x{tag:02x} appears twice")
        out[tag] = value
    return out


def _oid(prefix: bytes, arc: int, implicit_tag: int | None = None) -> bytes:
    oid = prefix + bytes((arc,))
    return oid if implicit_tag is not None else _tlv(0x06, oid)


def _parse_oid(value: bytes, prefix: bytes, what: str, explicit: bool) -> int:
    if explicit:
        tag, value, end = _read_tlv(value, 0)
        if tag != 0x06 or end != len(value) + 2:
            raise DecodeError(f"{what} is not an OBJECT IDENTIFIER")
    if len(value) != len(prefix) + 1 or not value.startswith(prefix):
        raise DecodeError(f"{what} {value.hex()} is not a DLMS UA name")
    return value[-1]


def _graphic(value: bytes) -> bytes:
    # Authentication-value ::= CHOICE { charstring [0] IMPLICIT GraphicString, ... }
    return _tlv(0x80, value)


def _parse_graphic(value: bytes, what: str) -> bytes:
    tag, inner, end = _read_tlv(value, 0)
    if tag != 0x80 or end != len(value):
        raise DecodeError(f"{what} is not a charstring authentication value")
    return inner


def _user_information(apdu: bytes) -> bytes:
    return _tlv(0xBE, _tlv(0x04, apdu))  # [30] EXTERNAL holding an OCTET STRING


def _parse_user_information(value: bytes) -> bytes:
    tag, inner, end = _read_tlv(value, 0)
    if tag != 0x04 or end != len(value):
        raise DecodeError("user-information does not hold an OCTET STRING")
    return inner


def _small_int(value: bytes, what: str) -> int:
    tag, inner, end = _read_tlv(value, 0)
    if tag != 0x02 or end != len(value) or not 1 <= len(inner) <= 2:
        raise DecodeError(f"{what} is not a small INTEGER")
    return int.from_bytes(inner, "big", signed=True)


def _context(value: int, what: str) -> ApplicationContext:
    try:
        return ApplicationContext(value)
    except ValueError:
        raise DecodeError(f"unknown {what} {value}") from None


def _mechanism(value: int) -> Mechanism:
    try:
        return Mechanism(value)
    except ValueError:
        raise DecodeError(f"unknown authentication mechanism {value}") from None


# --- ACSE encode/decode ------------------------------------------------------------------

# Context tags of (AP title, acse-requirements, mechanism name, authentication value):
# the AARQ's calling-* fields and the AARE's responding-* fields.
_AARQ_TAGS = (0xA6, 0x8A, 0x8B, 0xAC)
_AARE_TAGS = (0xA4, 0x88, 0x89, 0xAA)


def _encode_authentication(
    tags: tuple[int, int, int, int],
    title: bytes | None,
    mechanism: Mechanism | None,
    value: bytes | None,
) -> list[bytes]:
    title_tag, requirements_tag, mechanism_tag, value_tag = tags
    parts = []
    if title is not None:
        parts.append(_tlv(title_tag, _tlv(0x04, title)))
    if mechanism is not None:
        parts.append(_tlv(requirements_tag, _AUTH_FUNCTIONAL_UNIT))
        parts.append(
            _tlv(mechanism_tag, _oid(_MECHANISM_PREFIX, mechanism, implicit_tag=mechanism_tag))
        )
    if value is not None:
        parts.append(_tlv(value_tag, _graphic(value)))
    return parts


def _decode_authentication(
    fields: dict[int, bytes], tags: tuple[int, int, int, int]
) -> tuple[bytes | None, Mechanism | None, bytes | None]:
    title_tag, _requirements, mechanism_tag, value_tag = tags
    title, mech, value = fields.get(title_tag), fields.get(mechanism_tag), fields.get(value_tag)
    return (
        _octets(title, "AP title") if title is not None else None,
        _mechanism(_parse_oid(mech, _MECHANISM_PREFIX, "mechanism", False))
        if mech is not None
        else None,
        _parse_graphic(value, "authentication value") if value is not None else None,
    )


def encode_acse(apdu: AcseApdu) -> bytes:
    parts: list[bytes] = []
    if isinstance(apdu, AARQ):
        parts.append(_tlv(0xA1, _oid(_CONTEXT_PREFIX, apdu.application_context)))
        parts += _encode_authentication(
            _AARQ_TAGS, apdu.calling_ap_title, apdu.mechanism, apdu.calling_authentication_value
        )
        if apdu.user_information is not None:
            parts.append(_user_information(apdu.user_information))
        return _tlv(AcseTag.AARQ, b"".join(parts))
    if isinstance(apdu, AARE):
        source = 0xA2 if apdu.diagnostic_from_provider else 0xA1
        parts.append(_tlv(0xA1, _oid(_CONTEXT_PREFIX, apdu.application_context)))
        parts.append(_tlv(0xA2, _tlv(0x02, bytes((apdu.result,)))))
        parts.append(_tlv(0xA3, _tlv(source, _tlv(0x02, bytes((apdu.diagnostic,))))))
        parts += _encode_authentication(
            _AARE_TAGS,
            apdu.responding_ap_title,
            apdu.mechanism,
            apdu.responding_authentication_value,
        )
        if apdu.user_information is not None:
            parts.append(_user_information(apdu.user_information))
        return _tlv(AcseTag.AARE, b"".join(parts))
    if isinstance(apdu, RLRQ | RLRE):
        if apdu.reason is not None:
            parts.append(_tlv(0x80, bytes((apdu.reason,))))
        if apdu.user_information is not None:
            parts.append(_user_information(apdu.user_information))
        tag = AcseTag.RLRQ if isinstance(apdu, RLRQ) else AcseTag.RLRE
        return _tlv(tag, b"".join(parts))
    raise LocalProtocolError(f"not an ACSE APDU: {type(apdu).__name__}")


def decode_acse(buf: bytes) -> tuple[AcseApdu, int]:
    """Decode the ACSE APDU at the start of ``buf``; return it and its length."""
    tag, body, end = _read_tlv(bytes(buf), 0)
    fields = _elements(body)
    user = fields.get(0xBE)
    user_information = _parse_user_information(user) if user is not None else None
    if tag == AcseTag.AARQ:
        if 0xA1 not in fields:
            raise DecodeError("AARQ without application-context-name")
        context = _context(_parse_oid(fields[0xA1], _CONTEXT_PREFIX, "context", True), "context")
        title, mechanism, value = _decode_authentication(fields, _AARQ_TAGS)
        return AARQ(context, title, mechanism, value, user_information), end
    if tag == AcseTag.AARE:
        for required in (0xA1, 0xA2, 0xA3):
            if required not in fields:
                raise DecodeError(f"AARE without element 0x{required:02x}")
        result = _small_int(fields[0xA2], "result")
        source_tag, source_value, source_end = _read_tlv(fields[0xA3], 0)
        if source_tag not in (0xA1, 0xA2) or source_end != len(fields[0xA3]):
            raise DecodeError("AARE result-source-diagnostic is malformed")
        title, mechanism, value = _decode_authentication(fields, _AARE_TAGS)
        try:
            acse_result = AcseResult(result)
        except ValueError:
            raise DecodeError(f"AARE result {result} is not 0, 1 or 2") from None
        return (
            AARE(
                acse_result,
                _small_int(source_value, "diagnostic"),
                source_tag == 0xA2,
                _context(_parse_oid(fields[0xA1], _CONTEXT_PREFIX, "context", True), "context"),
                title,
                mechanism,
                value,
                user_information,
            ),
            end,
        )
    if tag in (AcseTag.RLRQ, AcseTag.RLRE):
        raw = fields.get(0x80)
        if raw is not None and len(raw) != 1:
            raise DecodeError("release reason is not one octet")
        reason = raw[0] if raw is not None else None
        cls = RLRQ if tag == AcseTag.RLRQ else RLRE
        return cls(reason, user_information), end
    raise DecodeError(f"not an ACSE APDU tag: 0x{tag:02x}")


def _octets(value: bytes, what: str) -> bytes:
    tag, inner, end = _read_tlv(value, 0)
    if tag != 0x04 or end != len(value):
        raise DecodeError(f"{what} is not an OCTET STRING")
    return inner


# --- xDLMS initiate (A-XDR) --------------------------------------------------------------

_CONFORMANCE_HEADER = b"\x5f\x1f\x04\x00"  # [APPLICATION 31] IMPLICIT BIT STRING (SIZE(24))
INITIATE_REQUEST_TAG = 0x01
INITIATE_RESPONSE_TAG = 0x08


def _optional_octet(buf: bytes, pos: int, what: str) -> tuple[int | None, int]:
    """An optional one-octet field: 01 and the value, or anything else for "absent"."""
    if pos < len(buf) and buf[pos] == 0x01:
        if pos + 2 > len(buf):
            raise DecodeError(f"truncated {what}")
        return buf[pos + 1], pos + 2
    return None, pos + 1


def encode_initiate_request(request: InitiateRequest) -> bytes:
    out = bytearray((INITIATE_REQUEST_TAG,))
    if request.dedicated_key is None:
        out.append(0x00)
    else:
        out += b"\x01" + bytes((len(request.dedicated_key),)) + request.dedicated_key
    # response-allowed has DEFAULT TRUE: 00 means "the default", 01 + value otherwise
    out += b"\x00" if request.response_allowed else b"\x01\x00"
    if request.proposed_quality_of_service is None:
        out.append(0x00)
    else:
        out += bytes((0x01, request.proposed_quality_of_service))
    out.append(request.dlms_version)
    out += _CONFORMANCE_HEADER + request.proposed_conformance.to_bytes(3, "big")
    out += struct.pack(">H", request.client_max_receive_pdu_size)
    return bytes(out)


def decode_initiate_request(buf: bytes) -> InitiateRequest:
    if len(buf) < 2 or buf[0] != INITIATE_REQUEST_TAG:
        raise DecodeError("not an xDLMS initiate-request")
    pos = 1
    key = None
    if buf[pos] == 0x01:
        if pos + 2 > len(buf) or pos + 2 + buf[pos + 1] > len(buf):
            raise DecodeError("truncated dedicated-key")
        key = bytes(buf[pos + 2 : pos + 2 + buf[pos + 1]])
        pos += 2 + buf[pos + 1]
    elif buf[pos] != 0x00:
        raise DecodeError("dedicated-key presence flag is not 0 or 1")
    else:
        pos += 1
    allowed_octet, pos = _optional_octet(buf, pos, "response-allowed")
    allowed = allowed_octet != 0  # absent means the default, TRUE
    qos, pos = _optional_octet(buf, pos, "quality-of-service")
    if pos + 1 + len(_CONFORMANCE_HEADER) + 3 + 2 != len(buf):
        raise DecodeError("initiate-request has the wrong length")
    version = buf[pos]
    if buf[pos + 1 : pos + 5] != _CONFORMANCE_HEADER:
        raise DecodeError("initiate-request conformance block is malformed")
    conformance = int.from_bytes(buf[pos + 5 : pos + 8], "big")
    size = struct.unpack_from(">H", buf, pos + 8)[0]
    return InitiateRequest(conformance, size, key, allowed, qos, version)


def encode_initiate_response(response: InitiateResponse) -> bytes:
    out = bytearray((INITIATE_RESPONSE_TAG,))
    if response.negotiated_quality_of_service is None:
        out.append(0x00)
    else:
        out += bytes((0x01, response.negotiated_quality_of_service))
    out.append(response.dlms_version)
    out += _CONFORMANCE_HEADER + response.negotiated_conformance.to_bytes(3, "big")
    out += struct.pack(">Hh", response.server_max_receive_pdu_size, response.vaa_name)
    return bytes(out)


def decode_initiate_response(buf: bytes) -> InitiateResponse:
    if len(buf) < 2 or buf[0] != INITIATE_RESPONSE_TAG:
        raise DecodeError("not an xDLMS initiate-response")
    qos, pos = _optional_octet(buf, 1, "quality-of-service")
    if pos + 1 + len(_CONFORMANCE_HEADER) + 3 + 4 != len(buf):
        raise DecodeError("initiate-response has the wrong length")
    if buf[pos + 1 : pos + 5] != _CONFORMANCE_HEADER:
        raise DecodeError("initiate-response conformance block is malformed")
    conformance = int.from_bytes(buf[pos + 5 : pos + 8], "big")
    size, vaa = struct.unpack_from(">Hh", buf, pos + 8)
    return InitiateResponse(conformance, size, qos, buf[pos], vaa)
