from __future__ import annotations

import contextlib
import random
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from openami.errors import DecodeError, LocalProtocolError
from openami.protocols.wisun.pana import (
    ClientState,
    PanaClient,
    PanaServer,
    Retransmit,
    ServerState,
)
from openami.protocols.wisun.pana_message import (
    Avp,
    AvpCode,
    Flag,
    MessageType,
    PanaMessage,
    decode_message,
    encode_message,
)

RBID = "00112233445566778899AABBCCDDEEFF"
PASSWORD = "0123456789AB"
FAST = Retransmit(1.0, 4.0, 3)

Drop = Callable[[str, int, bytes], bool]  # direction ("up": PaC->PAA), index, datagram


class Wire:
    """Carries datagrams both ways in memory; ``drop`` loses the ones it picks. Time moves to
    the next deadline when nothing is in flight."""

    def __init__(self, client: PanaClient, server: PanaServer, drop: Drop | None = None) -> None:
        self.client, self.server, self.now = client, server, 0.0
        self.drop = drop or (lambda direction, index, data: False)
        self.sent = {"up": 0, "down": 0}
        self.log: list[tuple[str, bytes]] = []

    def _carry(self, direction: str, datagrams: list[bytes]) -> list[bytes]:
        kept = []
        for data in datagrams:
            self.log.append((direction, data))
            index = self.sent[direction]
            self.sent[direction] += 1
            if not self.drop(direction, index, data):
                kept.append(data)
        return kept

    def run(self, up: list[bytes], rounds: int = 200) -> None:
        for _ in range(rounds):
            down: list[bytes] = []
            for data in self._carry("up", up):
                down += self.server.receive(data, self.now)
            up = []
            for data in self._carry("down", down):
                up += self.client.receive(data, self.now)
            if up:
                continue
            deadlines = [d for d in (self.client.next_deadline(), self.server.next_deadline()) if d]
            if not deadlines:
                return
            self.now = min(deadlines)
            up = self.client.on_timeout(self.now)
            up += self._resend_down(self.server.on_timeout(self.now))
        raise AssertionError("the exchange did not settle")

    def _resend_down(self, datagrams: list[bytes]) -> list[bytes]:
        up = []
        for data in self._carry("down", datagrams):
            up += self.client.receive(data, self.now)
        return up


def _state(client: PanaClient) -> ClientState:
    """The state read afresh (mypy narrows ``client.state`` after an assert on it)."""
    return client.state


def _client(password: str = PASSWORD, seed: int = 1) -> PanaClient:
    rng = random.Random(seed)
    return PanaClient(
        RBID, password, random=rng.randbytes, initiation=FAST, request=FAST, auth_timeout=30.0
    )


def _server(known: dict[str, str], seed: int = 2) -> PanaServer:
    return PanaServer(known.get, random=random.Random(seed).randbytes, request=FAST)


def _join(password: str, known: dict[str, str], drop: Drop | None = None) -> Wire:
    client, server = _client(password), _server(known)
    wire = Wire(client, server, drop)
    wire.run(client.start(0.0))
    return wire


def test_join_succeeds_and_both_sides_share_the_session() -> None:
    wire = _join(PASSWORD, {RBID: PASSWORD})
    client, server = wire.client, wire.server
    assert client.state is ClientState.OPEN
    assert server.state is ServerState.OPEN
    assert client.session == server.session
    assert client.session is not None
    assert len(client.session.key) == 16
    assert client.session.rbid == RBID == server.rbid
    assert client.session.lifetime == 86_400
    kinds = [(d, decode_message(m).type, decode_message(m).flags) for d, m in wire.log]
    assert kinds[:3] == [
        ("up", MessageType.CLIENT_INITIATION, Flag.NONE),
        ("down", MessageType.AUTH, Flag.REQUEST | Flag.START),
        ("up", MessageType.AUTH, Flag.START),
    ]
    assert kinds[-2:] == [
        ("down", MessageType.AUTH, Flag.REQUEST | Flag.COMPLETE),
        ("up", MessageType.AUTH, Flag.COMPLETE),
    ]
    final = decode_message(wire.log[-1][1])
    assert final.value(AvpCode.AUTH) is not None


def test_session_keys_differ_between_joins() -> None:
    first = _join(PASSWORD, {RBID: PASSWORD}).client.session
    client, server = _client(seed=5), _server({RBID: PASSWORD}, seed=6)
    Wire(client, server).run(client.start(0.0))
    assert first is not None
    assert client.session is not None
    assert client.session.key != first.key


def test_wrong_password_fails_on_both_sides() -> None:
    wire = _join("wrongpasswrd", {RBID: PASSWORD})
    assert wire.client.state is ClientState.FAILED
    assert wire.server.state is ServerState.FAILED
    assert wire.client.session is wire.server.session is None
    assert "rejected" in (wire.client.reason or "")
    final = decode_message(wire.log[-2][1])
    assert final.number(AvpCode.RESULT_CODE) == 1
    assert final.value(AvpCode.AUTH) is None


def test_unknown_rbid_fails() -> None:
    wire = _join(PASSWORD, {})
    assert wire.client.state is ClientState.FAILED
    assert wire.server.state is ServerState.FAILED


def test_revoked_rbid_cannot_join_again() -> None:
    known = {RBID: PASSWORD}
    assert _join(PASSWORD, known).client.state is ClientState.OPEN
    del known[RBID]
    again = _join(PASSWORD, known)
    assert again.client.state is ClientState.FAILED
    assert again.server.state is ServerState.FAILED


def test_lost_messages_are_retransmitted_both_ways() -> None:
    lost = {("up", 0), ("down", 0), ("up", 2), ("down", 3), ("up", 5)}
    wire = _join(PASSWORD, {RBID: PASSWORD}, lambda d, i, data: (d, i) in lost)
    assert wire.client.state is ClientState.OPEN
    assert wire.server.state is ServerState.OPEN
    assert wire.now > 0


def test_client_gives_up_after_bounded_retransmissions() -> None:
    client = _client()
    sent = client.start(0.0)
    deadlines = []
    while client.state is ClientState.INITIATING:
        deadline = client.next_deadline()
        assert deadline is not None
        deadlines.append(deadline)
        sent += client.on_timeout(deadline)
    assert client.state is ClientState.FAILED
    assert len(sent) == FAST.count + 1
    assert deadlines == [1.0, 3.0, 7.0, 11.0]  # 1, 2, 4, then capped at 4
    assert client.next_deadline() is None


def test_server_gives_up_when_the_pac_goes_silent() -> None:
    wire = _join(PASSWORD, {RBID: PASSWORD}, lambda d, i, data: d == "up" and i >= 1)
    assert wire.server.state is ServerState.FAILED
    assert wire.client.state is ClientState.FAILED
    assert wire.server.next_deadline() is None


def test_client_gives_up_when_authentication_stalls() -> None:
    client = PanaClient(RBID, PASSWORD, auth_timeout=5.0, request=FAST, initiation=FAST)
    server = _server({RBID: PASSWORD})
    par_start = server.receive(client.start(0.0)[0], 0.0)
    client.receive(par_start[0], 0.5)  # then the PAA is never heard again
    assert client.state is ClientState.AUTHENTICATING
    assert client.next_deadline() == 5.5
    client.on_timeout(5.5)
    assert _state(client) is ClientState.FAILED


def test_final_request_with_a_bad_auth_is_discarded() -> None:
    client, server = _client(), _server({RBID: PASSWORD})
    up, final = client.start(0.0), []
    for _ in range(5):
        final = [r for d in up for r in server.receive(d, 0.0)]
        if server.state is ServerState.COMPLETING:
            break
        up = [r for d in final for r in client.receive(d, 0.0)]
    assert server.state is ServerState.COMPLETING
    tampered = bytearray(final[0])
    tampered[-1] ^= 1  # inside the AUTH value
    assert client.receive(bytes(tampered), 0.0) == []
    assert client.state is ClientState.AUTHENTICATING
    assert client.receive(final[0], 0.0) != []
    assert _state(client) is ClientState.OPEN


def test_termination_is_acknowledged_or_times_out() -> None:
    wire = _join(PASSWORD, {RBID: PASSWORD})
    client, server = wire.client, wire.server
    wire.run(client.terminate(wire.now))
    assert client.state is ClientState.CLOSED
    assert client.termination_acknowledged
    assert server.state is ServerState.CLOSED

    silent = _join(PASSWORD, {RBID: PASSWORD})
    silent.drop = lambda d, i, data: d == "up"
    silent.run(silent.client.terminate(silent.now))
    assert silent.client.state is ClientState.CLOSED
    assert not silent.client.termination_acknowledged
    assert silent.server.state is ServerState.OPEN


def test_caller_misuse_is_a_local_error() -> None:
    client = _client()
    client.start(0.0)
    with pytest.raises(LocalProtocolError):
        client.start(0.0)
    with pytest.raises(LocalProtocolError):
        client.terminate(0.0)
    with pytest.raises(LocalProtocolError):
        PanaClient("", PASSWORD)
    with pytest.raises(LocalProtocolError):
        PanaClient(RBID, "パスワード")


def test_unexpected_messages_are_discarded() -> None:
    server = _server({RBID: PASSWORD})
    answer = PanaMessage(MessageType.AUTH, Flag.START, 99, 1)
    assert server.receive(encode_message(answer), 0.0) == []
    client = _client()
    client.start(0.0)
    request = PanaMessage(MessageType.AUTH, Flag.REQUEST, 7, 1)  # no START, no session yet
    assert client.receive(encode_message(request), 0.0) == []
    assert client.state is ClientState.INITIATING


avps = st.builds(
    Avp,
    st.integers(0, 0xFFFF),
    st.binary(max_size=40),
    st.one_of(st.none(), st.integers(0, 0xFFFFFFFF)),
)
messages = st.builds(
    PanaMessage,
    st.sampled_from(MessageType),
    st.sampled_from([Flag.NONE, Flag.REQUEST, Flag.REQUEST | Flag.START, Flag.COMPLETE]),
    st.integers(0, 0xFFFFFFFF),
    st.integers(0, 0xFFFFFFFF),
    st.lists(avps, max_size=6).map(tuple),
)


@given(messages)
def test_messages_round_trip(message: PanaMessage) -> None:
    raw = encode_message(message)
    assert len(raw) % 4 == 0
    assert decode_message(raw) == message


@given(st.binary(max_size=120))
def test_decoder_raises_only_decode_error(data: bytes) -> None:
    with contextlib.suppress(DecodeError):
        decode_message(data)


@given(messages, st.data())
def test_cut_or_damaged_messages_raise_only_decode_error(
    message: PanaMessage, data: st.DataObject
) -> None:
    raw = bytearray(encode_message(message))
    cut = data.draw(st.integers(0, len(raw)))
    position = data.draw(st.integers(0, len(raw) - 1))
    raw[position] = data.draw(st.integers(0, 255))
    for candidate in (bytes(raw[:cut]), bytes(raw)):
        with contextlib.suppress(DecodeError):
            decode_message(candidate)


def test_decoder_refuses_bad_lengths() -> None:
    raw = encode_message(
        PanaMessage(MessageType.AUTH, Flag.REQUEST, 1, 2, (Avp(AvpCode.NONCE, b"abc"),))
    )
    with pytest.raises(DecodeError):
        decode_message(raw + b"\x00")  # Message Length no longer matches
    with pytest.raises(DecodeError):
        decode_message(raw[:-4][:2] + (len(raw) - 4).to_bytes(2, "big") + raw[4:-4])
    bad_type = raw[:6] + b"\x00\x09" + raw[8:]
    with pytest.raises(DecodeError):
        decode_message(bad_type)


@given(st.data())
def test_damaged_datagrams_mid_exchange_raise_only_decode_error(data: st.DataObject) -> None:
    log = _join(PASSWORD, {RBID: PASSWORD}).log
    index = data.draw(st.integers(0, len(log) - 1))
    direction, raw = log[index]
    damaged = bytearray(raw)
    for _ in range(data.draw(st.integers(1, 3))):
        damaged[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    # the same seeds replay the same exchange up to the damaged datagram
    client, server = _client(), _server({RBID: PASSWORD})
    client.start(0.0)
    for way, earlier in log[:index]:
        (server if way == "up" else client).receive(earlier, 0.0)
    target = server if direction == "up" else client
    with contextlib.suppress(DecodeError):
        target.receive(bytes(damaged), 0.0)
    with contextlib.suppress(DecodeError):
        target.receive(bytes(damaged[: data.draw(st.integers(0, len(raw)))]), 0.0)
