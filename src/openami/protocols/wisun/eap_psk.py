"""EAP (RFC 3748) packets and the EAP-PSK method (RFC 4764), both roles, sans-IO.

Route B authenticates the HEMS to the meter with EAP-PSK carried by PANA: the peer (the
Wi-SUN dongle) proves it holds the pre-shared key made from the customer's B-route password,
its identity ID_P is the 32-character B-route ID, and the meter (the EAP server, identity
ID_S) proves it holds the same key.

EAP packet::

    Code (1: Request, 2: Response, 3: Success, 4: Failure) | Identifier (1) | Length (2)
    | Type (1, Request/Response only; 47 = EAP-PSK) | Type-Data

EAP-PSK messages (Type-Data), T in the two high bits of the Flags octet::

    1 (T=0, Request)  Flags | RAND_S (16) | ID_S
    2 (T=1, Response) Flags | RAND_S (16) | RAND_P (16) | MAC_P (16) | ID_P
    3 (T=2, Request)  Flags | RAND_S (16) | MAC_S (16) | PCHANNEL_S_0
    4 (T=3, Response) Flags | RAND_S (16) | PCHANNEL_P_1

Cryptography, all AES-128 (RFC 4764 section 3):

* key setup: ``AK = E(PSK, E(PSK, 0) XOR c1)`` and ``KDK = E(PSK, E(PSK, 0) XOR c2)``, the
  counters ``c_i = i`` XOR-ed into the last octet of the block;
* ``MAC_P = CMAC(AK, ID_P | ID_S | RAND_S | RAND_P)``, ``MAC_S = CMAC(AK, ID_S | RAND_P)``;
* session keys from ``B = E(KDK, RAND_P)``: ``TEK = E(KDK, B XOR 1)``, the 64-octet MSK is
  blocks 2..5 and the EMSK blocks 6..9;
* the protected channel is EAX over AES-128 with the TEK: ``PCHANNEL = Nonce (4) | Tag (16) |
  encrypted R/E/reserved octet``; the EAX nonce is the 4-octet nonce left-padded with zeros to
  16 octets (0 in message 3, 1 in message 4) and the header is the first 22 octets of the EAP
  packet (Code to RAND_S). EAX is built here from CMAC and CTR, checked against the EAX
  paper's test vectors in the tests.

Simplified on purpose:

* The protected channel carries only the result flag (``R`` = DONE_SUCCESS or DONE_FAILURE,
  ``E`` = 0): no extensions and no CONT round trips, as in every B-route exchange we know of.
  A channel with ``E`` set is answered with DONE_FAILURE.
* The server starts directly with EAP-PSK message 1 (no EAP Identity exchange): ID_P travels in
  message 2, which RFC 4764 allows.
* **The PSK from the password** (``psk_from_password``): SKSTACK's SKSETPWD turns the 12-character
  B-route password into the 16-octet PSK, but the transformation is not in any manual or
  specification we could consult. openami uses the first 16 octets of SHA-256 over the
  password's ASCII octets, the same on both sides, so dongle and meter agree; a real dongle
  would not interoperate with our meter (nor ours with a real meter) until this one function is
  replaced by the real derivation.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.cmac import CMAC

from openami.errors import DecodeError, LocalProtocolError, SecurityError

__all__ = [
    "EAP_TYPE_PSK",
    "EapCode",
    "EapPacket",
    "PskAuthenticator",
    "PskFirst",
    "PskFourth",
    "PskPeer",
    "PskSecond",
    "PskThird",
    "decode_eap",
    "decode_psk",
    "derive_session_keys",
    "eax_decrypt",
    "eax_encrypt",
    "encode_eap",
    "encode_psk",
    "key_setup",
    "psk_from_password",
]

EAP_TYPE_PSK = 47
RAND_LEN = 16
_PCHANNEL_MIN = 4 + 16 + 1  # nonce, tag, the R/E/reserved octet
R_DONE_SUCCESS = 0b10
R_DONE_FAILURE = 0b11
_E_FLAG = 0x20

Random = Callable[[int], bytes]


class EapCode(IntEnum):
    REQUEST = 1
    RESPONSE = 2
    SUCCESS = 3
    FAILURE = 4


@dataclass(frozen=True, slots=True)
class EapPacket:
    code: EapCode
    identifier: int
    type: int | None = None  # Request and Response only
    data: bytes = b""


def encode_eap(packet: EapPacket) -> bytes:
    if not 0 <= packet.identifier <= 0xFF:
        raise LocalProtocolError(f"EAP identifier {packet.identifier} is not one octet")
    if packet.code in (EapCode.SUCCESS, EapCode.FAILURE):
        return bytes((packet.code, packet.identifier, 0, 4))
    if packet.type is None or not 0 <= packet.type <= 0xFF:
        raise LocalProtocolError("an EAP Request or Response needs a one-octet type")
    length = 5 + len(packet.data)
    if length > 0xFFFF:
        raise LocalProtocolError(f"EAP packet of {length} octets does not fit")
    return (
        bytes((packet.code, packet.identifier))
        + length.to_bytes(2, "big")
        + bytes((packet.type,))
        + packet.data
    )


def decode_eap(data: bytes) -> EapPacket:
    if len(data) < 4:
        raise DecodeError(f"EAP packet of {len(data)} octets is shorter than its header")
    try:
        code = EapCode(data[0])
    except ValueError:
        raise DecodeError(f"unknown EAP code {data[0]}") from None
    length = int.from_bytes(data[2:4], "big")
    # RFC 3748 4.1: octets past Length are link padding; fewer than Length is an error
    if length > len(data):
        raise DecodeError(f"EAP Length {length} is past the {len(data)} octets received")
    if code in (EapCode.SUCCESS, EapCode.FAILURE):
        if length != 4:
            raise DecodeError(f"EAP {code.name} with Length {length} (must be 4)")
        return EapPacket(code, data[1])
    if length < 5:
        raise DecodeError(f"EAP {code.name} with Length {length} has no type")
    return EapPacket(code, data[1], data[4], bytes(data[5:length]))


# --- EAP-PSK messages ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PskFirst:
    rand_s: bytes
    id_s: bytes


@dataclass(frozen=True, slots=True)
class PskSecond:
    rand_s: bytes
    rand_p: bytes
    mac_p: bytes
    id_p: bytes


@dataclass(frozen=True, slots=True)
class PskThird:
    rand_s: bytes
    mac_s: bytes
    pchannel: bytes


@dataclass(frozen=True, slots=True)
class PskFourth:
    rand_s: bytes
    pchannel: bytes


PskMessage = PskFirst | PskSecond | PskThird | PskFourth
_Build = Callable[[list[bytes], bytes], PskMessage]
# kind, how to build it from its 16-octet fields and its trailing field, EAP code, number of
# 16-octet fields after Flags, minimum length of the trailing field; the index is the T value
_LAYOUT: tuple[tuple[type[PskMessage], _Build, EapCode, int, int], ...] = (
    (PskFirst, lambda f, tail: PskFirst(f[0], tail), EapCode.REQUEST, 1, 1),
    (PskSecond, lambda f, tail: PskSecond(f[0], f[1], f[2], tail), EapCode.RESPONSE, 3, 1),
    (PskThird, lambda f, tail: PskThird(f[0], f[1], tail), EapCode.REQUEST, 2, _PCHANNEL_MIN),
    (PskFourth, lambda f, tail: PskFourth(f[0], tail), EapCode.RESPONSE, 1, _PCHANNEL_MIN),
)


def encode_psk(identifier: int, message: PskMessage) -> bytes:
    t = [entry[0] for entry in _LAYOUT].index(type(message))
    parts: list[bytes] = [getattr(message, name) for name in message.__slots__]
    if any(len(p) != RAND_LEN for p in parts[:-1]):
        raise LocalProtocolError("EAP-PSK RAND and MAC fields are 16 octets")
    flags = bytes((t << 6,))
    return encode_eap(EapPacket(_LAYOUT[t][2], identifier, EAP_TYPE_PSK, flags + b"".join(parts)))


def decode_psk(packet: EapPacket) -> PskMessage:
    if packet.type != EAP_TYPE_PSK or not packet.data:
        raise DecodeError(f"EAP type {packet.type} is not EAP-PSK, or the message is empty")
    kind, build, code, fixed, tail = _LAYOUT[packet.data[0] >> 6]
    if packet.code != code:
        raise DecodeError(f"EAP-PSK {kind.__name__} must be an EAP {code.name}")
    body = packet.data[1:]
    if len(body) < fixed * RAND_LEN + tail:
        raise DecodeError(f"EAP-PSK {kind.__name__} of {len(packet.data)} octets is too short")
    fields = [body[i * RAND_LEN : (i + 1) * RAND_LEN] for i in range(fixed)]
    return build(fields, body[fixed * RAND_LEN :])


# --- cryptography --------------------------------------------------------------------------


def psk_from_password(password: str) -> bytes:
    """The 16-octet PSK for a B-route password: openami's stand-in, see the module docstring."""
    try:
        raw = password.encode("ascii")
    except UnicodeEncodeError:
        raise LocalProtocolError("a B-route password is ASCII") from None
    return hashlib.sha256(raw).digest()[:16]


def _aes(key: bytes, block: bytes) -> bytes:
    encryptor = Cipher(algorithms.AES(key), modes.ECB()).encryptor()  # noqa: S305 -- one block
    return encryptor.update(block) + encryptor.finalize()


def _counter(block: bytes, counter: int) -> bytes:
    return block[:-1] + bytes((block[-1] ^ counter,))


def key_setup(psk: bytes) -> tuple[bytes, bytes]:
    """``(AK, KDK)`` from the 16-octet PSK."""
    if len(psk) != 16:
        raise LocalProtocolError("the EAP-PSK PSK is 16 octets")
    base = _aes(psk, bytes(16))
    return _aes(psk, _counter(base, 1)), _aes(psk, _counter(base, 2))


def derive_session_keys(kdk: bytes, rand_p: bytes) -> tuple[bytes, bytes, bytes]:
    """``(TEK, MSK, EMSK)``: 16, 64 and 64 octets."""
    base = _aes(kdk, rand_p)
    blocks = [_aes(kdk, _counter(base, i)) for i in range(1, 10)]
    return blocks[0], b"".join(blocks[1:5]), b"".join(blocks[5:9])


def _cmac(key: bytes, data: bytes) -> bytes:
    mac = CMAC(algorithms.AES(key))
    mac.update(data)
    return mac.finalize()


def _omac(key: bytes, tweak: int, data: bytes) -> bytes:
    return _cmac(key, bytes(15) + bytes((tweak,)) + data)


def _xor(*blocks: bytes) -> bytes:
    out = bytearray(16)
    for block in blocks:
        for i, octet in enumerate(block):
            out[i] ^= octet
    return bytes(out)


def eax_encrypt(key: bytes, nonce: bytes, header: bytes, plaintext: bytes) -> tuple[bytes, bytes]:
    """EAX mode (Bellare, Rogaway, Wagner) over AES-128: ``(ciphertext, 16-octet tag)``."""
    n, h = _omac(key, 0, nonce), _omac(key, 1, header)
    ctr = Cipher(algorithms.AES(key), modes.CTR(n)).encryptor()
    ciphertext = ctr.update(plaintext) + ctr.finalize()
    return ciphertext, _xor(n, h, _omac(key, 2, ciphertext))


def eax_decrypt(key: bytes, nonce: bytes, header: bytes, ciphertext: bytes, tag: bytes) -> bytes:
    n, h = _omac(key, 0, nonce), _omac(key, 1, header)
    if not hmac.compare_digest(_xor(n, h, _omac(key, 2, ciphertext)), tag):
        raise SecurityError("EAX tag does not verify")
    ctr = Cipher(algorithms.AES(key), modes.CTR(n)).decryptor()
    return ctr.update(ciphertext) + ctr.finalize()


def _seal_pchannel(tek: bytes, nonce: int, eap_head: bytes, result: int) -> bytes:
    ciphertext, tag = eax_encrypt(tek, nonce.to_bytes(16, "big"), eap_head, bytes((result << 6,)))
    return nonce.to_bytes(4, "big") + tag + ciphertext


def _open_pchannel(tek: bytes, nonce: int, packet: bytes, pchannel: bytes) -> int:
    """The R flag of a received protected channel; ``SecurityError`` if it does not verify."""
    if int.from_bytes(pchannel[:4], "big") != nonce:
        raise SecurityError(f"EAP-PSK channel nonce is not {nonce}")
    plain = eax_decrypt(tek, bytes(12) + pchannel[:4], packet[:22], pchannel[20:], pchannel[4:20])
    if plain[0] & _E_FLAG:
        return R_DONE_FAILURE  # extensions are not supported: refuse
    return plain[0] >> 6


def _sealed_message(
    identifier: int, make: Callable[[bytes], PskThird | PskFourth], tek: bytes, nonce: int, r: int
) -> bytes:
    """Encode a message 3 or 4 whose PCHANNEL is EAX-sealed over the packet's own first 22
    octets: encode once with a placeholder channel of the final length, then seal."""
    placeholder = encode_psk(identifier, make(bytes(_PCHANNEL_MIN)))
    return encode_psk(identifier, make(_seal_pchannel(tek, nonce, placeholder[:22], r)))


# --- the two roles -------------------------------------------------------------------------


@dataclass(eq=False)
class PskPeer:
    """The EAP peer (the dongle). ``receive`` takes an EAP packet from the server and returns
    the EAP response to send, or ``None``. ``outcome`` becomes True on EAP-Success after a
    verified server, False on any failure; ``msk`` is set once the keys are derived."""

    id_p: bytes
    psk: bytes = field(repr=False)
    random: Random
    outcome: bool | None = None
    msk: bytes | None = field(default=None, repr=False)
    _rand_p: bytes = field(default=b"", repr=False)
    _id_s: bytes = b""
    _tek: bytes = field(default=b"", repr=False)
    _method_done: bool = False

    def receive(self, data: bytes) -> bytes | None:
        packet = decode_eap(data)
        if packet.code in (EapCode.SUCCESS, EapCode.FAILURE):
            self.outcome = packet.code is EapCode.SUCCESS and self._method_done
            return None
        if packet.code is not EapCode.REQUEST or self.outcome is not None:
            return None
        message = decode_psk(packet)
        ak, kdk = key_setup(self.psk)
        if isinstance(message, PskFirst):
            self._rand_p = self.random(RAND_LEN)
            mac_p = _cmac(ak, self.id_p + message.id_s + message.rand_s + self._rand_p)
            self._id_s = message.id_s
            second = PskSecond(message.rand_s, self._rand_p, mac_p, self.id_p)
            return encode_psk(packet.identifier, second)
        if not isinstance(message, PskThird) or not self._rand_p:
            return None
        if not hmac.compare_digest(message.mac_s, _cmac(ak, self._id_s + self._rand_p)):
            self.outcome = False  # the server does not hold our key: stop answering
            return None
        self._tek, self.msk, _ = derive_session_keys(kdk, self._rand_p)
        try:
            r = _open_pchannel(self._tek, 0, data, message.pchannel)
        except SecurityError:
            self.outcome = False
            return None
        self._method_done = r == R_DONE_SUCCESS
        answer = R_DONE_SUCCESS if self._method_done else R_DONE_FAILURE
        return _sealed_message(
            packet.identifier,
            lambda channel: PskFourth(message.rand_s, channel),
            self._tek,
            1,
            answer,
        )


@dataclass(eq=False)
class PskAuthenticator:
    """The EAP server (the meter). ``start`` gives the first request; ``receive`` takes the
    peer's response and returns the next packet to send (a request, or EAP-Success/Failure
    once decided). ``outcome`` is True only if ``lookup(ID_P)`` knew the ID and the peer proved
    the PSK made from that password."""

    id_s: bytes
    lookup: Callable[[str], str | None]
    random: Random
    outcome: bool | None = None
    id_p: str | None = None
    msk: bytes | None = field(default=None, repr=False)
    identifier: int = 0
    _rand_s: bytes = field(default=b"", repr=False)
    _tek: bytes = field(default=b"", repr=False)

    def start(self) -> bytes:
        self._rand_s = self.random(RAND_LEN)
        self.identifier = self.random(1)[0]
        return encode_psk(self.identifier, PskFirst(self._rand_s, self.id_s))

    def _finish(self, success: bool) -> bytes:
        self.outcome = success
        code = EapCode.SUCCESS if success else EapCode.FAILURE
        return encode_eap(EapPacket(code, self.identifier))

    def receive(self, data: bytes) -> bytes | None:
        packet = decode_eap(data)
        if packet.code is not EapCode.RESPONSE or packet.identifier != self.identifier:
            return None  # not an answer to our current request: discard (RFC 3748 4.1)
        if self.outcome is not None:
            return None
        message = decode_psk(packet)
        if message.rand_s != self._rand_s:
            return None
        if isinstance(message, PskSecond):
            return self._second(packet.identifier, message)
        if isinstance(message, PskFourth) and self._tek:
            try:
                r = _open_pchannel(self._tek, 1, data, message.pchannel)
            except SecurityError:
                return self._finish(False)
            return self._finish(r == R_DONE_SUCCESS)
        return None

    def _second(self, identifier: int, message: PskSecond) -> bytes:
        try:
            self.id_p = message.id_p.decode("ascii")
        except UnicodeDecodeError:
            return self._finish(False)
        password = self.lookup(self.id_p)
        if password is None:
            return self._finish(False)  # unknown or revoked B-route ID
        try:
            ak, kdk = key_setup(psk_from_password(password))
        except LocalProtocolError:
            return self._finish(False)
        expected = _cmac(ak, message.id_p + self.id_s + self._rand_s + message.rand_p)
        if not hmac.compare_digest(expected, message.mac_p):
            return self._finish(False)  # wrong password
        self._tek, self.msk, _ = derive_session_keys(kdk, message.rand_p)
        self.identifier = (identifier + 1) & 0xFF
        mac_s = _cmac(ak, self.id_s + message.rand_p)
        return _sealed_message(
            self.identifier,
            lambda channel: PskThird(self._rand_s, mac_s, channel),
            self._tek,
            0,
            R_DONE_SUCCESS,
        )
