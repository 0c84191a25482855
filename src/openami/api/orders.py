"""Service orders to meters: what an operator asks of a meter through Route C, carried by
the head-end's command bus, and its outcome as the head-end reports it.

An order is written to the API's database first (status ``pending``), then published as a
``CommandRequest`` whose id is the order's, so a publish repeated after a crash is one
command at the head-end (it keeps every id it was given). The head-end answers each command
with exactly one ``CommandResult``; ``collect`` records it, once, with what the meter
reported afterwards.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from openami.api.store import ApiStore, ServiceOrder
from openami.bus.base import Bus, BusSubscription
from openami.bus.commands import (
    SUBJECT_COMMAND_RESULTS,
    SUBJECT_COMMANDS,
    CommandKind,
    CommandRequest,
    CommandResult,
    Target,
    decode_command_message,
    encode_command_message,
)
from openami.errors import ConfigError, DecodeError

__all__ = ["OrderDesk", "OrderKind"]

RESULTS_CONSUMER = "api-service-orders"


class OrderKind(StrEnum):
    DISCONNECT = "disconnect"
    RECONNECT = "reconnect"
    SET_INTERVAL = "set_interval"  # minutes: 60, 30, 15 or 5
    SET_CONTRACT_CURRENT = "set_contract_current"  # amps
    TIME_SYNC = "time_sync"
    ON_DEMAND_READ = "on_demand_read"  # the import register, now


# an on-demand read is a GET of the import register (class 3, 1.0.1.8.0.255, value)
_IMPORT_REGISTER = Target(class_id=3, obis="1.0.1.8.0.255", id=2)


@dataclass
class OrderDesk:
    store: ApiStore
    bus: Bus
    ttl: timedelta = timedelta(minutes=15)

    def __post_init__(self) -> None:
        self._results: BusSubscription = self.bus.subscribe(
            SUBJECT_COMMAND_RESULTS, durable=RESULTS_CONSUMER
        )

    def submit(
        self,
        kind: OrderKind,
        meter_id: int,
        who: str,
        *,
        minutes: int | None = None,
        amps: int | None = None,
        now: datetime | None = None,
        deadline: datetime | None = None,
    ) -> ServiceOrder:
        """Record the order, then hand it to the head-end; it must be carried out before
        ``deadline`` (default: ``ttl`` from now)."""
        now = now or datetime.now(UTC)
        if deadline is not None and deadline <= now:
            raise ConfigError(f"the deadline {deadline.isoformat()} has passed")
        if kind is OrderKind.SET_INTERVAL and minutes not in (60, 30, 15, 5):
            raise ConfigError("set_interval needs minutes: 60, 30, 15 or 5")
        if kind is OrderKind.SET_CONTRACT_CURRENT and (amps is None or not 1 <= amps <= 200):
            raise ConfigError("set_contract_current needs amps: 1 .. 200")
        parameters = (
            f"minutes={minutes}"
            if kind is OrderKind.SET_INTERVAL
            else f"amps={amps}"
            if kind is OrderKind.SET_CONTRACT_CURRENT
            else ""
        )
        order = ServiceOrder(
            order_id=f"so-{secrets.token_hex(12)}",
            meter_id=meter_id,
            kind=kind.value,
            parameters=parameters,
            requested_by=who,
            requested_at=now,
            deadline=deadline or now + self.ttl,
            status="pending",
        )
        self.store.add_order(order)  # first, so that a result always finds its order
        request = CommandRequest(
            command_id=order.order_id,
            meter_id=meter_id,
            kind=CommandKind.GET if kind is OrderKind.ON_DEMAND_READ else CommandKind(kind.value),
            deadline=int(order.deadline.timestamp()),
            amps=amps if kind is OrderKind.SET_CONTRACT_CURRENT else None,
            minutes=minutes if kind is OrderKind.SET_INTERVAL else None,
            target=_IMPORT_REGISTER if kind is OrderKind.ON_DEMAND_READ else None,
        )
        self.bus.publish(SUBJECT_COMMANDS, encode_command_message(request))
        self.bus.flush()
        return order

    def collect(self, limit: int = 500) -> int:
        """Record the results that came back; returns how many orders they ended."""
        ended = 0
        messages = self._results.fetch(limit, 0.0)
        for message in messages:
            try:
                result = decode_command_message(message.data)
            except DecodeError:
                message.ack()  # not ours to understand; it cannot block the others
                continue
            if isinstance(result, CommandResult) and result.command_id.startswith("so-"):
                ended += self.store.finish_order(
                    result.command_id,
                    result.status.value,
                    result.reason,
                    result.state.hex() if result.state is not None else None,
                    datetime.fromtimestamp(result.completed_at, tz=UTC),
                )
            message.ack()
        return ended
