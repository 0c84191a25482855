"""Application association state machines for a DLMS/COSEM server and client (sans-IO).

Bytes in, events and bytes out; no sockets, clocks or randomness inside (challenges are
passed in). Each side has one state table: ``SERVER_TRANSITIONS`` and ``CLIENT_TRANSITIONS``
map (state, event) to the next state, and anything not in the table is a protocol error.
A peer that breaks the rules raises ``RemoteProtocolError`` (or gets an exception-response
when DLMS defines one); a caller that breaks them raises ``LocalProtocolError``.

Security: in the ciphered LN context every service APDU after the AARQ is protected with
suite 0 (authenticated encryption) under the global key, or under the dedicated key when
the client proposed one; invocation counters must rise. Authentication is LLS (password) or
HLS with GMAC (mechanism 5): after the AARE, the client proves it holds the keys by answering
the server's challenge with reply_to_HLS_authentication (class 15, method 1) and the server
answers the client's challenge in the action response.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import Enum, auto

from openami.errors import DecodeError, LocalProtocolError, RemoteProtocolError, SecurityError
from openami.protocols.dlms.acse import (
    AARE,
    AARQ,
    RLRE,
    RLRQ,
    AcseResult,
    ApplicationContext,
    InitiateRequest,
    InitiateResponse,
    Mechanism,
    SourceDiagnostic,
    decode_initiate_request,
    decode_initiate_response,
    encode_initiate_request,
    encode_initiate_response,
)
from openami.protocols.dlms.apdu import Apdu, GeneralGloCiphering, decode_apdu, encode_apdu
from openami.protocols.dlms.axdr import Data, DataType
from openami.protocols.dlms.security import SuiteZero, check_password
from openami.protocols.dlms.services import (
    ActionRequestNormal,
    ActionResponseNormal,
    ActionResult,
    CipheredService,
    ExceptionResponse,
    MethodDescriptor,
)

__all__ = [
    "ASSOCIATION_LN",
    "AssociationState",
    "ClientAssociation",
    "ClientSettings",
    "ServerAssociation",
    "ServerSettings",
]

ASSOCIATION_LN = bytes((0, 0, 40, 0, 0, 255))
REPLY_TO_HLS = MethodDescriptor(15, ASSOCIATION_LN, 1)
_GLO = {0xC0: 0xC8, 0xC1: 0xC9, 0xC3: 0xCB, 0xC4: 0xCC, 0xC5: 0xCD, 0xC7: 0xCF}
_DED = {0xC0: 0xD0, 0xC1: 0xD1, 0xC3: 0xD3, 0xC4: 0xD4, 0xC5: 0xD5, 0xC7: 0xD7}
_PLAIN_OF = {v: k for k, v in _GLO.items()} | {v: k for k, v in _DED.items()}
SERVICE_NOT_ALLOWED = 1  # exception-response state-error
OPERATION_NOT_POSSIBLE, DECIPHERING_ERROR, COUNTER_ERROR = 1, 5, 6


class AssociationState(Enum):
    IDLE = auto()
    AWAITING_AARE = auto()  # client: AARQ sent
    AWAITING_HLS = auto()  # AARE accepted, HLS pass 3/4 not yet done
    ASSOCIATED = auto()
    RELEASING = auto()  # client: RLRQ sent


S = AssociationState
# (state, event) -> next state. Events: what arrived (server) or what the caller did (client).
SERVER_TRANSITIONS: dict[tuple[AssociationState, str], AssociationState] = {
    (S.IDLE, "aarq-accepted"): S.ASSOCIATED,
    (S.IDLE, "aarq-accepted-hls"): S.AWAITING_HLS,
    (S.IDLE, "aarq-rejected"): S.IDLE,
    (S.AWAITING_HLS, "hls-passed"): S.ASSOCIATED,
    (S.AWAITING_HLS, "hls-failed"): S.IDLE,
    (S.AWAITING_HLS, "rlrq"): S.IDLE,
    (S.ASSOCIATED, "service"): S.ASSOCIATED,
    (S.ASSOCIATED, "rlrq"): S.IDLE,
}
CLIENT_TRANSITIONS: dict[tuple[AssociationState, str], AssociationState] = {
    (S.IDLE, "send-aarq"): S.AWAITING_AARE,
    (S.AWAITING_AARE, "aare-accepted"): S.ASSOCIATED,
    (S.AWAITING_AARE, "aare-accepted-hls"): S.AWAITING_HLS,
    (S.AWAITING_AARE, "aare-rejected"): S.IDLE,
    (S.AWAITING_HLS, "hls-passed"): S.ASSOCIATED,
    (S.ASSOCIATED, "service"): S.ASSOCIATED,
    (S.ASSOCIATED, "send-rlrq"): S.RELEASING,
    (S.AWAITING_HLS, "send-rlrq"): S.RELEASING,
    (S.RELEASING, "rlre"): S.IDLE,
}


def _step(
    table: dict[tuple[AssociationState, str], AssociationState],
    state: AssociationState,
    event: str,
    error: type[Exception],
) -> AssociationState:
    nxt = table.get((state, event))
    if nxt is None:
        raise error(f"{event} is not allowed in state {state.name}")
    return nxt


@dataclass
class _Cipher:
    """Suite 0 state of one direction pair: keys, both system titles, counters."""

    suite: SuiteZero
    own_title: bytes
    peer_title: bytes
    own_counter: int
    peer_counter: int = -1
    dedicated: SuiteZero | None = None

    def seal(self, plain: bytes, dedicated: bool) -> bytes:
        tag = (_DED if dedicated else _GLO).get(plain[0])
        if tag is None:
            raise LocalProtocolError(f"APDU 0x{plain[0]:02x} has no ciphered form")
        suite = self.dedicated if dedicated and self.dedicated else self.suite
        self.own_counter += 1
        return encode_apdu(
            CipheredService(tag, suite.protect(self.own_title, self.own_counter, plain))
        )

    def open(self, content: bytes, dedicated: bool) -> bytes:
        suite = self.dedicated if dedicated else self.suite
        if suite is None:
            raise SecurityError("ded- APDU without a dedicated key")
        counter, plain = suite.unprotect(self.peer_title, content)
        if counter <= self.peer_counter:
            raise SecurityError(f"invocation counter {counter} replayed (last {self.peer_counter})")
        self.peer_counter = counter
        return plain


# --- server --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServerSettings:
    """What one client SAP may do with this server, and the server's own identity."""

    system_title: bytes
    suite: SuiteZero | None = field(default=None, repr=False)
    mechanism: Mechanism = Mechanism.LOWEST
    password: bytes | None = field(default=None, repr=False)  # LLS
    ciphered: bool = False  # require the ciphered LN context
    conformance: int = 0x00101D  # block-transfer-with-get, get, set, selective-access, action
    max_receive_pdu_size: int = 1024
    invocation_counter: int = 0  # the last one this server used
    client_invocation_counter: int = -1  # the last one accepted from the client, kept across
    # associations so that a recorded session cannot be replayed in a new one


@dataclass(frozen=True)
class ServiceIndication:
    """A service request the application must answer with ``ServerAssociation.respond``."""

    request: Apdu
    dedicated: bool
    general: bool = False  # it came as general-glo-ciphering: answer the same way


@dataclass(frozen=True)
class Reply:
    """Bytes to send back (ACSE answers, HLS answers, exception-responses)."""

    data: bytes


class ServerAssociation:
    def __init__(self, settings: ServerSettings) -> None:
        if settings.ciphered and settings.suite is None:
            raise LocalProtocolError("a ciphered association needs suite 0 keys")
        self.settings = settings
        self.state = S.IDLE
        self.conformance = 0
        self.client_max_pdu = 0
        self._cipher: _Cipher | None = None
        self._ctos = b""
        self._stoc = b""
        self._last_counters = (settings.invocation_counter, settings.client_invocation_counter)

    @classmethod
    def pre_established(cls, settings: ServerSettings, client_title: bytes) -> ServerAssociation:
        """An association that exists without an AARQ (a pre-established association): the
        server already knows the client, so services come at once, ciphered with the global
        key as general-glo-ciphering from ``client_title``; counters continue from
        ``settings``. Only ciphered settings qualify: nothing in clear text reaches a meter."""
        if not settings.ciphered or settings.suite is None:
            raise LocalProtocolError("a pre-established association must be ciphered")
        association = cls(settings)
        association._cipher = _Cipher(
            settings.suite,
            settings.system_title,
            client_title,
            settings.invocation_counter,
            settings.client_invocation_counter,
        )
        association.conformance = settings.conformance
        association.client_max_pdu = settings.max_receive_pdu_size
        association.state = S.ASSOCIATED
        return association

    def receive(self, data: bytes, challenge: bytes = b"") -> Reply | ServiceIndication:
        """Handle one APDU from the client. ``challenge`` is fresh randomness (8..64 octets)
        used as StoC when the AARQ asks for HLS."""
        apdu = decode_apdu(data)
        if isinstance(apdu, AARQ):
            return Reply(self._on_aarq(apdu, challenge))
        if isinstance(apdu, RLRQ):
            self.state = _step(SERVER_TRANSITIONS, self.state, "rlrq", RemoteProtocolError)
            self._drop_cipher()
            return Reply(encode_apdu(RLRE(0)))
        if self.state is S.IDLE:
            return Reply(
                encode_apdu(ExceptionResponse(SERVICE_NOT_ALLOWED, OPERATION_NOT_POSSIBLE))
            )
        dedicated = general = False
        if isinstance(apdu, GeneralGloCiphering):
            if self._cipher is None or apdu.system_title != self._cipher.peer_title:
                return Reply(encode_apdu(ExceptionResponse(SERVICE_NOT_ALLOWED, DECIPHERING_ERROR)))
            general = True
            try:
                apdu = decode_apdu(self._cipher.open(apdu.ciphered_content, False))
            except SecurityError:
                counter = self._cipher.peer_counter
                return Reply(
                    encode_apdu(
                        ExceptionResponse(SERVICE_NOT_ALLOWED, COUNTER_ERROR, max(counter, 0))
                    )
                )
        elif isinstance(apdu, CipheredService):
            if self._cipher is None or apdu.tag not in _PLAIN_OF:
                return Reply(encode_apdu(ExceptionResponse(SERVICE_NOT_ALLOWED, DECIPHERING_ERROR)))
            dedicated = apdu.tag in _DED.values()
            try:
                apdu = decode_apdu(self._cipher.open(apdu.ciphered_content, dedicated))
            except SecurityError:
                counter = self._cipher.peer_counter
                return Reply(
                    encode_apdu(
                        ExceptionResponse(SERVICE_NOT_ALLOWED, COUNTER_ERROR, max(counter, 0))
                    )
                )
        elif self.settings.ciphered:
            # no clear text once a ciphered association is required
            return Reply(encode_apdu(ExceptionResponse(SERVICE_NOT_ALLOWED, DECIPHERING_ERROR)))
        if self.state is S.AWAITING_HLS:
            return Reply(self._on_hls(apdu, dedicated))
        self.state = _step(SERVER_TRANSITIONS, self.state, "service", RemoteProtocolError)
        return ServiceIndication(apdu, dedicated, general)

    @property
    def counters(self) -> tuple[int, int]:
        """(the last counter this server used, the last one accepted from the client), to
        persist and hand to the next association's settings."""
        if self._cipher is None:
            return self._last_counters
        return self._cipher.own_counter, self._cipher.peer_counter

    def respond(self, indication: ServiceIndication, response: Apdu) -> bytes:
        """Encode (and cipher like the request was) the application's response."""
        if self.state is not S.ASSOCIATED:
            raise LocalProtocolError(f"cannot respond in state {self.state.name}")
        plain = encode_apdu(response)
        if self._cipher is None:
            return plain
        if indication.general:
            cipher = self._cipher
            cipher.own_counter += 1
            content = cipher.suite.protect(cipher.own_title, cipher.own_counter, plain)
            return encode_apdu(GeneralGloCiphering(cipher.own_title, content))
        return self._cipher.seal(plain, indication.dedicated)

    def _drop_cipher(self) -> None:
        if self._cipher is not None:
            self._last_counters = (self._cipher.own_counter, self._cipher.peer_counter)
        self._cipher = None

    def _reject(self, diagnostic: SourceDiagnostic, context: ApplicationContext) -> bytes:
        self.state = _step(SERVER_TRANSITIONS, self.state, "aarq-rejected", RemoteProtocolError)
        return encode_apdu(
            AARE(AcseResult.REJECTED_PERMANENT, diagnostic, application_context=context)
        )

    def _on_aarq(self, aarq: AARQ, challenge: bytes) -> bytes:
        cfg = self.settings
        if self.state is not S.IDLE:
            return encode_apdu(
                AARE(AcseResult.REJECTED_TRANSIENT, SourceDiagnostic.NO_REASON_GIVEN)
            )
        wanted = (
            ApplicationContext.LOGICAL_NAME_CIPHERED
            if cfg.ciphered
            else ApplicationContext.LOGICAL_NAME
        )
        if aarq.application_context != wanted:
            return self._reject(SourceDiagnostic.APPLICATION_CONTEXT_NAME_NOT_SUPPORTED, wanted)
        mechanism = aarq.mechanism or Mechanism.LOWEST
        if mechanism != cfg.mechanism:
            diag = (
                SourceDiagnostic.AUTHENTICATION_REQUIRED
                if mechanism == Mechanism.LOWEST
                else SourceDiagnostic.AUTHENTICATION_MECHANISM_NAME_NOT_RECOGNISED
            )
            return self._reject(diag, wanted)
        if mechanism == Mechanism.LOW:
            try:
                check_password(cfg.password or b"", aarq.calling_authentication_value or b"")
            except SecurityError:
                return self._reject(SourceDiagnostic.AUTHENTICATION_FAILURE, wanted)
        if cfg.ciphered and cfg.suite is not None:
            if aarq.calling_ap_title is None or len(aarq.calling_ap_title) != 8:
                return self._reject(SourceDiagnostic.NO_REASON_GIVEN, wanted)
            self._cipher = _Cipher(
                cfg.suite, cfg.system_title, aarq.calling_ap_title, cfg.invocation_counter
            )
        if mechanism == Mechanism.HIGH_GMAC:
            ctos = aarq.calling_authentication_value or b""
            if not 8 <= len(ctos) <= 64 or not 8 <= len(challenge) <= 64:
                return self._reject(SourceDiagnostic.AUTHENTICATION_FAILURE, wanted)
            self._ctos, self._stoc = ctos, challenge
        try:
            request = self._initiate_request(aarq.user_information)
        except (DecodeError, SecurityError):
            self._drop_cipher()
            return self._reject(SourceDiagnostic.NO_REASON_GIVEN, wanted)
        self.conformance = request.proposed_conformance & cfg.conformance
        self.client_max_pdu = request.client_max_receive_pdu_size
        if request.dedicated_key is not None and self._cipher is not None:
            self._cipher.dedicated = SuiteZero(request.dedicated_key, self._cipher.suite.ak)
        answer = encode_initiate_response(
            InitiateResponse(self.conformance, cfg.max_receive_pdu_size)
        )
        if self._cipher is not None:
            self._cipher.own_counter += 1
            sealed = self._cipher.suite.protect(cfg.system_title, self._cipher.own_counter, answer)
            answer = encode_apdu(CipheredService(0x28, sealed))
        hls = mechanism == Mechanism.HIGH_GMAC
        self.state = _step(
            SERVER_TRANSITIONS,
            self.state,
            "aarq-accepted-hls" if hls else "aarq-accepted",
            RemoteProtocolError,
        )
        return encode_apdu(
            AARE(
                AcseResult.ACCEPTED,
                SourceDiagnostic.AUTHENTICATION_REQUIRED if hls else SourceDiagnostic.NULL,
                application_context=wanted,
                responding_ap_title=cfg.system_title if cfg.ciphered else None,
                mechanism=mechanism if mechanism != Mechanism.LOWEST else None,
                responding_authentication_value=self._stoc if hls else None,
                user_information=answer,
            )
        )

    def _initiate_request(self, user_information: bytes | None) -> InitiateRequest:
        if user_information is None:
            raise DecodeError("AARQ without an xDLMS initiate-request")
        if self._cipher is not None:
            outer = decode_apdu(user_information)
            if not isinstance(outer, CipheredService) or outer.tag != 0x21:
                raise SecurityError("ciphered context needs a glo-initiate-request")
            user_information = self._cipher.open(outer.ciphered_content, False)
        return decode_initiate_request(user_information)

    def _on_hls(self, apdu: Apdu, dedicated: bool) -> bytes:
        """Pass 3/4 of HLS-GMAC: check f(StoC) from the client, answer with f(CtoS)."""
        cfg = self.settings
        if not (
            isinstance(apdu, ActionRequestNormal)
            and apdu.method == REPLY_TO_HLS
            and apdu.parameters is not None
            and apdu.parameters.type is DataType.OCTET_STRING
            and self._cipher is not None
        ):
            return encode_apdu(ExceptionResponse(SERVICE_NOT_ALLOWED, OPERATION_NOT_POSSIBLE))
        try:
            self._cipher.suite.verify_gmac(
                self._cipher.peer_title, apdu.parameters.value, self._stoc
            )
        except SecurityError:
            self.state = _step(SERVER_TRANSITIONS, self.state, "hls-failed", RemoteProtocolError)
            response = ActionResponseNormal(apdu.invoke_id, ActionResult.READ_WRITE_DENIED)
            plain = encode_apdu(response)
            self._cipher.own_counter += 1
            return encode_apdu(
                CipheredService(
                    _GLO[0xC7],
                    self._cipher.suite.protect(cfg.system_title, self._cipher.own_counter, plain),
                )
            )
        self.state = _step(SERVER_TRANSITIONS, self.state, "hls-passed", RemoteProtocolError)
        self._cipher.own_counter += 1
        proof = self._cipher.suite.gmac(cfg.system_title, self._cipher.own_counter, self._ctos)
        response = ActionResponseNormal(
            apdu.invoke_id, ActionResult.SUCCESS, Data(DataType.OCTET_STRING, proof)
        )
        return self._cipher.seal(encode_apdu(response), dedicated)


# --- client --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClientSettings:
    system_title: bytes = b"OAMHES01"
    suite: SuiteZero | None = field(default=None, repr=False)
    mechanism: Mechanism = Mechanism.LOWEST
    password: bytes | None = field(default=None, repr=False)
    conformance: int = 0x00101D
    max_receive_pdu_size: int = 0xFFFF
    invocation_counter: int = 0
    dedicated_key: bytes | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Associated:
    conformance: int
    server_max_receive_pdu_size: int


@dataclass(frozen=True)
class HlsRequired:
    """The AARE was accepted; send ``ClientAssociation.reply_to_hls()`` next."""


@dataclass(frozen=True)
class Rejected:
    result: AcseResult
    diagnostic: int


@dataclass(frozen=True)
class Response:
    apdu: Apdu


@dataclass(frozen=True)
class Released:
    pass


ClientEvent = Associated | HlsRequired | Rejected | Response | Released


class ClientAssociation:
    def __init__(self, settings: ClientSettings) -> None:
        if settings.mechanism == Mechanism.HIGH_GMAC and settings.suite is None:
            raise LocalProtocolError("HLS-GMAC needs suite 0 keys")
        self.settings = settings
        self.state = S.IDLE
        self._cipher: _Cipher | None = None
        self._ctos = b""
        self._stoc = b""
        self._server_title = b""
        self._negotiated: Associated | None = None
        self._counter = settings.invocation_counter

    @property
    def ciphered(self) -> bool:
        return self.settings.suite is not None

    def associate(self, challenge: bytes = b"") -> bytes:
        """The AARQ. ``challenge`` (CtoS, 8..64 octets) is required for HLS-GMAC."""
        cfg = self.settings
        self.state = _step(CLIENT_TRANSITIONS, self.state, "send-aarq", LocalProtocolError)
        initiate = encode_initiate_request(
            InitiateRequest(cfg.conformance, cfg.max_receive_pdu_size, cfg.dedicated_key)
        )
        if cfg.suite is not None:
            self._counter += 1
            initiate = encode_apdu(
                CipheredService(0x21, cfg.suite.protect(cfg.system_title, self._counter, initiate))
            )
        auth: bytes | None = None
        if cfg.mechanism == Mechanism.LOW:
            auth = cfg.password or b""
        elif cfg.mechanism == Mechanism.HIGH_GMAC:
            if not 8 <= len(challenge) <= 64:
                raise LocalProtocolError("HLS-GMAC needs a challenge of 8..64 octets")
            self._ctos = auth = challenge
        return encode_apdu(
            AARQ(
                ApplicationContext.LOGICAL_NAME_CIPHERED
                if self.ciphered
                else ApplicationContext.LOGICAL_NAME,
                cfg.system_title if self.ciphered else None,
                cfg.mechanism if cfg.mechanism != Mechanism.LOWEST else None,
                auth,
                initiate,
            )
        )

    def receive(self, data: bytes) -> ClientEvent:
        apdu = decode_apdu(data)
        if isinstance(apdu, AARE):
            return self._on_aare(apdu)
        if isinstance(apdu, RLRE):
            self.state = _step(CLIENT_TRANSITIONS, self.state, "rlre", RemoteProtocolError)
            self._cipher = None
            return Released()
        if isinstance(apdu, CipheredService):
            if self._cipher is None or apdu.tag not in _PLAIN_OF:
                raise RemoteProtocolError(f"unexpected {apdu.name} from the server")
            apdu = decode_apdu(self._cipher.open(apdu.ciphered_content, apdu.tag in _DED.values()))
        elif self._cipher is not None and not isinstance(apdu, ExceptionResponse):
            raise SecurityError("clear-text response inside a ciphered association")
        if self.state is S.AWAITING_HLS:
            return self._on_hls_answer(apdu)
        if self.state not in (S.ASSOCIATED, S.RELEASING):
            raise RemoteProtocolError(f"{type(apdu).__name__} in state {self.state.name}")
        return Response(apdu)

    def request(self, apdu: Apdu, dedicated: bool = False) -> bytes:
        if self.state is not S.ASSOCIATED:
            raise LocalProtocolError(f"no association: state {self.state.name}")
        plain = encode_apdu(apdu)
        return plain if self._cipher is None else self._cipher.seal(plain, dedicated)

    def reply_to_hls(self, invoke_id: int = 0xC1) -> bytes:
        if self.state is not S.AWAITING_HLS or self._cipher is None:
            raise LocalProtocolError(f"no HLS challenge to answer in state {self.state.name}")
        self._cipher.own_counter += 1
        proof = self._cipher.suite.gmac(
            self.settings.system_title, self._cipher.own_counter, self._stoc
        )
        action = ActionRequestNormal(invoke_id, REPLY_TO_HLS, Data(DataType.OCTET_STRING, proof))
        return self._cipher.seal(encode_apdu(action), False)

    def release(self) -> bytes:
        self.state = _step(CLIENT_TRANSITIONS, self.state, "send-rlrq", LocalProtocolError)
        return encode_apdu(RLRQ(0))

    def _on_aare(self, aare: AARE) -> ClientEvent:
        if aare.result != AcseResult.ACCEPTED:
            self.state = _step(CLIENT_TRANSITIONS, self.state, "aare-rejected", RemoteProtocolError)
            return Rejected(aare.result, aare.diagnostic)
        cfg = self.settings
        info = aare.user_information
        if info is None:
            raise RemoteProtocolError("AARE accepted without an initiate-response")
        if cfg.suite is not None:
            if aare.responding_ap_title is None or len(aare.responding_ap_title) != 8:
                raise RemoteProtocolError("ciphered AARE without the server's system title")
            self._cipher = _Cipher(
                cfg.suite, cfg.system_title, aare.responding_ap_title, self._counter
            )
            if cfg.dedicated_key is not None:
                self._cipher.dedicated = SuiteZero(cfg.dedicated_key, cfg.suite.ak)
            outer = decode_apdu(info)
            if not isinstance(outer, CipheredService) or outer.tag != 0x28:
                raise SecurityError("ciphered AARE without a glo-initiate-response")
            info = self._cipher.open(outer.ciphered_content, False)
        response = decode_initiate_response(info)
        self._negotiated = Associated(
            response.negotiated_conformance, response.server_max_receive_pdu_size
        )
        if cfg.mechanism == Mechanism.HIGH_GMAC:
            self._stoc = aare.responding_authentication_value or b""
            if not 8 <= len(self._stoc) <= 64:
                raise RemoteProtocolError("HLS AARE without a usable server challenge")
            self.state = _step(
                CLIENT_TRANSITIONS, self.state, "aare-accepted-hls", RemoteProtocolError
            )
            return HlsRequired()
        self.state = _step(CLIENT_TRANSITIONS, self.state, "aare-accepted", RemoteProtocolError)
        return self._negotiated

    def _on_hls_answer(self, apdu: Apdu) -> ClientEvent:
        if self._cipher is None or self._negotiated is None:
            raise LocalProtocolError("HLS answer without a ciphered association")
        if not isinstance(apdu, ActionResponseNormal) or apdu.result != ActionResult.SUCCESS:
            raise SecurityError(f"server refused our HLS answer: {apdu!r}")
        proof = apdu.return_data
        if not isinstance(proof, Data) or proof.type is not DataType.OCTET_STRING:
            raise RemoteProtocolError("HLS action response without the server's proof")
        self._cipher.suite.verify_gmac(self._cipher.peer_title, proof.value, self._ctos)
        self.state = _step(CLIENT_TRANSITIONS, self.state, "hls-passed", RemoteProtocolError)
        return self._negotiated


def with_counter(settings: ClientSettings, counter: int) -> ClientSettings:
    """The same settings starting from another invocation counter (for a new association)."""
    return replace(settings, invocation_counter=counter)
