"""Service orders as CIM EndDeviceControls: a RequestMessage in, a ResponseMessage out.

A utility's own systems (a customer information system, an outage manager) speak
IEC 61968-9 rather than openami's JSON: they ``create`` EndDeviceControls, each naming a
control type and the meters it is for. Every (control, meter) becomes a service order, as
``POST /api/v1/service-orders`` places one, and the reply says what became of the request:

- ``OK``: every control was placed for every meter; ``PARTIAL``: some were; ``FAILED``:
  none. Each refusal is an Error naming its control's mRID: ``control.unsupported`` (a
  control type openami's head-end does not carry out, or one scheduled to start later),
  ``control.invalid`` (a parameter missing or out of range, a deadline already past) or
  ``meter.unknown`` (not in the registry).
- The reply's payload echoes the controls placed, one per order, each with the service
  order's id as its mRID: ``GET /api/v1/service-orders/{mRID}`` follows it to its end.

A control's ``scheduledInterval`` end becomes the order's deadline. Parameters come from its
details: ``intervalMinutes`` (60, 30, 15 or 5) and ``contractCurrentAmps`` (1 .. 200).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request, Response

from openami.api.access import Denied
from openami.api.data_routes import Who, audit, state_of
from openami.api.errors_doc import DATA_ERRORS
from openami.api.order_routes import desk_of
from openami.api.orders import OrderKind
from openami.api.store import Role
from openami.errors import ConfigError, DecodeError
from openami.protocols.cim import (
    ControlKind,
    DocumentKind,
    EndDeviceControl,
    EndDeviceControls,
    Header,
    Reply,
    ReplyError,
    ResponseMessage,
    Result,
    Verb,
    control_kind,
    decode_request_message,
    encode_response_message,
    validate,
)

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["service orders"], responses=DATA_ERRORS)
XML = "application/xml"
SOURCE = "openami"
_ORDERS = {
    ControlKind.DISCONNECT: OrderKind.DISCONNECT,
    ControlKind.CONNECT: OrderKind.RECONNECT,
    ControlKind.SET_INTERVAL: OrderKind.SET_INTERVAL,
    ControlKind.SET_CONTRACT_CURRENT: OrderKind.SET_CONTRACT_CURRENT,
    ControlKind.TIME_SYNC: OrderKind.TIME_SYNC,
    ControlKind.ON_DEMAND_READ: OrderKind.ON_DEMAND_READ,
}
_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "An EndDeviceControls RequestMessage (verb create), openami's CIM schema",
        "content": {XML: {"schema": {"type": "string"}}},
    },
    "security": [{"apiKey": []}],
}


def _number(control: EndDeviceControl, name: str) -> int | None:
    for detail in control.details:
        if detail.name == name:
            try:
                return int(detail.value)
            except ValueError:
                raise ConfigError(f"{name} {detail.value!r} is not a whole number") from None
    return None


@router.post(
    "/cim/end-device-controls",
    openapi_extra=_BODY,
    response_class=Response,
    responses={
        200: {"description": "The ResponseMessage (reply)", "content": {XML: {}}},
        503: {"description": "No head-end bus configured"},
    },
)
async def end_device_controls(request: Request, who: Who) -> Response:
    """Place the controls of an EndDeviceControls request (operator role); the reply says
    which were placed (their service order ids) and why the others were not."""
    who.require(Role.OPERATOR)
    desk = desk_of(request)
    try:
        asked = decode_request_message(await request.body())
    except DecodeError as exc:
        raise Denied(400, f"not an EndDeviceControls RequestMessage: {exc}") from None
    if asked.header.verb is not Verb.CREATE:
        raise Denied(400, f"the verb must be create, not {asked.header.verb.value}")
    now = datetime.now(UTC)
    asked_meters = {int(d) for c in asked.payload.controls for d in c.end_devices if d.isdigit()}
    rows = state_of(request).data.meters(now, sorted(asked_meters)) if asked_meters else []
    known = {row.meter_id for row in rows}
    errors: list[ReplyError] = []
    placed: list[EndDeviceControl] = []
    wanted = 0
    for control in asked.payload.controls:
        wanted += len(control.end_devices)
        asked_kind = control_kind(control.control_type)
        kind = _ORDERS.get(asked_kind) if asked_kind is not None else None
        scheduled = control.scheduled
        if kind is None or (scheduled and scheduled.start and scheduled.start > now):
            why = (
                f"control type {control.control_type} is not carried out by openami"
                if kind is None
                else "a control scheduled to start later is not carried out yet"
            )
            errors.append(ReplyError("control.unsupported", why, control.mrid))
            continue
        try:
            minutes = _number(control, "intervalMinutes")
            amps = _number(control, "contractCurrentAmps")
        except ConfigError as exc:
            errors.append(ReplyError("control.invalid", str(exc), control.mrid))
            continue
        for device in control.end_devices:
            meter = int(device) if device.isdigit() else None
            if meter is None or meter not in known:  # one registry query for the request
                errors.append(
                    ReplyError("meter.unknown", f"no meter {device} in the registry", control.mrid)
                )
                continue
            try:
                order = desk.submit(
                    kind,
                    meter,
                    who.who,
                    minutes=minutes,
                    amps=amps,
                    now=now,
                    deadline=scheduled.end if scheduled else None,
                )
            except ConfigError as exc:
                errors.append(ReplyError("control.invalid", str(exc), control.mrid))
                continue
            placed.append(
                EndDeviceControl(
                    mrid=order.order_id,
                    control_type=control.control_type,
                    end_devices=(device,),
                    scheduled=scheduled,
                    reason=control.reason,
                    details=control.details,
                )
            )
    result = Result.OK if len(placed) == wanted else Result.PARTIAL if placed else Result.FAILED
    reply = ResponseMessage(
        Header(Verb.REPLY, now, SOURCE, uuid.uuid4().hex, asked.header.message_id),
        Reply(result, tuple(errors)),
        EndDeviceControls(tuple(placed)) if placed else None,
    )
    document = encode_response_message(reply)
    validate(document, DocumentKind.END_DEVICE_CONTROLS)  # what we publish, we keep to
    audit(request, who, 200, len(placed))
    return Response(document, media_type=XML)
