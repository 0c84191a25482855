from __future__ import annotations

import os

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given
from hypothesis import strategies as st

from openami.errors import DecodeError, LocalProtocolError, SecurityError
from openami.protocols.dlms.security import (
    SC_AUTHENTICATED,
    SC_AUTHENTICATED_ENCRYPTED,
    SuiteZero,
    check_password,
    unwrap_key,
    wrap_key,
)

EK = bytes(range(16))
AK = bytes(range(0xD0, 0xE0))
TITLE = bytes.fromhex("4d4d4d0000bc614e")


@given(st.binary(max_size=200), st.integers(0, 2**32 - 1), st.sampled_from([0x10, 0x30]))
def test_protect_then_unprotect_gives_back_the_plaintext(plain: bytes, ic: int, sc: int) -> None:
    suite = SuiteZero(EK, AK)
    assert suite.unprotect(TITLE, suite.protect(TITLE, ic, plain, sc)) == (ic, plain)


def test_layout_matches_gcm_with_iv_title_and_counter_and_aad_sc_ak() -> None:
    # Independent check against plain AES-GCM: IV = system title || IC, AAD = SC || AK,
    # tag truncated to its first 12 octets.
    plain = bytes.fromhex("c001c100080000010000ff0200")
    content = SuiteZero(EK, AK).protect(TITLE, 0x01234567, plain)
    sealed = AESGCM(EK).encrypt(TITLE + bytes.fromhex("01234567"), plain, b"\x30" + AK)
    assert content == b"\x30" + bytes.fromhex("01234567") + sealed[:-16] + sealed[-16:-4]


@given(st.binary(min_size=1, max_size=60), st.data())
def test_any_tampered_octet_is_rejected(plain: bytes, draw: st.DataObject) -> None:
    suite = SuiteZero(EK, AK)
    content = bytearray(suite.protect(TITLE, 9, plain))
    position = draw.draw(st.integers(0, len(content) - 1))
    content[position] ^= draw.draw(st.integers(1, 255))
    with pytest.raises(SecurityError):
        suite.unprotect(TITLE, bytes(content))


def test_another_meters_key_or_title_does_not_open_it() -> None:
    content = SuiteZero(EK, AK).protect(TITLE, 1, b"reading")
    with pytest.raises(SecurityError):
        SuiteZero(os.urandom(16), AK).unprotect(TITLE, content)
    with pytest.raises(SecurityError):
        SuiteZero(EK, AK).unprotect(b"OTHERMTR", content)


def test_authentication_only_keeps_the_plaintext_visible_but_bound() -> None:
    content = SuiteZero(EK, AK).protect(TITLE, 3, b"visible", SC_AUTHENTICATED)
    assert b"visible" in content
    assert SuiteZero(EK, AK).unprotect(TITLE, content)[1] == b"visible"


def test_short_content_unknown_control_and_bad_keys() -> None:
    suite = SuiteZero(EK, AK)
    with pytest.raises(DecodeError):
        suite.unprotect(TITLE, b"\x30\x00")
    content = bytearray(suite.protect(TITLE, 1, b"x", SC_AUTHENTICATED_ENCRYPTED))
    content[0] = 0x20  # encryption without authentication is never accepted
    with pytest.raises(SecurityError, match="refused"):
        suite.unprotect(TITLE, bytes(content))
    with pytest.raises(LocalProtocolError):
        SuiteZero(b"short", AK)
    with pytest.raises(LocalProtocolError):
        suite.protect(TITLE, 2**32, b"x")


def test_keys_never_show_in_repr() -> None:
    assert EK.hex() not in repr(SuiteZero(EK, AK)) and "ek" not in repr(SuiteZero(EK, AK))


def test_hls_gmac_answer_verifies_and_binds_the_challenge() -> None:
    suite = SuiteZero(EK, AK)
    stoc = b"P6wRJ21F"
    answer = suite.gmac(TITLE, 0x01234567, stoc)
    assert answer[:5] == bytes.fromhex("1001234567")
    assert len(answer) == 17
    # independent check: GCM with empty plaintext and AAD = SC || AK || challenge
    expected = AESGCM(EK).encrypt(TITLE + bytes.fromhex("01234567"), b"", b"\x10" + AK + stoc)
    assert answer[5:] == expected[:12]
    assert suite.verify_gmac(TITLE, answer, stoc) == 0x01234567
    with pytest.raises(SecurityError):
        suite.verify_gmac(TITLE, answer, b"another!")
    with pytest.raises(SecurityError):
        suite.verify_gmac(b"OTHERSYS", answer, stoc)
    with pytest.raises(SecurityError):
        suite.verify_gmac(TITLE, answer[:-1], stoc)


def test_key_wrap_round_trip_matches_rfc_3394_vector() -> None:
    # RFC 3394 section 4.1: wrap 128 bits of key data with a 128-bit KEK
    kek = bytes.fromhex("000102030405060708090A0B0C0D0E0F")
    key = bytes.fromhex("00112233445566778899AABBCCDDEEFF")
    wrapped = wrap_key(kek, key)
    assert wrapped.hex().upper() == "1FA68B0A8112B447AEF34BD8FB5A7B829D3E862371D2CFE5"
    assert unwrap_key(kek, wrapped) == key
    tampered = bytearray(wrapped)
    tampered[3] ^= 1
    with pytest.raises(SecurityError):
        unwrap_key(kek, bytes(tampered))
    with pytest.raises(SecurityError):
        unwrap_key(bytes(16), wrapped)


def test_lls_password_comparison() -> None:
    check_password(b"00000000", b"00000000")
    with pytest.raises(SecurityError):
        check_password(b"00000000", b"00000001")


@given(st.binary(min_size=1, max_size=40), st.integers(0, 2**32 - 1))
def test_every_single_bit_flip_of_a_ciphered_apdu_is_rejected(plain: bytes, ic: int) -> None:
    from openami.protocols.dlms.apdu import GeneralGloCiphering, decode_apdu, encode_apdu

    suite = SuiteZero(EK, AK)
    wire = encode_apdu(GeneralGloCiphering(TITLE, suite.protect(TITLE, ic, plain)))

    def receive(data: bytes) -> bytes:
        apdu = decode_apdu(data)
        if not isinstance(apdu, GeneralGloCiphering) or apdu.system_title != TITLE:
            raise SecurityError("not a ciphered APDU from this meter any more")
        return suite.unprotect(apdu.system_title, apdu.ciphered_content)[1]

    assert receive(wire) == plain
    for bit in range(len(wire) * 8):
        flipped = bytearray(wire)
        flipped[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises((DecodeError, SecurityError)):
            receive(bytes(flipped))
