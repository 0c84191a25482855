from __future__ import annotations

import contextlib
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from openami.errors import DecodeError, LocalProtocolError, SecurityError
from openami.protocols.wisun.eap_psk import (
    EAP_TYPE_PSK,
    EapCode,
    EapPacket,
    PskAuthenticator,
    PskFirst,
    PskFourth,
    PskPeer,
    PskSecond,
    PskThird,
    decode_eap,
    decode_psk,
    derive_session_keys,
    eax_decrypt,
    eax_encrypt,
    encode_eap,
    encode_psk,
    key_setup,
    psk_from_password,
)

RBID = "00112233445566778899AABBCCDDEEFF"
PASSWORD = "0123456789AB"

# Bellare, Rogaway, Wagner, "The EAX Mode of Operation", appendix test vectors (AES-128):
# key, nonce, header, message, ciphertext followed by the 16-octet tag
EAX_VECTORS = [
    (
        "233952DEE4D5ED5F9B9C6D6FF80FF478",
        "62EC67F9C3A4A407FCB2A8C49031A8B3",
        "6BFB914FD07EAE6B",
        "",
        "E037830E8389F27B025A2D6527E79D01",
    ),
    (
        "91945D3F4DCBEE0BF45EF52255F095A4",
        "BECAF043B0A23D843194BA972C66DEBD",
        "FA3BFD4806EB53FA",
        "F7FB",
        "19DD5C4C9331049D0BDAB0277408F67967E5",
    ),
]


@pytest.mark.parametrize(("key", "nonce", "header", "message", "expected"), EAX_VECTORS)
def test_eax_matches_the_papers_vectors(
    key: str, nonce: str, header: str, message: str, expected: str
) -> None:
    k, n, h, m = (bytes.fromhex(x) for x in (key, nonce, header, message))
    ciphertext, tag = eax_encrypt(k, n, h, m)
    assert (ciphertext + tag).hex().upper() == expected
    assert eax_decrypt(k, n, h, ciphertext, tag) == m
    with pytest.raises(SecurityError):
        eax_decrypt(k, n, h + b"!", ciphertext, tag)


def test_key_derivation_shapes_and_determinism() -> None:
    psk = psk_from_password(PASSWORD)
    assert len(psk) == 16
    assert psk == psk_from_password(PASSWORD) != psk_from_password("0123456789AC")
    ak, kdk = key_setup(psk)
    assert len(ak) == len(kdk) == 16
    assert ak != kdk
    tek, msk, emsk = derive_session_keys(kdk, bytes(range(16)))
    assert (len(tek), len(msk), len(emsk)) == (16, 64, 64)
    assert derive_session_keys(kdk, bytes(16))[1] != msk
    with pytest.raises(LocalProtocolError):
        key_setup(b"short")
    with pytest.raises(LocalProtocolError):
        psk_from_password("パスワード")


def test_eap_packets_round_trip() -> None:
    for packet in (
        EapPacket(EapCode.SUCCESS, 7),
        EapPacket(EapCode.FAILURE, 255),
        EapPacket(EapCode.REQUEST, 1, EAP_TYPE_PSK, b"\x00" + bytes(20)),
    ):
        assert decode_eap(encode_eap(packet)) == packet
    # octets after Length are link padding (RFC 3748 4.1)
    assert decode_eap(encode_eap(EapPacket(EapCode.SUCCESS, 1)) + b"\x00\x00").identifier == 1
    with pytest.raises(LocalProtocolError):
        encode_eap(EapPacket(EapCode.REQUEST, 1))


psk_messages = st.one_of(
    st.builds(PskFirst, st.binary(min_size=16, max_size=16), st.binary(min_size=1, max_size=40)),
    st.builds(
        PskSecond,
        *[st.binary(min_size=16, max_size=16)] * 3,
        st.binary(min_size=1, max_size=40),
    ),
    st.builds(
        PskThird,
        st.binary(min_size=16, max_size=16),
        st.binary(min_size=16, max_size=16),
        st.binary(min_size=21, max_size=40),
    ),
    st.builds(PskFourth, st.binary(min_size=16, max_size=16), st.binary(min_size=21, max_size=40)),
)


@given(psk_messages, st.integers(0, 255))
def test_psk_messages_round_trip(message: object, identifier: int) -> None:
    assert isinstance(message, PskFirst | PskSecond | PskThird | PskFourth)
    raw = encode_psk(identifier, message)
    packet = decode_eap(raw)
    assert packet.identifier == identifier
    assert decode_psk(packet) == message


@given(st.binary(max_size=80))
def test_decoders_raise_only_decode_error(data: bytes) -> None:
    with contextlib.suppress(DecodeError):
        decode_psk(decode_eap(data))


def _pair(password: str, known: dict[str, str], seed: int = 1) -> tuple[PskPeer, PskAuthenticator]:
    rng = random.Random(seed)
    peer = PskPeer(RBID.encode(), psk_from_password(password), rng.randbytes)
    server = PskAuthenticator(b"meter", known.get, rng.randbytes)
    return peer, server


def _run(peer: PskPeer, server: PskAuthenticator) -> None:
    request: bytes | None = server.start()
    while request is not None:
        response = peer.receive(request)
        request = server.receive(response) if response is not None else None


def test_exchange_succeeds_with_the_right_password() -> None:
    peer, server = _pair(PASSWORD, {RBID: PASSWORD})
    _run(peer, server)
    assert peer.outcome is server.outcome is True
    assert peer.msk == server.msk
    assert peer.msk is not None
    assert len(peer.msk) == 64
    assert server.id_p == RBID


@pytest.mark.parametrize(
    ("password", "known"),
    [("wrongpasswrd", {RBID: PASSWORD}), (PASSWORD, {}), (PASSWORD, {"other": PASSWORD})],
)
def test_exchange_fails_on_wrong_password_or_unknown_id(
    password: str, known: dict[str, str]
) -> None:
    peer, server = _pair(password, known)
    _run(peer, server)
    assert server.outcome is False
    assert peer.outcome is False
    assert server.msk is None


def test_peer_refuses_a_server_that_does_not_hold_the_key() -> None:
    rng = random.Random(2)
    peer = PskPeer(RBID.encode(), psk_from_password(PASSWORD), rng.randbytes)
    server = PskAuthenticator(b"meter", {RBID: PASSWORD}.get, rng.randbytes)
    second = peer.receive(server.start())
    assert second is not None
    third = bytearray(server.receive(second) or b"")
    third[30] ^= 1  # inside MAC_S
    assert peer.receive(bytes(third)) is None
    assert peer.outcome is False


def test_tampered_protected_channel_fails_the_exchange() -> None:
    peer, server = _pair(PASSWORD, {RBID: PASSWORD})
    second = peer.receive(server.start())
    assert second is not None
    third = server.receive(second)
    assert third is not None
    fourth = bytearray(peer.receive(third) or b"")
    fourth[-1] ^= 0x40  # the encrypted R flag
    final = server.receive(bytes(fourth))
    assert final == encode_eap(EapPacket(EapCode.FAILURE, server.identifier))
    assert server.outcome is False


def test_server_ignores_answers_to_other_requests() -> None:
    peer, server = _pair(PASSWORD, {RBID: PASSWORD})
    second = bytearray(peer.receive(server.start()) or b"")
    second[1] ^= 0xFF  # identifier
    assert server.receive(bytes(second)) is None
    assert server.outcome is None
