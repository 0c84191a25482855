"""PANA (RFC 5191) messages: the codec, and the AUTH AVP and key derivation over them.

Message (all integers big-endian)::

    Reserved (2) | Message Length (2, whole message) | Flags (2) | Message Type (2)
    | Session Identifier (4) | Sequence Number (4) | AVPs
    AVP: Code (2) | Flags (2, V = 0x8000: Vendor-Id follows) | Length (2, value octets only)
         | Reserved (2) | [Vendor-Id (4)] | Value | padding to a multiple of 4 octets

Flags R (request) 0x8000, S (start) 0x4000, C (complete) 0x2000, A 0x1000, P 0x0800, I 0x0400.
Types: 1 PANA-Client-Initiation, 2 PANA-Auth, 3 PANA-Termination, 4 PANA-Notification.
AVPs: 1 AUTH, 2 EAP-Payload, 3 Integrity-Algorithm, 4 Key-Id, 5 Nonce, 6 PRF-Algorithm,
7 Result-Code, 8 Session-Lifetime, 9 Termination-Cause. Reserved fields are sent as zero and
ignored on receipt; the Message Length must match the datagram and every AVP, padding included,
must end inside it.

Once the EAP MSK exists, ``PANA_AUTH_KEY = prf+(MSK, "IETF PANA" | I_PAR | I_PAN | PaC_nonce |
PAA_nonce | Key_ID)`` (RFC 5191 5.3; I_PAR and I_PAN are the two [S] messages as sent, prf+ as
in IKEv2: ``T1 = prf(K, S | 0x01)``, ``Tn = prf(K, Tn-1 | S | n)``) and the AUTH AVP is the HMAC
of the whole message with the AUTH value zeroed. Known algorithms, by IKEv2 transform number:
PRF_HMAC_SHA2_256 (5), PRF_HMAC_SHA1 (2); AUTH_HMAC_SHA2_256_128 (12), AUTH_HMAC_SHA1_160 (7).

``decode_message`` raises only ``DecodeError``.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from dataclasses import dataclass, replace
from enum import IntEnum, IntFlag

from openami.errors import DecodeError, LocalProtocolError

__all__ = [
    "INTEGRITY_ALGORITHMS",
    "PANA_PORT",
    "PRF_ALGORITHMS",
    "RESULT_AUTHENTICATION_REJECTED",
    "RESULT_SUCCESS",
    "TERMINATION_LOGOUT",
    "Avp",
    "AvpCode",
    "Flag",
    "KeyContext",
    "MessageType",
    "PanaMessage",
    "decode_message",
    "encode_message",
    "u32",
    "walk_avps",
]

PANA_PORT = 716
HEADER_LENGTH = 16


class MessageType(IntEnum):
    CLIENT_INITIATION = 1
    AUTH = 2
    TERMINATION = 3
    NOTIFICATION = 4


class Flag(IntFlag):
    NONE = 0
    REQUEST = 0x8000
    START = 0x4000
    COMPLETE = 0x2000
    REAUTH = 0x1000
    PING = 0x0800
    IP_RECONFIG = 0x0400


class AvpCode(IntEnum):
    AUTH = 1
    EAP_PAYLOAD = 2
    INTEGRITY_ALGORITHM = 3
    KEY_ID = 4
    NONCE = 5
    PRF_ALGORITHM = 6
    RESULT_CODE = 7
    SESSION_LIFETIME = 8
    TERMINATION_CAUSE = 9


RESULT_SUCCESS, RESULT_AUTHENTICATION_REJECTED = 0, 1
TERMINATION_LOGOUT = 1
_VENDOR = 0x8000
# IKEv2 transform number -> hashlib name; integrity: (hash, AUTH length, PANA_AUTH_KEY length)
PRF_ALGORITHMS: dict[int, str] = {5: "sha256", 2: "sha1"}
INTEGRITY_ALGORITHMS: dict[int, tuple[str, int, int]] = {
    12: ("sha256", 16, 32),
    7: ("sha1", 20, 20),
}


@dataclass(frozen=True, slots=True)
class Avp:
    code: int
    value: bytes
    vendor_id: int | None = None


def u32(value: int) -> bytes:
    return value.to_bytes(4, "big")


@dataclass(frozen=True, slots=True)
class PanaMessage:
    type: MessageType
    flags: Flag
    session_id: int
    sequence: int
    avps: tuple[Avp, ...] = ()

    @property
    def is_request(self) -> bool:
        return bool(self.flags & Flag.REQUEST)

    def values(self, code: AvpCode) -> list[bytes]:
        return [a.value for a in self.avps if a.code == code and a.vendor_id is None]

    def value(self, code: AvpCode) -> bytes | None:
        found = self.values(code)
        return found[0] if found else None

    def number(self, code: AvpCode) -> int | None:
        """An Unsigned32/Integer32 AVP's value, or None when absent or not 4 octets."""
        raw = self.value(code)
        return int.from_bytes(raw, "big") if raw is not None and len(raw) == 4 else None


def encode_message(message: PanaMessage) -> bytes:
    body = bytearray()
    for avp in message.avps:
        vendor_ok = avp.vendor_id is None or 0 <= avp.vendor_id <= 0xFFFFFFFF
        if not 0 <= avp.code <= 0xFFFF or len(avp.value) > 0xFFFF or not vendor_ok:
            raise LocalProtocolError(f"AVP {avp.code} with {len(avp.value)} octets does not fit")
        flags = _VENDOR if avp.vendor_id is not None else 0
        body += avp.code.to_bytes(2, "big") + flags.to_bytes(2, "big")
        body += len(avp.value).to_bytes(2, "big") + bytes(2)
        if avp.vendor_id is not None:
            body += u32(avp.vendor_id)
        body += avp.value + bytes(-len(avp.value) % 4)
    length = HEADER_LENGTH + len(body)
    if length > 0xFFFF or not 0 <= message.session_id <= 0xFFFFFFFF:
        raise LocalProtocolError("PANA message too long, or session identifier not 32 bits")
    head = bytes(2) + length.to_bytes(2, "big") + int(message.flags).to_bytes(2, "big")
    head += int(message.type).to_bytes(2, "big") + u32(message.session_id)
    return head + u32(message.sequence & 0xFFFFFFFF) + bytes(body)


def walk_avps(data: bytes) -> Iterator[tuple[int, int | None, int, int]]:
    """``(code, vendor_id, value_start, value_end)`` for each AVP after the header."""
    pos = HEADER_LENGTH
    while pos < len(data):
        if len(data) - pos < 8:
            raise DecodeError(f"AVP header at offset {pos} is cut short")
        code = int.from_bytes(data[pos : pos + 2], "big")
        vendor = bool(int.from_bytes(data[pos + 2 : pos + 4], "big") & _VENDOR)
        length = int.from_bytes(data[pos + 4 : pos + 6], "big")
        start = pos + (12 if vendor else 8)
        if start > len(data):
            raise DecodeError(f"AVP {code} Vendor-Id is cut short")
        vendor_id = int.from_bytes(data[pos + 8 : pos + 12], "big") if vendor else None
        end = start + length
        pos = end + (-length % 4)
        if pos > len(data):
            raise DecodeError(f"AVP {code} of {length} octets runs past the message")
        yield code, vendor_id, start, end


def decode_message(data: bytes) -> PanaMessage:
    if len(data) < HEADER_LENGTH:
        raise DecodeError(f"PANA message of {len(data)} octets is shorter than its header")
    length = int.from_bytes(data[2:4], "big")
    if length != len(data):
        raise DecodeError(f"PANA Message Length {length} but {len(data)} octets received")
    try:
        kind = MessageType(int.from_bytes(data[6:8], "big"))
    except ValueError:
        raise DecodeError(f"unknown PANA message type {int.from_bytes(data[6:8], 'big')}") from None
    avps = tuple(Avp(code, data[s:e], vendor) for code, vendor, s, e in walk_avps(data))
    return PanaMessage(
        kind,
        Flag(int.from_bytes(data[4:6], "big")),
        int.from_bytes(data[8:12], "big"),
        int.from_bytes(data[12:16], "big"),
        avps,
    )


# --- keys and AUTH -------------------------------------------------------------------------


def _prf_plus(hash_name: str, key: bytes, seed: bytes, length: int) -> bytes:
    """IKEv2 prf+: T1 = prf(K, S | 0x01), Tn = prf(K, Tn-1 | S | n)."""
    out, block, n = b"", b"", 1
    while len(out) < length:
        block = hmac.new(key, block + seed + bytes((n,)), hash_name).digest()
        out, n = out + block, n + 1
    return out[:length]


@dataclass(frozen=True, slots=True)
class KeyContext:
    """Algorithms chosen in the [S] exchange and what PANA_AUTH_KEY is made from."""

    prf: int
    integrity: int
    i_par: bytes = b""
    i_pan: bytes = b""
    pac_nonce: bytes = b""
    paa_nonce: bytes = b""

    def auth_key(self, msk: bytes, key_id: int) -> bytes:
        seed = b"IETF PANA" + self.i_par + self.i_pan + self.pac_nonce + self.paa_nonce
        length = INTEGRITY_ALGORITHMS[self.integrity][2]
        return _prf_plus(PRF_ALGORITHMS[self.prf], msk, seed + u32(key_id), length)

    def session_key(self, msk: bytes, session_id: int, key_id: int) -> bytes:
        seed = b"openami B-route session key" + u32(session_id) + u32(key_id)
        return _prf_plus(PRF_ALGORITHMS[self.prf], msk, seed, 16)

    def sign(self, message: PanaMessage, key: bytes) -> bytes:
        hash_name, size, _ = INTEGRITY_ALGORITHMS[self.integrity]
        raw = encode_message(replace(message, avps=(*message.avps, Avp(AvpCode.AUTH, bytes(size)))))
        return raw[:-size] + hmac.new(key, raw, hash_name).digest()[:size]

    def verify(self, raw: bytes, key: bytes) -> bool:
        """Whether ``raw`` (already decoded) holds exactly one AUTH AVP that verifies."""
        hash_name, size, _ = INTEGRITY_ALGORITHMS[self.integrity]
        spans = [
            (s, e)
            for code, vendor, s, e in walk_avps(raw)
            if code == AvpCode.AUTH and vendor is None
        ]
        if len(spans) != 1 or spans[0][1] - spans[0][0] != size:
            return False
        start, end = spans[0]
        zeroed = raw[:start] + bytes(size) + raw[end:]
        return hmac.compare_digest(hmac.new(key, zeroed, hash_name).digest()[:size], raw[start:end])
