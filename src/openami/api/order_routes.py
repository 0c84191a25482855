"""Service orders through Route C: an operator asks a meter to disconnect, reconnect,
change its interval or contract current, synchronise its clock, or be read now; the order's
status follows what the head-end reports. Placing an order needs the operator role; reading
them any operator key."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from openami.api.access import Denied
from openami.api.data_routes import Who, audit, state_of
from openami.api.errors_doc import DATA_ERRORS
from openami.api.orders import OrderDesk, OrderKind
from openami.api.store import Role, ServiceOrder
from openami.errors import ConfigError

__all__ = ["desk_of", "router"]

router = APIRouter(prefix="/api/v1", tags=["service orders"], responses=DATA_ERRORS)


class OrderRequest(BaseModel):
    meter_id: int = Field(ge=1, le=2**40 - 1)
    kind: OrderKind
    minutes: int | None = Field(default=None, description="set_interval: 60, 30, 15 or 5")
    amps: int | None = Field(default=None, description="set_contract_current: 1 .. 200")


def desk_of(request: Request) -> OrderDesk:
    desk: OrderDesk | None = state_of(request).orders
    if desk is None:
        raise Denied(503, "this service has no head-end bus: start it with --bus nats://...")
    return desk


def _plain(order: ServiceOrder) -> dict[str, Any]:
    return {
        "order_id": order.order_id,
        "meter_id": order.meter_id,
        "kind": order.kind,
        "parameters": order.parameters,
        "requested_by": order.requested_by,
        "requested_at": order.requested_at.isoformat(),
        "deadline": order.deadline.isoformat(),
        "status": order.status,
        "reason": order.reason,
        "state_hex": order.state_hex,
        "completed_at": order.completed_at.isoformat() if order.completed_at else None,
    }


@router.post(
    "/service-orders",
    status_code=202,
    openapi_extra={"security": [{"apiKey": []}]},
    responses={503: {"description": "No head-end bus configured"}},
)
def place_order(request: Request, who: Who, order: OrderRequest) -> dict[str, Any]:
    """Place a service order (operator role); 202 with the order, status ``pending``."""
    who.require(Role.OPERATOR)
    desk = desk_of(request)
    if not state_of(request).data.meters(datetime.now(UTC), [order.meter_id]):
        raise Denied(404, f"no meter {order.meter_id} in the registry")
    try:
        placed = desk.submit(
            order.kind, order.meter_id, who.who, minutes=order.minutes, amps=order.amps
        )
    except ConfigError as exc:
        raise Denied(400, str(exc)) from None
    audit(request, who, 202, 1)
    return _plain(placed)


@router.get(
    "/service-orders/{order_id}",
    openapi_extra={"security": [{"apiKey": []}]},
    responses={503: {"description": "No head-end bus configured"}},
)
def get_order(request: Request, who: Who, order_id: str) -> dict[str, Any]:
    """An order and, once the head-end has reported, how it ended."""
    who.require(Role.READ_ONLY)
    desk_of(request).collect()
    found = state_of(request).store.orders(order_id=order_id)
    if not found:
        raise Denied(404, f"no service order {order_id}")
    audit(request, who, 200, 1)
    return _plain(found[0])


@router.get(
    "/service-orders",
    openapi_extra={"security": [{"apiKey": []}]},
    responses={503: {"description": "No head-end bus configured"}},
)
def list_orders(request: Request, who: Who, meter_id: int | None = None) -> dict[str, Any]:
    """Every order (of one meter, with ``meter_id``), oldest first."""
    who.require(Role.READ_ONLY)
    desk_of(request).collect()
    found = state_of(request).store.orders(meter_id=meter_id)
    audit(request, who, 200, len(found))
    return {"orders": [_plain(o) for o in found]}
