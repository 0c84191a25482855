"""Individual collection: read one meter's load profile over a range of interval ends.

A request from the MDMS becomes a ciphered get-request with selective access by range on the
clock column. Requests stay pending until the matching response arrives; ``retry_pending``
sends again whatever is still unanswered (lost on the way there or back), up to a limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from openami.bus.contract import CollectRequest
from openami.errors import DecodeError
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

__all__ = ["Collector", "DatagramSender"]

HEADEND_SYSTEM_TITLE = b"OAMHES01"
CONFIRMED_HIGH_PRIORITY = 0xC0  # invoke-id-and-priority: priority high, service confirmed


@dataclass
class _Pending:
    request: CollectRequest
    invoke_id: int
    attempts: int


class DatagramSender(Protocol):
    """Where requests leave: an in-memory endpoint, or a real UDP socket's adapter."""

    def sendto(self, payload: bytes, source: Address, destination: Address) -> None: ...


class Collector:
    def __init__(self, keys: KeyStore, endpoint: DatagramSender, address: Address) -> None:
        self.keys = keys
        self.endpoint = endpoint
        self.address = address
        self._pending: dict[int, _Pending] = {}  # meter_id -> the one request in flight
        self._queued: list[CollectRequest] = []
        self.sent = 0
        self.completed = 0
        self.failed = 0

    def submit(self, request: CollectRequest) -> None:
        self._queued.append(request)

    def pending(self) -> int:
        return len(self._pending) + len(self._queued)

    def active(self) -> set[str]:
        """The ``request_id`` of every request queued or in flight."""
        return {p.request.request_id for p in self._pending.values()} | {
            r.request_id for r in self._queued
        }

    def dispatch(self) -> None:
        """Send queued requests: one in flight per meter, the rest wait their turn."""
        waiting: list[CollectRequest] = []
        for request in self._queued:
            if request.meter_id in self._pending:
                waiting.append(request)
            else:
                self._send(_Pending(request, 0, 0))
        self._queued = waiting

    def retry_pending(self, max_attempts: int) -> None:
        for pending in list(self._pending.values()):
            if pending.attempts >= max_attempts:
                del self._pending[pending.request.meter_id]
                self.failed += 1
            else:
                self._send(pending)

    def _send(self, pending: _Pending) -> None:
        meter = self.keys.by_id(pending.request.meter_id)
        pending.invoke_id = (pending.invoke_id + 1) & 0x0F
        pending.attempts += 1
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
        self.completed += 1
        return entries
