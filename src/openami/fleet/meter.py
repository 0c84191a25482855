"""What a meter does on the wire: answer the head-end's requests, one meter at a time.

Both directions are ciphered with the meter's own suite 0 keys (authenticated encryption);
a request whose invocation counter is not above the last one seen from the head-end is a
replay and gets no answer, as does one that fails authentication. Nothing in clear text
reaches a meter.

Two ways in:

- **Pre-established association** (the head-end is known to every meter): requests come at
  once as general-glo-ciphering. A GET of the load profile by range, the re-collection that
  dominates traffic, is answered straight from the fleet's columns. Anything else (GET, SET,
  ACTION of any object, long answers fetched block by block) goes to the meter's full COSEM
  server, built for that request from the fleet's state and dropped afterwards.
- **AARQ** (HLS-GMAC, ciphered LN context): an association is opened with the full COSEM
  server and kept until released, idle for ``idle_s`` or pushed out by newer ones (at most
  ``max_sessions`` at a time), as a meter's communication unit would.

A command executes at most once even when the head-end has to send it again (its answer was
lost): the head-end resends the identical bytes, and the meter remembers, per meter, the last
request it executed and its answer. A copy of that request gets the same answer again (sealed
anew under a fresh counter of the meter's, as every message from it is) without executing
anything; any other request at or below the last counter stays a silent replay.

A meter's state lives in the fleet's columns, not in the server objects: the switch, the
counters, and every attribute a client wrote (kept per meter and written again into each new
object model), so a million meters cost nothing until one is spoken to.
"""

from __future__ import annotations

import os
import time
from collections import Counter, OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

from openami.errors import DecodeError, RemoteProtocolError
from openami.fleet.fleet import Fleet
from openami.fleet.meter_model import VOLATILE_WRITES, build_meter_model
from openami.fleet.meter_services import KeyRing
from openami.protocols.dlms.acse import Mechanism
from openami.protocols.dlms.apdu import (
    DataAccessResult,
    GeneralGloCiphering,
    GetRequestNormal,
    GetResponseNormal,
    decode_apdu,
    encode_apdu,
)
from openami.protocols.dlms.association import ServerAssociation, ServerSettings
from openami.protocols.dlms.axdr import Data, DataType, decode_data
from openami.protocols.dlms.cosem.model import ObjectModel
from openami.protocols.dlms.cosem.server import CosemSession
from openami.protocols.dlms.obis import LOAD_PROFILE
from openami.protocols.dlms.profile import (
    CLASS_PROFILE_GENERIC,
    PROFILE_BUFFER_ATTRIBUTE,
    SELECTOR_BY_RANGE,
    encode_entry,
    entry_prefix,
    parse_range_descriptor,
)
from openami.protocols.dlms.services import AttributeDescriptor
from openami.protocols.dlms.wrapper import (
    CLIENT_MANAGEMENT_WPORT,
    METER_MANAGEMENT_WPORT,
    WrapperFrame,
    decode_wrapper,
    encode_wrapper,
)
from openami.transport.memory import Datagram

__all__ = ["MeterServer"]

JST = timezone(timedelta(hours=9))
AARQ_TAG = 0x60


class _RecordingModel(ObjectModel):
    """An object model that remembers every SET it accepted, for the next model of the meter."""

    def __init__(self, base: ObjectModel, writes: list[tuple[AttributeDescriptor, Data]]) -> None:
        super().__init__(list(base))
        for descriptor, value in writes:
            super().set(descriptor, value)
        self.writes = writes

    def set(self, d: AttributeDescriptor, value: Data) -> DataAccessResult:
        result = super().set(d, value)
        if result is DataAccessResult.SUCCESS and d not in VOLATILE_WRITES:
            self.writes[:] = [w for w in self.writes if w[0] != d]
            self.writes.append((d, value))
        return result


class _Answered:
    """The last request a meter executed (its counter and bytes) and the answer it gave."""

    __slots__ = ("answer", "counter", "request")

    def __init__(self, counter: int, request: bytes, answer: bytes) -> None:
        self.counter, self.request, self.answer = counter, request, answer


class _Session:
    __slots__ = ("cosem", "pre_established", "used")

    def __init__(self, cosem: CosemSession, pre_established: bool) -> None:
        self.cosem = cosem
        self.pre_established = pre_established
        self.used = time.monotonic()


class MeterServer:
    """The DLMS server side of every meter in a fleet (one object, per-meter state in columns).

    Requests are answered from the meter's load profile as of the fleet's last closed
    interval; the profile is computed on demand, so no per-meter object outlives a request.
    """

    def __init__(
        self,
        fleet: Fleet,
        *,
        clock: Callable[[], datetime] | None = None,
        true_time: Callable[[], datetime] | None = None,
        client_title: bytes = b"OAMHES01",
        max_sessions: int = 1_024,
        idle_s: float = 120.0,
        max_remembered: int = 65_536,
    ) -> None:
        self.fleet = fleet
        # the meters' clock: the end of the fleet's last closed interval unless told otherwise
        self.clock = clock or (
            lambda: datetime.fromtimestamp(fleet.interval_end(fleet.now), tz=UTC)
        )
        # what a time a client writes (a time sync) is measured against: the meters' own clock
        # by default; a fleet on simulated time serving a head-end on the wall clock sets the
        # wall clock here, so that the written time's error is the request's age, not the gap
        # between the two time lines
        self.true_time = true_time
        self.client_title = client_title
        self.max_sessions = max_sessions
        self.idle_s = idle_s
        self._prefix_cache: dict[int, bytes] = {}
        self._sessions: OrderedDict[int, _Session] = OrderedDict()
        self._writes: dict[int, list[tuple[AttributeDescriptor, Data]]] = {}
        # per meter, the last request executed through the full server and its answer
        # (bounded: a meter pushed out answers a late copy with silence, never twice)
        self._answered: OrderedDict[int, _Answered] = OrderedDict()
        self.max_remembered = max_remembered
        self.repeated = 0  # answers given again to a copy of the last request
        # per meter (index), requests carried out by the full server (GET/SET/ACTION other
        # than the load profile read), each a new invocation counter; copies answered again
        # are not counted here but in ``repeated``
        self.carried_out: Counter[int] = Counter()
        self.rejected = 0
        self.models_built = 0

    @property
    def open_sessions(self) -> int:
        return len(self._sessions)

    def model(self, i: int) -> ObjectModel:
        """Meter ``i``'s full object model, built now from the fleet's state."""
        f = self.fleet
        keys = f.identity(i)
        ring = KeyRing(keys.ek, keys.ak, keys.kek)
        base = build_meter_model(f, i, self.clock, self.client_title, ring, self.true_time)
        self.models_built += 1
        return _RecordingModel(base, self._writes.setdefault(i, []))

    def _settings(self, i: int) -> ServerSettings:
        f = self.fleet
        return ServerSettings(
            f.system_title(i),
            f.suite(i),
            Mechanism.HIGH_GMAC,
            ciphered=True,
            invocation_counter=int(f.invocation_counter[i]),
            client_invocation_counter=int(f.last_client_counter[i]),
        )

    def _prefix(self, number: int) -> bytes:
        prefix = self._prefix_cache.get(number)
        if prefix is None:
            end = datetime.fromtimestamp(self.fleet.interval_end(number), tz=UTC)
            prefix = entry_prefix(end.astimezone(JST))
            if len(self._prefix_cache) > 10_000:
                self._prefix_cache.clear()
            self._prefix_cache[number] = prefix
        return prefix

    def _seal(self, i: int, apdu: bytes, client_wport: int = CLIENT_MANAGEMENT_WPORT) -> bytes:
        f = self.fleet
        title = f.system_title(i)
        content = f.suite(i).protect(title, f.next_invocation_counter(i), apdu)
        glo = encode_apdu(GeneralGloCiphering(title, content))
        return encode_wrapper(WrapperFrame(METER_MANAGEMENT_WPORT, client_wport, glo))

    def handle(self, datagram: Datagram) -> bytes | None:
        """Answer one request addressed to a meter; ``None`` when it is refused silently."""
        i = self.fleet.index_of(datagram.destination)
        return None if i is None else self.handle_for(i, datagram.payload)

    def handle_for(self, i: int, payload: bytes, challenge: bytes = b"") -> bytes | None:
        """Answer a request that reached meter ``i``. ``challenge`` is fresh randomness for
        HLS when the request is an AARQ (16 random octets when not given)."""
        if not (self.fleet.powered[i]):
            return None  # no power, no answer
        try:
            frame = decode_wrapper(payload)
        except DecodeError:
            self.rejected += 1
            return None
        self._expire()
        again = self._again(i, frame)
        if again is not None:
            return again
        session = self._sessions.get(i)
        if frame.apdu[:1] == bytes([AARQ_TAG]):
            session = _Session(
                CosemSession(self.model(i), ServerAssociation(self._settings(i))), False
            )
            self._keep(i, session)
            return self._through(i, session, frame, challenge or _challenge())
        if session is not None:
            answer = self._through(i, session, frame, b"")
            if answer is not None:
                self.carried_out[i] += 1
            if session.pre_established:
                self._remember(i, int(self.fleet.last_client_counter[i]), frame.apdu, answer)
            return answer
        try:
            glo = decode_apdu(frame.apdu)
            if not isinstance(glo, GeneralGloCiphering):
                raise DecodeError("meters accept only ciphered requests")
            counter, plain = self.fleet.suite(i).unprotect(glo.system_title, glo.ciphered_content)
            if counter <= self.fleet.last_client_counter[i]:
                raise RemoteProtocolError("replayed request")
            request = decode_apdu(plain)
        except RemoteProtocolError:
            self.rejected += 1
            return None
        if isinstance(request, GetRequestNormal) and self._is_profile(request):
            self.fleet.last_client_counter[i] = counter
            response = encode_apdu(GetResponseNormal(request.invoke_id, self._get(i, request)))
            return self._seal(i, response, frame.source_wport)
        # anything else: the full server, under a pre-established association
        association = ServerAssociation.pre_established(self._settings(i), glo.system_title)
        session = _Session(CosemSession(self.model(i), association), True)
        answer = self._through(i, session, frame, b"")
        if answer is not None:
            self.carried_out[i] += 1
        self._remember(i, counter, frame.apdu, answer)
        if session.cosem.transfer_in_progress:
            self._keep(i, session)  # the client comes back for the next block
        return answer

    def _remember(self, i: int, counter: int, request: bytes, answer: bytes | None) -> None:
        if answer is None:
            return
        self._answered.pop(i, None)
        self._answered[i] = _Answered(counter, request, answer)
        while len(self._answered) > self.max_remembered:
            self._answered.popitem(last=False)

    def _again(self, i: int, frame: WrapperFrame) -> bytes | None:
        """The remembered answer if ``frame`` is a copy of the last request meter ``i``
        executed (same bytes, so same counter, and nothing executed since); else None."""
        last = self._answered.get(i)
        if (
            last is None
            or last.request != frame.apdu
            or last.counter != self.fleet.last_client_counter[i]
        ):
            return None
        self.repeated += 1
        try:
            outer = decode_wrapper(last.answer)
            glo = decode_apdu(outer.apdu)
            if not isinstance(glo, GeneralGloCiphering):
                return last.answer
            # every message from a meter carries a fresh counter: an old one might be outside
            # the head-end's replay window by now
            _counter, plain = self.fleet.suite(i).unprotect(glo.system_title, glo.ciphered_content)
        except RemoteProtocolError:
            return last.answer
        return self._seal(i, plain, frame.source_wport)

    def _through(
        self, i: int, session: _Session, frame: WrapperFrame, challenge: bytes
    ) -> bytes | None:
        """One APDU through a session with the full server; counters back into the fleet."""
        association = session.cosem.association
        try:
            answer = session.cosem.receive(frame.apdu, challenge)
        except RemoteProtocolError:
            self.rejected += 1
            self._sessions.pop(i, None)
            return None
        finally:
            own, peer = association.counters
            f = self.fleet
            f.invocation_counter[i] = max(int(f.invocation_counter[i]), own)
            f.last_client_counter[i] = max(int(f.last_client_counter[i]), peer)
        session.used = time.monotonic()
        done = association.state.name == "IDLE" or (
            session.pre_established and not session.cosem.transfer_in_progress
        )
        if done:
            self._sessions.pop(i, None)
        return encode_wrapper(WrapperFrame(frame.destination_wport, frame.source_wport, answer))

    def _keep(self, i: int, session: _Session) -> None:
        self._sessions.pop(i, None)
        self._sessions[i] = session
        while len(self._sessions) > self.max_sessions:
            self._sessions.popitem(last=False)

    def _expire(self) -> None:
        cutoff = time.monotonic() - self.idle_s
        while self._sessions:
            i, oldest = next(iter(self._sessions.items()))
            if oldest.used >= cutoff:
                break
            del self._sessions[i]

    def _is_profile(self, request: GetRequestNormal) -> bool:
        return (
            request.class_id == CLASS_PROFILE_GENERIC
            and request.instance_id == LOAD_PROFILE.to_bytes()
            and request.attribute_id == PROFILE_BUFFER_ATTRIBUTE
            and request.access_selector in (None, SELECTOR_BY_RANGE)
        )

    def _get(self, i: int, request: GetRequestNormal) -> Data | DataAccessResult:
        step = self.fleet.step_s
        if request.access_selector is None:
            first, last = 0, self.fleet.now
        elif request.access_selector == SELECTOR_BY_RANGE and request.access_parameters:
            try:
                start, stop = parse_range_descriptor(request.access_parameters)
            except DecodeError:
                return DataAccessResult.TYPE_UNMATCHED
            first, last = -(-start // step), stop // step
        else:
            return DataAccessResult.SCOPE_OF_ACCESS_VIOLATED
        h = self.fleet.history(i, first, last)
        entries = tuple(
            decode_data(
                encode_entry(
                    self._prefix(int(h.numbers[k])),
                    int(h.status[k]),
                    int(h.import_register[k]),
                    int(h.export_register[k]),
                    int(h.import_wh[k]),
                    int(h.export_wh[k]),
                )
            )
            for k in range(h.numbers.size)
        )
        return Data(DataType.ARRAY, entries)


def _challenge() -> bytes:
    return os.urandom(16)  # HLS needs a challenge no one can predict
