"""PANA (RFC 5191) carrying EAP-PSK: the B-route join between a Wi-SUN dongle and a meter.

Sans-IO: datagrams in, datagrams out, time passed in as seconds on any monotonic clock,
randomness passed in (``random(n) -> n octets``, ``os.urandom`` by default). The PaC (the
dongle, ``PanaClient``) authenticates to the PAA (the meter, ``PanaServer``) over UDP port 716.

The exchange (RFC 5191 4.1, the PaC-initiated case, EAP answers piggybacked)::

    PaC  PCI(0)                                       ->
         <- PAR[S](x) PRF-Algorithm*, Integrity-Algorithm*       (offers)
    PaC  PAN[S](x) PRF-Algorithm, Integrity-Algorithm ->         (one of each chosen)
         <- PAR(x+1) Nonce, EAP-Payload(EAP-PSK 1)
    PaC  PAN(x+1) Nonce, EAP-Payload(EAP-PSK 2)       ->
         <- PAR(x+2) EAP-Payload(EAP-PSK 3)
    PaC  PAN(x+2) EAP-Payload(EAP-PSK 4)              ->
         <- PAR[C](x+3) Result-Code, EAP-Payload(Success), Key-Id, Session-Lifetime, AUTH
    PaC  PAN[C](x+3) Key-Id, AUTH                     ->

On failure the last request carries Result-Code PANA_AUTHENTICATION_REJECTED and EAP-Failure
and no AUTH; from PAR[C] on every message carries AUTH (see ``pana_message``). SKTERM's
PANA-Termination (PTR with Termination-Cause LOGOUT, answered by PTA) is protected the same way.

Retransmission follows RFC 5191 section 9 without the random jitter (sans-IO code has no
randomness to spare for timers and tests want exact deadlines): the timeout starts at
``initial`` and doubles up to ``maximum``; after ``count`` retransmissions the sender gives up.
Unlike the RFC (PCI_MRC = 0), PCI retransmission is bounded too. A request whose answer was
lost is answered again from a cache of the last answer, as the RFC requires.

Simplified: the PaC always piggybacks its EAP responses in PAN (the RFC also lets it send them
in a PAR of its own; a PAA here waits for piggybacked ones only); no re-authentication, no
ping, no PANA-Notification; the Session-Lifetime is reported but never enforced here. The
16-octet session key handed to the application is openami's own derivation,
``prf+(MSK, "openami B-route session key" | Session Identifier | Key_ID)`` truncated to 16
octets (the Wi-SUN MAC-layer key schedule is out of scope).

Decoders raise only ``DecodeError``. Well-formed messages that do not fit the state (wrong
session, stale sequence number, AUTH that does not verify) are discarded silently, as RFC 5191
prescribes, so ``receive`` then returns no datagram.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import Enum, auto

from openami.errors import LocalProtocolError
from openami.protocols.wisun.eap_psk import PskAuthenticator, PskPeer, psk_from_password
from openami.protocols.wisun.pana_message import (
    INTEGRITY_ALGORITHMS,
    PANA_PORT,
    PRF_ALGORITHMS,
    RESULT_AUTHENTICATION_REJECTED,
    RESULT_SUCCESS,
    TERMINATION_LOGOUT,
    Avp,
    AvpCode,
    Flag,
    KeyContext,
    MessageType,
    PanaMessage,
    decode_message,
    encode_message,
    u32,
)

__all__ = [
    "PANA_PORT",
    "ClientState",
    "PanaClient",
    "PanaServer",
    "PanaSession",
    "Retransmit",
    "ServerState",
]

NONCE_LENGTH = 20
Random = Callable[[int], bytes]


@dataclass(frozen=True, slots=True)
class PanaSession:
    """An authenticated PANA session, the same on both sides."""

    session_id: int
    key: bytes = field(repr=False)  # 16 octets, from the EAP MSK
    key_id: int
    lifetime: int  # seconds, as the PAA granted it
    rbid: str


@dataclass(frozen=True, slots=True)
class Retransmit:
    initial: float = 1.0
    maximum: float = 30.0
    count: int = 10  # retransmissions before giving up

    def timeout(self, attempt: int) -> float:
        return min(self.initial * 2.0**attempt, self.maximum)


@dataclass(slots=True)
class _Pending:
    data: bytes
    sequence: int
    deadline: float
    attempt: int = 0


class _Endpoint:
    """What both roles share: one outstanding request retransmitted on a timer, and the last
    answer kept to repeat it when the peer repeats its request."""

    def __init__(self, policy: Retransmit, random: Random) -> None:
        self._policy = policy
        self._random = random
        self._pending: _Pending | None = None
        self._answer: tuple[int, bytes] | None = None
        self.reason: str | None = None
        self.session_id = 0

    def _request(self, message: PanaMessage, now: float, data: bytes | None = None) -> list[bytes]:
        raw = encode_message(message) if data is None else data
        self._pending = _Pending(raw, message.sequence, now + self._policy.timeout(0))
        return [raw]

    def _reply(self, sequence: int, data: bytes) -> list[bytes]:
        self._answer = (sequence, data)
        return [data]

    def _repeat(self, message: PanaMessage) -> list[bytes] | None:
        """The cached answer if ``message`` repeats the request it answered."""
        if self._answer is not None and self._answer[0] == message.sequence:
            return [self._answer[1]]
        return None

    def _retransmit(self, now: float) -> list[bytes] | None:
        """Datagrams due at ``now``; None when the retransmissions are used up."""
        pending = self._pending
        if pending is None or now < pending.deadline:
            return []
        if pending.attempt >= self._policy.count:
            self._pending = None
            return None
        pending.attempt += 1
        pending.deadline = now + self._policy.timeout(pending.attempt)
        return [pending.data]

    def _next_sequence(self) -> int:
        return int.from_bytes(self._random(4), "big")


# --- PaC -----------------------------------------------------------------------------------


class ClientState(Enum):
    IDLE = auto()
    INITIATING = auto()  # PCI sent
    AUTHENTICATING = auto()
    OPEN = auto()
    TERMINATING = auto()  # PTR sent
    CLOSED = auto()
    FAILED = auto()


class PanaClient(_Endpoint):
    """The PaC: ``start`` sends PCI; ``state`` ends OPEN (``session`` set) or FAILED (``reason``
    says why). ``auth_timeout`` bounds the whole exchange after the PAA answered."""

    def __init__(
        self,
        rbid: str,
        password: str,
        *,
        random: Random = os.urandom,
        initiation: Retransmit = Retransmit(1.0, 120.0, 10),
        request: Retransmit = Retransmit(),
        auth_timeout: float = 60.0,
    ) -> None:
        super().__init__(initiation, random)
        self._request_policy = request
        self._auth_timeout = auth_timeout
        self._auth_deadline: float | None = None
        if not rbid or not rbid.isascii():
            raise LocalProtocolError("a B-route ID is a non-empty ASCII string")
        self.rbid = rbid
        self._eap = PskPeer(rbid.encode("ascii"), psk_from_password(password), random)
        self._crypto: KeyContext | None = None
        self._auth_key = b""
        self._sequence = 0
        self.state = ClientState.IDLE
        self.session: PanaSession | None = None
        self.termination_acknowledged = False

    def start(self, now: float) -> list[bytes]:
        if self.state is not ClientState.IDLE:
            raise LocalProtocolError(f"PANA client already started ({self.state.name})")
        self.state = ClientState.INITIATING
        return self._request(PanaMessage(MessageType.CLIENT_INITIATION, Flag.NONE, 0, 0), now)

    def next_deadline(self) -> float | None:
        times = [self._pending.deadline] if self._pending else []
        if self.state is ClientState.AUTHENTICATING and self._auth_deadline is not None:
            times.append(self._auth_deadline)
        return min(times, default=None)

    def _fail(self, reason: str) -> list[bytes]:
        self.state, self.reason, self._pending = ClientState.FAILED, reason, None
        return []

    def on_timeout(self, now: float) -> list[bytes]:
        due = self._retransmit(now)
        if due is None:
            if self.state is ClientState.TERMINATING:
                self.state, self.reason = ClientState.CLOSED, "no answer to the termination"
                return []
            return self._fail("no answer from the PANA authentication agent")
        deadline = self._auth_deadline
        if self.state is ClientState.AUTHENTICATING and deadline is not None and now >= deadline:
            return self._fail(f"authentication did not finish within {self._auth_timeout} s")
        return due

    def terminate(self, now: float) -> list[bytes]:
        """Send PANA-Termination (SKTERM); ends CLOSED with ``termination_acknowledged``."""
        if self.state is not ClientState.OPEN or self._crypto is None:
            raise LocalProtocolError(f"no open PANA session to terminate ({self.state.name})")
        self._policy = self._request_policy
        self._sequence = (self._sequence + 1) & 0xFFFFFFFF
        cause = Avp(AvpCode.TERMINATION_CAUSE, u32(TERMINATION_LOGOUT))
        message = PanaMessage(
            MessageType.TERMINATION, Flag.REQUEST, self.session_id, self._sequence, (cause,)
        )
        self.state = ClientState.TERMINATING
        return self._request(message, now, self._crypto.sign(message, self._auth_key))

    def receive(self, data: bytes, now: float) -> list[bytes]:
        message = decode_message(data)
        if message.type is MessageType.TERMINATION and not message.is_request:
            return self._termination_answer(message, data)
        if message.type is not MessageType.AUTH or not message.is_request:
            return []
        if message.flags & Flag.START and self.state is ClientState.INITIATING:
            return self._start_answer(message, data, now)
        if message.session_id != self.session_id or self.state is ClientState.INITIATING:
            return []
        repeated = self._repeat(message)
        if repeated is not None:
            return repeated
        if self.state is not ClientState.AUTHENTICATING or self._answer is None:
            return []
        if message.sequence != (self._answer[0] + 1) & 0xFFFFFFFF:
            return []
        return self._auth_request(message, data)

    def _start_answer(self, message: PanaMessage, data: bytes, now: float) -> list[bytes]:
        offered_prf = [int.from_bytes(v, "big") for v in message.values(AvpCode.PRF_ALGORITHM)]
        offered = message.values(AvpCode.INTEGRITY_ALGORITHM)
        offered_integrity = [int.from_bytes(v, "big") for v in offered]
        prf = next((p for p in offered_prf if p in PRF_ALGORITHMS), None)
        integrity = next((i for i in offered_integrity if i in INTEGRITY_ALGORITHMS), None)
        if prf is None or integrity is None or message.session_id == 0:
            return self._fail("the PAA offered no PRF or integrity algorithm we support")
        answer = PanaMessage(
            MessageType.AUTH,
            Flag.START,
            message.session_id,
            message.sequence,
            (
                Avp(AvpCode.PRF_ALGORITHM, u32(prf)),
                Avp(AvpCode.INTEGRITY_ALGORITHM, u32(integrity)),
            ),
        )
        raw = encode_message(answer)
        self._crypto = KeyContext(prf, integrity, i_par=data, i_pan=raw)
        self.session_id, self._pending = message.session_id, None
        self._sequence = self._next_sequence()
        self.state, self._auth_deadline = ClientState.AUTHENTICATING, now + self._auth_timeout
        return self._reply(message.sequence, raw)

    def _auth_request(self, message: PanaMessage, data: bytes) -> list[bytes]:
        assert self._crypto is not None  # set with the [S] answer, before AUTHENTICATING
        avps: list[Avp] = []
        nonce = message.value(AvpCode.NONCE)
        if nonce is not None and not self._crypto.paa_nonce:
            pac_nonce = self._random(NONCE_LENGTH)
            self._crypto = replace(self._crypto, paa_nonce=nonce, pac_nonce=pac_nonce)
            avps.append(Avp(AvpCode.NONCE, pac_nonce))
        eap = message.value(AvpCode.EAP_PAYLOAD)
        response = self._eap.receive(eap) if eap is not None else None
        if message.flags & Flag.COMPLETE:
            return self._complete(message, data)
        if self._eap.outcome is False:
            return self._fail("the meter could not prove it holds the B-route password")
        if response is not None:
            avps.append(Avp(AvpCode.EAP_PAYLOAD, response))
        answer = PanaMessage(
            MessageType.AUTH, Flag.NONE, self.session_id, message.sequence, tuple(avps)
        )
        return self._reply(message.sequence, encode_message(answer))

    def _complete(self, message: PanaMessage, data: bytes) -> list[bytes]:
        assert self._crypto is not None
        result = message.number(AvpCode.RESULT_CODE)
        key_id = message.number(AvpCode.KEY_ID)
        if result != RESULT_SUCCESS:
            answer = PanaMessage(MessageType.AUTH, Flag.COMPLETE, self.session_id, message.sequence)
            self._fail(f"the meter rejected the B-route ID or password (Result-Code {result})")
            return self._reply(message.sequence, encode_message(answer))
        msk = self._eap.msk
        if not self._eap.outcome or msk is None or key_id is None:
            return self._fail("PANA success without a completed EAP-PSK exchange")
        key = self._crypto.auth_key(msk, key_id)
        if not self._crypto.verify(data, key):
            return []  # RFC 5191 5.3: a message whose AUTH does not verify is discarded
        self._auth_key = key
        lifetime = message.number(AvpCode.SESSION_LIFETIME) or 0
        session_key = self._crypto.session_key(msk, self.session_id, key_id)
        self.session = PanaSession(self.session_id, session_key, key_id, lifetime, self.rbid)
        self.state = ClientState.OPEN
        answer = PanaMessage(
            MessageType.AUTH,
            Flag.COMPLETE,
            self.session_id,
            message.sequence,
            (Avp(AvpCode.KEY_ID, u32(key_id)),),
        )
        return self._reply(message.sequence, self._crypto.sign(answer, key))

    def _termination_answer(self, message: PanaMessage, data: bytes) -> list[bytes]:
        pending = self._pending
        if self.state is not ClientState.TERMINATING or self._crypto is None or pending is None:
            return []
        if message.sequence != pending.sequence or message.session_id != self.session_id:
            return []
        if not self._crypto.verify(data, self._auth_key):
            return []
        self.state, self._pending, self.termination_acknowledged = ClientState.CLOSED, None, True
        self.reason = "terminated"
        return []


# --- PAA -----------------------------------------------------------------------------------


class ServerState(Enum):
    IDLE = auto()
    STARTING = auto()  # PAR[S] sent
    AUTHENTICATING = auto()
    COMPLETING = auto()  # PAR[C] sent, outcome decided
    OPEN = auto()
    CLOSED = auto()  # terminated by the PaC
    FAILED = auto()


class PanaServer(_Endpoint):
    """The PAA for one PaC. ``lookup(rbid)`` gives the B-route password or None (unknown or
    revoked); ``state`` ends OPEN with ``session`` only if the ID is known and the PaC proved
    the password, FAILED otherwise."""

    def __init__(
        self,
        lookup: Callable[[str], str | None],
        *,
        server_id: bytes = b"openami-meter",
        random: Random = os.urandom,
        request: Retransmit = Retransmit(),
        session_lifetime: int = 86_400,
    ) -> None:
        super().__init__(request, random)
        self._eap = PskAuthenticator(server_id, lookup, random)
        self._lifetime = session_lifetime
        self._crypto: KeyContext | None = None
        self._key_id = 0
        self._auth_key = b""
        self.state = ServerState.IDLE
        self.session: PanaSession | None = None

    @property
    def rbid(self) -> str | None:
        return self._eap.id_p

    def next_deadline(self) -> float | None:
        return self._pending.deadline if self._pending else None

    def on_timeout(self, now: float) -> list[bytes]:
        due = self._retransmit(now)
        if due is None:
            self.state, self.reason = ServerState.FAILED, "the PaC stopped answering"
            return []
        return due

    def receive(self, data: bytes, now: float) -> list[bytes]:
        message = decode_message(data)
        if message.type is MessageType.CLIENT_INITIATION:
            if self.state is ServerState.IDLE:
                return self._start(now)
            if self.state is ServerState.STARTING and self._pending is not None:
                return [self._pending.data]
            return []
        if message.session_id != self.session_id or self.session_id == 0:
            return []
        if message.type is MessageType.TERMINATION and message.is_request:
            return self._termination(message, data)
        pending = self._pending
        if message.type is not MessageType.AUTH or message.is_request or pending is None:
            return []
        if message.sequence != pending.sequence:
            return []
        if self.state is ServerState.STARTING:
            return self._start_answer(message, data, now)
        if self.state is ServerState.AUTHENTICATING:
            return self._auth_answer(message, now)
        if self.state is ServerState.COMPLETING and message.flags & Flag.COMPLETE:
            return self._complete_answer(data)
        return []

    def _start(self, now: float) -> list[bytes]:
        self.session_id = int.from_bytes(self._random(4), "big") or 1
        avps = [Avp(AvpCode.PRF_ALGORITHM, u32(p)) for p in PRF_ALGORITHMS]
        avps += [Avp(AvpCode.INTEGRITY_ALGORITHM, u32(i)) for i in INTEGRITY_ALGORITHMS]
        flags = Flag.REQUEST | Flag.START
        message = PanaMessage(
            MessageType.AUTH, flags, self.session_id, self._next_sequence(), tuple(avps)
        )
        self.state = ServerState.STARTING
        sent = self._request(message, now)
        self._crypto = KeyContext(0, 0, i_par=sent[0])
        return sent

    def _next_request(
        self, avps: tuple[Avp, ...], now: float, flags: Flag = Flag.NONE
    ) -> list[bytes]:
        assert self._pending is not None
        assert self._crypto is not None
        sequence = (self._pending.sequence + 1) & 0xFFFFFFFF
        message = PanaMessage(
            MessageType.AUTH, Flag.REQUEST | flags, self.session_id, sequence, avps
        )
        signed = self._crypto.sign(message, self._auth_key) if self._auth_key else None
        return self._request(message, now, signed)

    def _start_answer(self, message: PanaMessage, data: bytes, now: float) -> list[bytes]:
        assert self._crypto is not None
        prf = [int.from_bytes(v, "big") for v in message.values(AvpCode.PRF_ALGORITHM)]
        integrity = [int.from_bytes(v, "big") for v in message.values(AvpCode.INTEGRITY_ALGORITHM)]
        if not message.flags & Flag.START or len(prf) != 1 or len(integrity) != 1:
            return []
        if prf[0] not in PRF_ALGORITHMS or integrity[0] not in INTEGRITY_ALGORITHMS:
            self.state, self.reason, self._pending = ServerState.FAILED, "bad algorithms", None
            return []
        paa_nonce = self._random(NONCE_LENGTH)
        self._crypto = replace(
            self._crypto, prf=prf[0], integrity=integrity[0], i_pan=data, paa_nonce=paa_nonce
        )
        self.state = ServerState.AUTHENTICATING
        avps = (Avp(AvpCode.NONCE, paa_nonce), Avp(AvpCode.EAP_PAYLOAD, self._eap.start()))
        return self._next_request(avps, now)

    def _auth_answer(self, message: PanaMessage, now: float) -> list[bytes]:
        assert self._crypto is not None
        if not self._crypto.pac_nonce:
            nonce = message.value(AvpCode.NONCE)
            if nonce is None:
                return []
            self._crypto = replace(self._crypto, pac_nonce=nonce)
        eap = message.value(AvpCode.EAP_PAYLOAD)
        following = self._eap.receive(eap) if eap is not None else None
        if following is None:
            return []  # no (usable) EAP answer: our request is retransmitted on its timer
        outcome = self._eap.outcome
        if outcome is None:
            return self._next_request((Avp(AvpCode.EAP_PAYLOAD, following),), now)
        result = RESULT_SUCCESS if outcome else RESULT_AUTHENTICATION_REJECTED
        avps = [Avp(AvpCode.RESULT_CODE, u32(result)), Avp(AvpCode.EAP_PAYLOAD, following)]
        self.state = ServerState.COMPLETING
        msk = self._eap.msk
        if not outcome or msk is None:
            self.reason = f"B-route ID {self._eap.id_p!r} unknown, revoked or wrong password"
            return self._next_request(tuple(avps), now, Flag.COMPLETE)
        self._key_id = int.from_bytes(self._random(4), "big")
        avps += [
            Avp(AvpCode.KEY_ID, u32(self._key_id)),
            Avp(AvpCode.SESSION_LIFETIME, u32(self._lifetime)),
        ]
        self._auth_key = self._crypto.auth_key(msk, self._key_id)
        return self._next_request(tuple(avps), now, Flag.COMPLETE)

    def _complete_answer(self, data: bytes) -> list[bytes]:
        assert self._crypto is not None
        self._pending = None
        msk, rbid = self._eap.msk, self._eap.id_p
        if not self._eap.outcome or msk is None or rbid is None:
            self.state = ServerState.FAILED
            return []
        if not self._crypto.verify(data, self._auth_key):
            self.state, self.reason = ServerState.FAILED, "the PaC's final AUTH does not verify"
            return []
        if decode_message(data).number(AvpCode.KEY_ID) != self._key_id:
            self.state, self.reason = ServerState.FAILED, "the PaC answered with another Key-Id"
            return []
        key = self._crypto.session_key(msk, self.session_id, self._key_id)
        self.session = PanaSession(self.session_id, key, self._key_id, self._lifetime, rbid)
        self.state = ServerState.OPEN
        return []

    def _termination(self, message: PanaMessage, data: bytes) -> list[bytes]:
        repeated = self._repeat(message)
        if repeated is not None and self.state is ServerState.CLOSED:
            return repeated
        if self.state is not ServerState.OPEN or self._crypto is None:
            return []
        if not self._crypto.verify(data, self._auth_key):
            return []
        answer = PanaMessage(MessageType.TERMINATION, Flag.NONE, self.session_id, message.sequence)
        self.state, self.reason = ServerState.CLOSED, "terminated by the PaC"
        return self._reply(message.sequence, self._crypto.sign(answer, self._auth_key))
