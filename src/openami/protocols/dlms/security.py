"""Security suite 0 (AES-GCM-128) for xDLMS ciphered APDUs (DLMS Green Book, 9.2.7).

Ciphered content = security control (1) || invocation counter (4) || ciphertext || tag (12).
The initialisation vector is the sender's system title (8) || invocation counter (4). The
additional authenticated data is SC || AK for authenticated encryption, and SC || AK ||
plaintext for authentication only. GCM tags may be truncated to their leading 12 octets.
"""

from __future__ import annotations

import hmac
import struct
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap, aes_key_wrap

from openami.errors import DecodeError, LocalProtocolError, SecurityError

__all__ = [
    "SC_AUTHENTICATED",
    "SC_AUTHENTICATED_ENCRYPTED",
    "SuiteZero",
    "check_password",
    "unwrap_key",
    "wrap_key",
]

SC_AUTHENTICATED = 0x10
SC_AUTHENTICATED_ENCRYPTED = 0x30
TAG_LEN = 12
_IC = struct.Struct(">I")
_SUPPORTED_SC = (SC_AUTHENTICATED, SC_AUTHENTICATED_ENCRYPTED)


@dataclass(frozen=True, slots=True)
class SuiteZero:
    """One key set: the global unicast encryption key (EK) and the authentication key (AK)."""

    ek: bytes = field(repr=False)
    ak: bytes = field(repr=False)
    _aead: AESGCM = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.ek) != 16 or len(self.ak) != 16:
            raise LocalProtocolError("suite 0 keys are 16 octets each")
        object.__setattr__(self, "_aead", AESGCM(self.ek))

    def protect(
        self,
        system_title: bytes,
        invocation_counter: int,
        plaintext: bytes,
        security_control: int = SC_AUTHENTICATED_ENCRYPTED,
    ) -> bytes:
        """Return the ciphered content for ``plaintext`` sent by ``system_title``."""
        if security_control not in _SUPPORTED_SC:
            raise LocalProtocolError(f"security control 0x{security_control:02x} not supported")
        if not 0 <= invocation_counter <= 0xFFFFFFFF:
            raise LocalProtocolError("invocation counter exhausted; a new key is needed")
        header = bytes((security_control,)) + _IC.pack(invocation_counter)
        iv = system_title + header[1:]
        if security_control == SC_AUTHENTICATED_ENCRYPTED:
            sealed = self._aead.encrypt(iv, plaintext, header[:1] + self.ak)
            return header + sealed[:-16] + sealed[-16 : -16 + TAG_LEN]
        tag = self._aead.encrypt(iv, b"", header[:1] + self.ak + plaintext)
        return header + plaintext + tag[:TAG_LEN]

    def unprotect(self, system_title: bytes, content: bytes) -> tuple[int, bytes]:
        """Verify and open ciphered content; return (invocation counter, plaintext)."""
        if len(content) < 5 + TAG_LEN:
            raise DecodeError(f"ciphered content of {len(content)} octets is too short")
        security_control = content[0]
        if security_control not in _SUPPORTED_SC:
            raise SecurityError(f"security control 0x{security_control:02x} refused")
        counter = _IC.unpack_from(content, 1)[0]
        iv = system_title + content[1:5]
        body, tag = content[5:-TAG_LEN], content[-TAG_LEN:]
        decryptor = Cipher(
            algorithms.AES(self.ek), modes.GCM(iv, tag, min_tag_length=TAG_LEN)
        ).decryptor()
        try:
            if security_control == SC_AUTHENTICATED_ENCRYPTED:
                decryptor.authenticate_additional_data(content[:1] + self.ak)
                plaintext = decryptor.update(body) + decryptor.finalize()
            else:
                decryptor.authenticate_additional_data(content[:1] + self.ak + body)
                decryptor.finalize()
                plaintext = body
        except InvalidTag:
            raise SecurityError("authentication tag does not verify") from None
        return counter, plaintext

    def gmac(self, system_title: bytes, invocation_counter: int, challenge: bytes) -> bytes:
        """HLS mechanism 5: f(challenge) = SC || IC || GMAC(SC || AK || challenge), where the
        sender's system title and counter form the IV and SC is 0x10 (authentication only)."""
        content = self.protect(system_title, invocation_counter, challenge, SC_AUTHENTICATED)
        # protect() with authentication only returns SC || IC || challenge || tag
        return content[:5] + content[-TAG_LEN:]

    def verify_gmac(self, system_title: bytes, value: bytes, challenge: bytes) -> int:
        """Check the peer's f(challenge); return its invocation counter."""
        if len(value) != 5 + TAG_LEN or value[0] != SC_AUTHENTICATED:
            raise SecurityError("HLS-GMAC answer is not SC 0x10 || IC || 12-octet tag")
        counter, _ = self.unprotect(system_title, value[:5] + challenge + value[5:])
        return counter


def check_password(expected: bytes, offered: bytes) -> None:
    """LLS (mechanism 1): compare in constant time; raise SecurityError when they differ."""
    if not hmac.compare_digest(expected, offered):
        raise SecurityError("LLS password does not match")


def wrap_key(kek: bytes, key: bytes) -> bytes:
    """AES key wrap (RFC 3394) of a new key under the master key (KEK), for key transfer."""
    if len(kek) != 16 or len(key) % 8 or len(key) < 16:
        raise LocalProtocolError("key wrap needs a 16-octet KEK and a key of 16+ octets, x8")
    return aes_key_wrap(kek, key)


def unwrap_key(kek: bytes, wrapped: bytes) -> bytes:
    """Undo ``wrap_key``; a wrong KEK or tampered input raises SecurityError."""
    if len(kek) != 16 or len(wrapped) % 8 or len(wrapped) < 24:
        raise SecurityError("wrapped key has an impossible length")
    try:
        return aes_key_unwrap(kek, wrapped)
    except InvalidUnwrap:
        raise SecurityError("wrapped key does not unwrap under this KEK") from None
