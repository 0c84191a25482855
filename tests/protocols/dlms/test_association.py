from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openami.errors import LocalProtocolError, RemoteProtocolError
from openami.protocols.dlms.acse import AcseResult, Mechanism, SourceDiagnostic
from openami.protocols.dlms.apdu import decode_apdu, encode_apdu
from openami.protocols.dlms.association import (
    CLIENT_TRANSITIONS,
    SERVER_TRANSITIONS,
    Associated,
    AssociationState,
    ClientAssociation,
    ClientSettings,
    HlsRequired,
    Rejected,
    Released,
    Reply,
    Response,
    ServerAssociation,
    ServerSettings,
    ServiceIndication,
)
from openami.protocols.dlms.axdr import Data, DataType
from openami.protocols.dlms.security import SuiteZero
from openami.protocols.dlms.services import (
    CipheredService,
    ExceptionResponse,
    GetRequestNormal,
    GetResponseNormal,
)

EK = bytes(range(16))
AK = bytes(range(0xD0, 0xE0))
METER = b"OAM\x00\x00\x00\x00\x07"
HES = b"OAMHES01"
CLOCK_GET = GetRequestNormal(0xC1, 8, bytes([0, 0, 1, 0, 0, 255]), 2)


def hls_pair(client_keys: SuiteZero | None = None) -> tuple[ClientAssociation, ServerAssociation]:
    server = ServerAssociation(
        ServerSettings(
            METER, SuiteZero(EK, AK), Mechanism.HIGH_GMAC, ciphered=True, invocation_counter=100
        )
    )
    client = ClientAssociation(
        ClientSettings(
            HES, client_keys or SuiteZero(EK, AK), Mechanism.HIGH_GMAC, invocation_counter=5
        )
    )
    return client, server


def _server_reply(server: ServerAssociation, data: bytes, challenge: bytes = b"") -> bytes:
    out = server.receive(data, challenge)
    assert isinstance(out, Reply)
    return out.data


def associate_hls(client: ClientAssociation, server: ServerAssociation) -> None:
    aare = _server_reply(server, client.associate(b"CtoS-chal"), b"StoC-chal")
    assert server.state is AssociationState.AWAITING_HLS
    assert isinstance(client.receive(aare), HlsRequired)
    answer = _server_reply(server, client.reply_to_hls())
    event = client.receive(answer)
    assert isinstance(event, Associated)
    assert server.state is client.state is AssociationState.ASSOCIATED


def test_hls_gmac_suite0_association_then_a_ciphered_get_and_release() -> None:
    client, server = hls_pair()
    associate_hls(client, server)
    wire = client.request(CLOCK_GET)
    outer = decode_apdu(wire)
    assert isinstance(outer, CipheredService)
    assert outer.name == "glo-get-request"
    assert b"\x00\x00\x01\x00\x00\xff" not in wire  # nothing readable on the wire
    indication = server.receive(wire)
    assert isinstance(indication, ServiceIndication)
    assert indication.request == CLOCK_GET
    answer = server.respond(
        indication, GetResponseNormal(0xC1, Data(DataType.OCTET_STRING, b"x" * 12))
    )
    event = client.receive(answer)
    assert isinstance(event, Response)
    assert event.apdu == GetResponseNormal(0xC1, Data(DataType.OCTET_STRING, b"x" * 12))
    assert isinstance(client.receive(_server_reply(server, client.release())), Released)
    assert server.state is client.state is AssociationState.IDLE


def test_a_client_with_the_wrong_key_fails_hls_and_gets_no_association() -> None:
    client, server = hls_pair(client_keys=SuiteZero(bytes(16), AK))
    aare = server.receive(client.associate(b"CtoS-chal"), b"StoC-chal")
    # the ciphered initiate-request does not open under the meter's key: rejected outright
    assert isinstance(aare, Reply)
    event = client.receive(aare.data)
    assert isinstance(event, Rejected)
    assert server.state is AssociationState.IDLE


def test_a_wrong_hls_answer_drops_the_association() -> None:
    client, server = hls_pair()
    aare = _server_reply(server, client.associate(b"CtoS-chal"), b"StoC-chal")
    client.receive(aare)
    client._stoc = b"not-the-challenge"  # answer a different challenge
    answer = _server_reply(server, client.reply_to_hls())
    assert server.state is AssociationState.IDLE
    with pytest.raises(Exception, match="refused"):
        client.receive(answer)


def test_replayed_ciphered_request_is_answered_with_an_invocation_counter_error() -> None:
    client, server = hls_pair()
    associate_hls(client, server)
    wire = client.request(CLOCK_GET)
    indication = server.receive(wire)
    assert isinstance(indication, ServiceIndication)
    server.respond(indication, GetResponseNormal(0xC1, Data(DataType.NULL, None)))
    replay = server.receive(wire)
    assert isinstance(replay, Reply)
    refused = decode_apdu(replay.data)
    assert isinstance(refused, ExceptionResponse)
    assert refused.service_error == 6


def test_clear_text_is_refused_in_a_ciphered_association() -> None:
    client, server = hls_pair()
    associate_hls(client, server)
    out = server.receive(encode_apdu(CLOCK_GET))
    assert isinstance(out, Reply)
    assert isinstance(decode_apdu(out.data), ExceptionResponse)


def test_services_before_hls_is_done_are_not_allowed() -> None:
    client, server = hls_pair()
    client.receive(_server_reply(server, client.associate(b"CtoS-chal"), b"StoC-chal"))
    assert client.state is AssociationState.AWAITING_HLS
    with pytest.raises(LocalProtocolError):
        client.request(CLOCK_GET)
    sneaky = client._cipher.seal(encode_apdu(CLOCK_GET), False)  # type: ignore[union-attr]
    out = server.receive(sneaky)
    assert isinstance(out, Reply)
    assert isinstance(decode_apdu(out.data), ExceptionResponse)
    assert server.state is AssociationState.AWAITING_HLS


@pytest.mark.parametrize(("password", "accepted"), [(b"12345678", True), (b"wrong!!!", False)])
def test_lls_password(password: bytes, accepted: bool) -> None:
    server = ServerAssociation(ServerSettings(METER, mechanism=Mechanism.LOW, password=b"12345678"))
    client = ClientAssociation(ClientSettings(HES, mechanism=Mechanism.LOW, password=password))
    event = client.receive(_server_reply(server, client.associate()))
    if accepted:
        assert isinstance(event, Associated)
        assert isinstance(server.receive(client.request(CLOCK_GET)), ServiceIndication)
    else:
        assert event == Rejected(
            AcseResult.REJECTED_PERMANENT, SourceDiagnostic.AUTHENTICATION_FAILURE
        )


def test_lowest_level_client_is_refused_where_hls_is_required() -> None:
    _, server = hls_pair()
    plain = ClientAssociation(ClientSettings(HES))
    event = plain.receive(_server_reply(server, plain.associate()))
    assert isinstance(event, Rejected)
    assert event.diagnostic == SourceDiagnostic.APPLICATION_CONTEXT_NAME_NOT_SUPPORTED


def test_dedicated_key_protects_ded_apdus() -> None:
    server = ServerAssociation(
        ServerSettings(METER, SuiteZero(EK, AK), Mechanism.HIGH_GMAC, ciphered=True)
    )
    client = ClientAssociation(
        ClientSettings(
            HES, SuiteZero(EK, AK), Mechanism.HIGH_GMAC, dedicated_key=bytes(range(16, 32))
        )
    )
    associate_hls(client, server)
    wire = client.request(CLOCK_GET, dedicated=True)
    outer = decode_apdu(wire)
    assert isinstance(outer, CipheredService)
    assert outer.name == "ded-get-request"
    indication = server.receive(wire)
    assert isinstance(indication, ServiceIndication)
    assert indication.dedicated
    reply = decode_apdu(
        server.respond(indication, GetResponseNormal(0xC1, Data(DataType.NULL, None)))
    )
    assert isinstance(reply, CipheredService)
    assert reply.name == "ded-get-response"


def test_caller_mistakes_are_local_errors() -> None:
    client = ClientAssociation(ClientSettings(HES))
    with pytest.raises(LocalProtocolError):
        client.request(CLOCK_GET)
    with pytest.raises(LocalProtocolError):
        client.release()
    client.associate()
    with pytest.raises(LocalProtocolError):
        client.associate()
    with pytest.raises(LocalProtocolError):
        ClientAssociation(ClientSettings(HES, mechanism=Mechanism.HIGH_GMAC))


def test_peer_mistakes_are_remote_errors() -> None:
    server = ServerAssociation(ServerSettings(METER))
    with pytest.raises(RemoteProtocolError):
        server.receive(b"\x62\x03\x80\x01\x00")  # RLRQ with no association
    client = ClientAssociation(ClientSettings(HES))
    with pytest.raises(RemoteProtocolError):
        client.receive(encode_apdu(GetResponseNormal(1, Data(DataType.NULL, None))))


def test_state_tables_only_name_known_states() -> None:
    for table in (SERVER_TRANSITIONS, CLIENT_TRANSITIONS):
        for (state, _event), nxt in table.items():
            assert isinstance(state, AssociationState)
            assert isinstance(nxt, AssociationState)


@settings(max_examples=60)
@given(
    st.lists(
        st.sampled_from(["associate", "hls", "get", "release", "garbage", "replay"]), max_size=12
    )
)
def test_any_sequence_of_client_actions_keeps_both_sides_consistent(steps: list[str]) -> None:
    client, server = hls_pair()
    last = b""
    for step in steps:
        try:
            if step == "associate":
                wire = client.associate(b"CtoS-chal")
            elif step == "hls":
                wire = client.reply_to_hls()
            elif step == "get":
                wire = client.request(CLOCK_GET)
            elif step == "release":
                wire = client.release()
            elif step == "garbage":
                wire = b"\xc0\x01"
            else:
                wire = last
        except LocalProtocolError:
            continue
        if not wire:
            continue
        last = wire
        try:
            out = server.receive(wire, b"StoC-chal")
        except RemoteProtocolError:
            continue
        if isinstance(out, ServiceIndication):
            answer = server.respond(out, GetResponseNormal(0xC1, Data(DataType.NULL, None)))
        else:
            answer = out.data
        try:
            client.receive(answer)
        except RemoteProtocolError:
            continue
        # the server never counts a client as associated unless the client thinks so too
        if server.state is AssociationState.ASSOCIATED:
            assert client.state in (AssociationState.ASSOCIATED, AssociationState.RELEASING)


def test_a_pre_established_association_must_be_ciphered() -> None:
    with pytest.raises(LocalProtocolError, match="ciphered"):
        ServerAssociation.pre_established(ServerSettings(METER), HES)
    server = ServerAssociation.pre_established(
        ServerSettings(METER, SuiteZero(EK, AK), ciphered=True, client_invocation_counter=7), HES
    )
    assert server.state is AssociationState.ASSOCIATED
    assert server.counters == (0, 7)  # counters carry on from the settings
