"""Commands to meters (sans-IO): durable, carried out at most once, each with one result.

The MDMS asks for a disconnect, a new contract current, an interval change, a time sync or
any GET/SET/ACTION; the ``Commander`` turns each into one ciphered request (general-glo-
ciphering under the meter's suite 0 keys, as ``Collector`` does for collection) and, once
the meter confirms it, into a second request that reads back the state it changed, so the
result says what the meter *is*, not only what it was told.

At most once, even across retries and restarts, rests on two rules:

- The invocation counter is allocated and the ciphered frame written to the
  ``CommandStore`` *before* the first send. Every resend, also by a new process after a crash,
  is those same bytes. A fresh frame (a new counter) is never made for a command that may
  already have reached the meter: that would be a second command.
- The meter executes a counter once. A copy of the request it last executed gets the answer
  it gave then, without executing again (see ``openami.fleet.meter``); anything older is a
  replay and gets nothing.

So a lost answer costs a resend, never a second execution; a meter that stays silent ends
the command ``failed`` (after ``max_attempts``) or ``expired`` (at its deadline), with a reason
that says the meter may or may not have carried it out. One command per meter is in flight
at a time, in submission order. Time is passed in (Unix seconds); nothing here touches a
socket or a clock.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from openami.bus.commands import (
    CommandKind,
    CommandRequest,
    CommandResult,
    CommandStatus,
    decode_command_message,
    encode_command_message,
)
from openami.errors import (
    DecodeError,
    RemoteProtocolError,
    SecurityError,
    StoreError,
    TransportError,
)
from openami.headend.collection import HEADEND_SYSTEM_TITLE, DatagramSender
from openami.headend.command_plans import PLANS, Builder, command_problem, invoke_id, judge
from openami.headend.command_store import CommandRecord, CommandState, CommandStore, utc
from openami.headend.keystore import KeyStore, MeterSecurity
from openami.protocols.dlms.apdu import Apdu, GeneralGloCiphering, decode_apdu, encode_apdu
from openami.protocols.dlms.services import ExceptionResponse
from openami.protocols.dlms.wrapper import (
    CLIENT_MANAGEMENT_WPORT,
    METER_MANAGEMENT_WPORT,
    WrapperFrame,
    decode_wrapper,
    encode_wrapper,
)
from openami.transport.memory import Address

__all__ = ["Commander", "command_problem"]


@dataclass
class _Flight:
    """The one request in flight for a meter: the command's own, or its read-back."""

    request: CommandRequest
    reading_back: bool
    frame: bytes
    counter: int
    attempts: int
    next_at: float
    first_sent: float

    @property
    def command_id(self) -> str:
        return self.request.command_id

    @property
    def meter_id(self) -> int:
        return self.request.meter_id

    @property
    def expects(self) -> tuple[type[Any], ...]:
        plan = PLANS[self.request.kind]
        return plan.readback_answers if self.reading_back else plan.answers


def _request_of(record: CommandRecord) -> CommandRequest:
    message = decode_command_message(record.payload)
    if not isinstance(message, CommandRequest):
        raise DecodeError(f"command {record.command_id!r} holds no command request")
    return message


class Commander:
    """The command engine of one head-end, over a ``CommandStore``.

    Drive it with ``submit`` as commands arrive, ``on_datagram``/``on_response`` as answers
    arrive, and ``step(now)`` (expire, retry, dispatch) every second or so; publish what
    ``results()`` hands out. A new ``Commander`` on the same store carries on where the last
    one stopped: what was in flight is resent byte for byte.
    """

    def __init__(
        self,
        store: CommandStore,
        keys: KeyStore,
        endpoint: DatagramSender,
        address: Address,
        *,
        max_attempts: int = 6,
        backoff_s: float = 2.0,
        max_backoff_s: float = 300.0,
        time_sync_max_age_s: float = 30.0,
    ) -> None:
        self.store = store
        self.keys = keys
        self.endpoint = endpoint
        self.address = address
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.time_sync_max_age_s = time_sync_max_age_s
        self.sent = 0  # datagrams sent, first sends and resends
        self.resent = 0
        self.rejected = 0  # answers that did not decode or authenticate
        self.duplicates = 0  # submits of an id already known
        self._flights: dict[int, _Flight] = {}
        self._now = 0.0  # the latest time given to any method
        # meters with another request of the head-end's in flight (a collection): a command
        # for one waits, so that one answer can never be taken for the other's
        self.hold: Callable[[int], bool] | None = None
        self._raise_counters()
        for record in store.in_state(CommandState.SENT):
            self._flights[record.meter_id] = self._resume(record)

    def _raise_counters(self) -> None:
        """A head-end that lost its counters must not reuse one the store has in a frame:
        the meter would take the new request for a replay and drop it."""
        for meter_id, top in self.store.max_counters().items():
            try:
                entry = self.keys.by_id(meter_id)
            except SecurityError:
                continue
            if entry.client_counter < top:
                entry.client_counter = top

    def _resume(self, record: CommandRecord) -> _Flight:
        back = record.reading_back
        frame = record.readback_frame if back else record.frame
        counter = record.readback_counter if back else record.counter
        if frame is None or counter is None:
            raise StoreError(f"command {record.command_id!r} is sent but has no frame")
        sent_at = record.sent_at.timestamp() if record.sent_at is not None else 0.0
        return _Flight(
            _request_of(record),
            back,
            frame,
            counter,
            record.readback_attempts if back else record.attempts,
            record.next_attempt_at or 0.0,
            sent_at,
        )

    # -- in ------------------------------------------------------------------------------

    def submit(self, request: CommandRequest, now: float) -> bool:
        """Store a command; False if its id is known already (the same command again)."""
        self._at(now)
        payload = encode_command_message(request)
        new = self.store.add(
            request.command_id,
            request.meter_id,
            request.kind.value,
            payload,
            request.deadline,
            utc(now),
        )
        if not new:
            self.duplicates += 1
            return False
        problem = command_problem(request)
        if problem is None:
            try:
                self.keys.by_id(request.meter_id)
            except SecurityError as exc:
                problem = str(exc)
        if problem is not None:
            self._finish(request, CommandState.FAILED, CommandStatus.FAILED, problem, None, now)
        return True

    def on_datagram(self, payload: bytes, now: float | None = None) -> bool:
        """Open a meter's answer (wrapper, general-glo-ciphering, its keys and counter) and
        claim it; False if it is not ours or does not decode or authenticate."""
        try:
            glo = decode_apdu(decode_wrapper(payload).apdu)
            if not isinstance(glo, GeneralGloCiphering):
                raise DecodeError("answer is not general-glo-ciphering")
            meter, plain = self.keys.open(glo.system_title, glo.ciphered_content)
            answer = decode_apdu(plain)
        except RemoteProtocolError:
            self.rejected += 1
            return False
        return self.on_response(meter.meter_id, answer, now)

    def on_response(self, meter_id: int, answer: Apdu, now: float | None = None) -> bool:
        """Claim a decrypted answer from a meter; False if no request of ours matches it.
        ``now`` stamps the result (the last time this engine was given, if None)."""
        flight = self._flights.get(meter_id)
        if flight is None:
            return False
        if not isinstance(answer, ExceptionResponse):
            if not isinstance(answer, flight.expects):
                return False
            if (getattr(answer, "invoke_id", -1) & 0x0F) != (flight.counter & 0x0F):
                return False
        ok, why, state = judge(answer)
        return self._answered(flight, ok, why, state, self._at(now))

    def _answered(
        self, flight: _Flight, ok: bool, why: str, state: bytes | None, now: float
    ) -> bool:
        request = flight.request
        if flight.reading_back:
            reason = "carried out and read back" if ok else f"carried out; reading back: {why}"
            self._finish(request, CommandState.DONE, CommandStatus.SUCCESS, reason, state, now)
            return True
        if not ok:
            self._finish(request, CommandState.FAILED, CommandStatus.FAILED, why, None, now)
            return True
        plan = PLANS[request.kind]
        if plan.readback is None:
            self._finish(request, CommandState.DONE, CommandStatus.SUCCESS, "done", state, now)
            return True
        self._start_readback(flight, plan.readback, now)
        return True

    # -- out -----------------------------------------------------------------------------

    def _at(self, now: float | None) -> float:
        """``now`` if given (and remembered), else the last time this engine was given."""
        if now is not None:
            self._now = max(self._now, now)
            return now
        return self._now

    def step(self, now: float) -> None:
        """Everything due at ``now``: expire, resend, send new commands."""
        self.expire(now)
        self.retry_pending(now)
        self.dispatch(now)

    def dispatch(self, now: float) -> int:
        """Send accepted commands, the oldest first, one in flight per meter; return how
        many went out. Each frame is stored before it is sent."""
        self._at(now)
        sent = 0
        for record in self.store.in_state(CommandState.ACCEPTED):
            if record.meter_id in self._flights:
                continue
            if self.hold is not None and self.hold(record.meter_id):
                continue
            request = _request_of(record)
            if now >= request.deadline:
                self._finish(
                    request,
                    CommandState.EXPIRED,
                    CommandStatus.EXPIRED,
                    "the deadline passed before the command could be sent",
                    None,
                    now,
                )
                continue
            # checked at submit too; again here for one stored just before a crash
            problem = command_problem(request)
            try:
                meter = self.keys.by_id(request.meter_id)
            except SecurityError as exc:
                problem = problem or str(exc)
            if problem is not None:
                self._finish(request, CommandState.FAILED, CommandStatus.FAILED, problem, None, now)
                continue
            counter = self.keys.next_client_counter(meter)
            apdu = PLANS[request.kind].command(request, invoke_id(counter), now)
            frame = _seal(meter, counter, apdu)
            flight = _Flight(request, False, frame, counter, 1, now + self._backoff(1), now)
            self.store.allocate(request.command_id, frame, counter, utc(now), flight.next_at)
            self._flights[request.meter_id] = flight
            self._send(flight, meter)
            sent += 1
        return sent

    def _start_readback(self, flight: _Flight, build: Builder, now: float) -> None:
        meter = self.keys.by_id(flight.meter_id)
        counter = self.keys.next_client_counter(meter)
        frame = _seal(meter, counter, build(flight.request, invoke_id(counter), now))
        flight.reading_back, flight.frame, flight.counter = True, frame, counter
        flight.attempts, flight.next_at, flight.first_sent = 1, now + self._backoff(1), now
        self.store.allocate(
            flight.command_id, frame, counter, utc(now), flight.next_at, readback=True
        )
        self._send(flight, meter)

    def retry_pending(self, now: float) -> int:
        """Resend, byte for byte, what is due and still unanswered; give up after
        ``max_attempts``. Waits double after each attempt (up to ``max_backoff_s``)."""
        self._at(now)
        resent = 0
        for flight in list(self._flights.values()):
            if now < flight.next_at:
                continue
            if flight.attempts >= self.max_attempts:
                self._give_up(flight, now, f"no answer after {flight.attempts} attempts")
                continue
            stale = now - flight.first_sent > self.time_sync_max_age_s
            if flight.request.kind is CommandKind.TIME_SYNC and not flight.reading_back and stale:
                # the frame carries the time it was made: sent again now it would set the
                # clock wrong by its age
                self._give_up(
                    flight, now, f"the time it carries is over {self.time_sync_max_age_s:g} s old"
                )
                continue
            flight.attempts += 1
            flight.next_at = now + self._backoff(flight.attempts)
            self.store.attempted(flight.command_id, flight.attempts, flight.next_at, utc(now))
            self._send(flight, self.keys.by_id(flight.meter_id))
            self.resent += 1
            resent += 1
        return resent

    def expire(self, now: float) -> int:
        """End every command whose deadline has passed (``now >= deadline``); return how
        many. One in flight is not sent again: its outcome on the meter is unknown."""
        self._at(now)
        ended = 0
        for flight in list(self._flights.values()):
            if now >= flight.request.deadline:
                self._give_up(flight, now, "the deadline passed", expired=True)
                ended += 1
        for record in self.store.in_state(CommandState.ACCEPTED):
            if now >= record.deadline:
                self._finish(
                    _request_of(record),
                    CommandState.EXPIRED,
                    CommandStatus.EXPIRED,
                    "the deadline passed before the command could be sent",
                    None,
                    now,
                )
                ended += 1
        return ended

    def _give_up(self, flight: _Flight, now: float, why: str, expired: bool = False) -> None:
        if flight.reading_back:
            reason = f"carried out (the meter confirmed it); its state was not read back: {why}"
            state, status = CommandState.DONE, CommandStatus.SUCCESS
        else:
            reason = (
                f"{why} and no answer from the meter: it may or may not have carried the "
                "command out, which will not be sent again"
            )
            state = CommandState.EXPIRED if expired else CommandState.FAILED
            status = CommandStatus.EXPIRED if expired else CommandStatus.FAILED
        self._finish(flight.request, state, status, reason, None, now)

    def _finish(
        self,
        request: CommandRequest,
        state: CommandState,
        status: CommandStatus,
        reason: str,
        state_after: bytes | None,
        now: float,
    ) -> None:
        self.store.finish(request.command_id, state, status.value, reason, state_after, utc(now))
        flight = self._flights.get(request.meter_id)
        if flight is not None and flight.command_id == request.command_id:
            del self._flights[request.meter_id]

    def _send(self, flight: _Flight, meter: MeterSecurity) -> None:
        # a send that fails counts as an attempt all the same: the retry sends it again
        with contextlib.suppress(TransportError):
            self.endpoint.sendto(flight.frame, self.address, meter.address)
        self.sent += 1

    def _backoff(self, attempts: int) -> float:
        return float(min(self.max_backoff_s, self.backoff_s * 2 ** (attempts - 1)))

    # -- results -------------------------------------------------------------------------

    def results(self) -> list[CommandResult]:
        """Results of commands that ended since the last call (also before a restart, if
        they were not handed out then), each once."""
        out = self.unpublished_results()
        self.mark_published(r.command_id for r in out)
        return out

    def unpublished_results(self) -> list[CommandResult]:
        """Results not yet marked published: publish them, flush the bus, then
        ``mark_published`` - a crash in between publishes them again, never loses them."""
        return [
            CommandResult(
                r.command_id,
                r.meter_id,
                CommandStatus(r.status or CommandStatus.FAILED),
                r.reason or "",
                r.state_after,
                (r.completed_at or r.updated_at).timestamp(),
            )
            for r in self.store.unpublished()
        ]

    def mark_published(self, command_ids: Iterable[str]) -> None:
        """The bus has stored these results: do not hand them out again."""
        self.store.mark_published(command_ids)

    def in_flight(self) -> int:
        return len(self._flights)

    def busy(self, meter_id: int) -> bool:
        """Whether a command (or its read-back) to ``meter_id`` waits for the meter's answer:
        until it ends, nothing else may reach that meter, or the meter would take a copy of
        the request, sent again, for a replay."""
        return meter_id in self._flights

    def pending(self) -> int:
        """Commands not ended yet: waiting to be sent or waiting for an answer."""
        counts = self.store.counts()
        return counts.get(CommandState.ACCEPTED, 0) + counts.get(CommandState.SENT, 0)


def _seal(meter: MeterSecurity, counter: int, apdu: Apdu) -> bytes:
    content = meter.suite.protect(HEADEND_SYSTEM_TITLE, counter, encode_apdu(apdu))
    glo = encode_apdu(GeneralGloCiphering(HEADEND_SYSTEM_TITLE, content))
    return encode_wrapper(WrapperFrame(CLIENT_MANAGEMENT_WPORT, METER_MANAGEMENT_WPORT, glo))
