"""Individual collection: read one meter's load profile over a range of interval ends.

A request from the MDMS becomes a ciphered get-request with selective access by range on the
clock column. Requests stay pending until the matching response arrives; ``retry_pending``
sends again whatever is still unanswered (lost on the way there or back), up to a limit.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from openami.bus.contract import CollectRequest
from openami.errors import DecodeError, SecurityError
from openami.headend.ingest import entries_of
from openami.headend.keystore import KeyStore
from openami.protocols.dlms.apdu import (
    GeneralGloCiphering,
    GetRequestNormal,
    GetResponseNormal,
    encode_apdu,
)
from openami.protocols.dlms.obis import LOAD_PROFILE
from openami.protocols.dlms.profile import (
    CLASS_PROFILE_GENERIC,
    PROFILE_BUFFER_ATTRIBUTE,
    SELECTOR_BY_RANGE,
    ProfileEntry,
    range_descriptor,
)
from openami.protocols.dlms.wrapper import (
    CLIENT_MANAGEMENT_WPORT,
    METER_MANAGEMENT_WPORT,
    WrapperFrame,
    encode_wrapper,
)
from openami.transport.memory import Address

__all__ = ["AccessPointPacer", "Collector", "DatagramSender"]

HEADEND_SYSTEM_TITLE = b"OAMHES01"
CONFIRMED_HIGH_PRIORITY = 0xC0  # invoke-id-and-priority: priority high, service confirmed


@dataclass
class _Pending:
    request: CollectRequest
    invoke_id: int
    attempts: int
    sent_at: float = 0.0


class DatagramSender(Protocol):
    """Where requests leave: an in-memory endpoint, or a real UDP socket's adapter."""

    def sendto(self, payload: bytes, source: Address, destination: Address) -> None: ...


class AccessPointPacer:
    """A token bucket per access point: at most ``rate`` requests a second to the meters
    behind one access point (``burst`` at once), so that a re-collection storm after an
    outage cannot flood a mesh whose access point carries a few tens of kbit/s. Meters
    with no known access point (-1) are not paced."""

    def __init__(self, rate: float, burst: float) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("pacing needs a positive rate and a burst of at least 1")
        self.rate = rate
        self.burst = burst
        self._tokens: dict[int, tuple[float, float]] = {}  # ap -> (tokens, at)
        self.held = 0  # requests that had to wait their turn

    def take(self, access_point: int, now: float) -> bool:
        if access_point < 0:
            return True
        tokens, at = self._tokens.get(access_point, (self.burst, now))
        tokens = min(self.burst, tokens + (now - at) * self.rate)
        if tokens < 1.0:
            self._tokens[access_point] = (tokens, now)
            self.held += 1
            return False
        self._tokens[access_point] = (tokens - 1.0, now)
        return True


class Collector:
    def __init__(
        self,
        keys: KeyStore,
        endpoint: DatagramSender,
        address: Address,
        pacer: AccessPointPacer | None = None,
        backoff_s: float = 0.0,
        max_backoff_s: float = 60.0,
    ) -> None:
        self.keys = keys
        self.endpoint = endpoint
        self.address = address
        self.pacer = pacer
        # a request unanswered is sent again after backoff_s, then twice as long each time
        # (0: at every retry turn, as on the in-memory network where nothing is in transit)
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self._pending: dict[int, _Pending] = {}  # meter_id -> the one request in flight
        self._queued: list[CollectRequest] = []
        self._ranges: set[tuple[int, int, int]] = set()  # (meter, from, to) queued or in flight
        self.sent = 0
        self.completed = 0
        self.failed = 0
        self.merged = 0  # requests for a range already asked for
        # meters nothing else may be sent to now (a command to them waits for its answer, and
        # a meter answers a command's copy only if it carried out nothing newer): their
        # requests wait, queued or in flight, without spending an attempt
        self.hold: Callable[[int], bool] | None = None

    def submit(self, request: CollectRequest) -> None:
        """Queue ``request``, unless the same range of the same meter is already queued or
        in flight (an MDMS asking again while the head-end paces a storm)."""
        key = (request.meter_id, request.from_end, request.to_end)
        if key in self._ranges:
            self.merged += 1
            return
        self._ranges.add(key)
        self._queued.append(request)

    def _done(self, request: CollectRequest) -> None:
        self._ranges.discard((request.meter_id, request.from_end, request.to_end))

    def _paced(self, meter_id: int, now: float) -> bool:
        """Whether a request to ``meter_id`` may leave now."""
        if self.pacer is None:
            return True
        try:
            row = self.keys.by_id(meter_id).row
        except SecurityError:
            return True  # _send reports the unknown meter
        return self.pacer.take(int(self.keys.access_point[row]), now)

    def pending(self) -> int:
        return len(self._pending) + len(self._queued)

    def in_flight(self, meter_id: int) -> bool:
        """Whether a request to ``meter_id`` was sent and is not answered or given up yet."""
        return meter_id in self._pending

    def _held(self, meter_id: int) -> bool:
        return self.hold is not None and self.hold(meter_id)

    def active(self) -> set[str]:
        """The ``request_id`` of every request queued or in flight."""
        return {p.request.request_id for p in self._pending.values()} | {
            r.request_id for r in self._queued
        }

    def dispatch(self, now: float | None = None) -> None:
        """Send queued requests: one in flight per meter, paced per access point; the rest
        wait their turn."""
        now = time.monotonic() if now is None else now
        waiting: list[CollectRequest] = []
        for request in self._queued:
            meter_id = request.meter_id
            if meter_id in self._pending or self._held(meter_id) or not self._paced(meter_id, now):
                waiting.append(request)
            else:
                self._send(_Pending(request, 0, 0), now)
        self._queued = waiting

    def retry_pending(self, max_attempts: int, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        for pending in list(self._pending.values()):
            if pending.attempts >= max_attempts:
                del self._pending[pending.request.meter_id]
                self._done(pending.request)
                self.failed += 1
            elif (
                now - pending.sent_at >= self._backoff(pending.attempts)
                and not self._held(pending.request.meter_id)
                and self._paced(pending.request.meter_id, now)
            ):
                self._send(pending, now)

    def _backoff(self, attempts: int) -> float:
        return float(min(self.max_backoff_s, self.backoff_s * 2.0 ** max(attempts - 1, 0)))

    def _send(self, pending: _Pending, now: float | None = None) -> None:
        meter = self.keys.by_id(pending.request.meter_id)
        pending.invoke_id = (pending.invoke_id + 1) & 0x0F
        pending.attempts += 1
        pending.sent_at = time.monotonic() if now is None else now
        request = GetRequestNormal(
            CONFIRMED_HIGH_PRIORITY | pending.invoke_id,
            CLASS_PROFILE_GENERIC,
            LOAD_PROFILE.to_bytes(),
            PROFILE_BUFFER_ATTRIBUTE,
            SELECTOR_BY_RANGE,
            range_descriptor(
                datetime.fromtimestamp(pending.request.from_end, tz=UTC),
                datetime.fromtimestamp(pending.request.to_end, tz=UTC),
            ),
        )
        content = meter.suite.protect(
            HEADEND_SYSTEM_TITLE, self.keys.next_client_counter(meter), encode_apdu(request)
        )
        glo = encode_apdu(GeneralGloCiphering(HEADEND_SYSTEM_TITLE, content))
        frame = WrapperFrame(CLIENT_MANAGEMENT_WPORT, METER_MANAGEMENT_WPORT, glo)
        self.endpoint.sendto(encode_wrapper(frame), self.address, meter.address)
        self._pending[pending.request.meter_id] = pending
        self.sent += 1

    def on_response(self, meter_id: int, response: GetResponseNormal) -> list[ProfileEntry] | None:
        """Claim a get-response; ``None`` if no request of ours matches it."""
        pending = self._pending.get(meter_id)
        if pending is None or (response.invoke_id & 0x0F) != pending.invoke_id:
            return None
        entries = entries_of(response)
        lo, hi = pending.request.from_end, pending.request.to_end
        if any(not lo <= e.interval_end <= hi for e in entries):
            raise DecodeError("meter answered with entries outside the requested range")
        del self._pending[meter_id]
        self._done(pending.request)
        self.completed += 1
        return entries
