"""Service orders as CIM EndDeviceControls: a RequestMessage in, a ResponseMessage out,
validated against openami's published schema; the orders it places are carried out by a
real head-end Commander on simulated meters (as in ``test_service_orders``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from openami.api.app import create_app
from openami.api.orders import OrderDesk
from openami.api.state import ApiState
from openami.api.store import Role
from openami.bus.commands import SUBJECT_COMMANDS
from openami.bus.memory import MemoryBus
from openami.protocols.cim import (
    ControlKind,
    DateTimeInterval,
    DocumentKind,
    EndDeviceControl,
    EndDeviceControlDetail,
    EndDeviceControls,
    Header,
    RequestMessage,
    Result,
    Verb,
    decode_response_message,
    encode_request_message,
    end_device_control_type,
    validate,
)

from ..headend.command_support import World, stores
from .test_service_orders import head_end_step

PATH = "/api/v1/cim/end-device-controls"
XML = {"Content-Type": "application/xml"}


def _request(*controls: EndDeviceControl, verb: Verb = Verb.CREATE) -> bytes:
    header = Header(verb, datetime.now(UTC), "cis", "msg-1")
    return encode_request_message(RequestMessage(header, EndDeviceControls(controls)))


def _control(mrid: str, kind: ControlKind, *meters: int, **details: str) -> EndDeviceControl:
    return EndDeviceControl(
        mrid=mrid,
        control_type=end_device_control_type(kind),
        end_devices=tuple(str(m) for m in meters),
        details=tuple(EndDeviceControlDetail(k, v) for k, v in details.items()),
    )


def _operator(api: ApiState) -> dict[str, str]:
    return {**XML, "X-API-Key": api.store.create_key("cis", Role.OPERATOR)}


def test_controls_become_orders_the_head_end_carries_out(api: ApiState, tmp_path: Path) -> None:
    bus = MemoryBus()
    api.orders = OrderDesk(api.store, bus)
    client = TestClient(create_app(api))
    commands = bus.subscribe(SUBJECT_COMMANDS, durable="headend")
    headers = _operator(api)
    with stores("sqlite", tmp_path) as factory:
        world = World(factory)
        meter = world.fleet.identity(1).meter_id
        answer = client.post(
            PATH,
            content=_request(
                _control("c-1", ControlKind.DISCONNECT, meter),
                _control("c-2", ControlKind.SET_INTERVAL, meter, intervalMinutes="15"),
            ),
            headers=headers,
        )
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"].startswith("application/xml")
        validate(answer.content, DocumentKind.END_DEVICE_CONTROLS)
        reply = decode_response_message(answer.content)
        assert reply.header.verb is Verb.REPLY and reply.header.correlation_id == "msg-1"
        assert reply.reply.result is Result.OK and reply.reply.errors == ()
        assert reply.payload is not None
        orders = [c.mrid for c in reply.payload.controls]
        assert [c.end_devices for c in reply.payload.controls] == [(str(meter),)] * 2
        head_end_step(commands, world, bus)
        for order_id in orders:
            done = client.get(f"/api/v1/service-orders/{order_id}", headers=headers).json()
            assert done["status"] == "success", done
        assert not world.fleet.connected[1]


def test_what_cannot_be_placed_is_named_in_a_partial_or_failed_reply(api: ApiState) -> None:
    api.orders = OrderDesk(api.store, MemoryBus())
    client = TestClient(create_app(api))
    headers = _operator(api)
    later = EndDeviceControl(
        mrid="c-later",
        control_type=end_device_control_type(ControlKind.DISCONNECT),
        end_devices=("1",),
        scheduled=DateTimeInterval(start=datetime.now(UTC) + timedelta(hours=1)),
    )
    answer = client.post(
        PATH,
        content=_request(
            _control("c-ok", ControlKind.TIME_SYNC, 1),
            _control("c-reset", ControlKind.DEMAND_RESET, 1),
            _control("c-ghost", ControlKind.CONNECT, 1, 99_999_999),
            _control("c-bad", ControlKind.SET_INTERVAL, 1, intervalMinutes="7"),
            _control("c-nan", ControlKind.SET_CONTRACT_CURRENT, 1, contractCurrentAmps="x"),
            later,
        ),
        headers=headers,
    )
    assert answer.status_code == 200
    validate(answer.content, DocumentKind.END_DEVICE_CONTROLS)
    reply = decode_response_message(answer.content)
    assert reply.reply.result is Result.PARTIAL
    assert reply.payload is not None
    assert [c.end_devices for c in reply.payload.controls] == [("1",), ("1",)]  # sync, connect
    assert [(e.code, e.object_id) for e in reply.reply.errors] == [
        ("control.unsupported", "c-reset"),
        ("meter.unknown", "c-ghost"),
        ("control.invalid", "c-bad"),
        ("control.invalid", "c-nan"),
        ("control.unsupported", "c-later"),
    ]
    nothing = client.post(
        PATH, content=_request(_control("c-r", ControlKind.KEY_CHANGE, 1)), headers=headers
    )
    failed = decode_response_message(nothing.content)
    assert failed.reply.result is Result.FAILED and failed.payload is None


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (b"<not-xml", 400, "not an EndDeviceControls RequestMessage"),
        (b"<?xml version='1.0'?><x/>", 400, "not an EndDeviceControls RequestMessage"),
        (None, 400, "the verb must be create"),
    ],
)
def test_a_malformed_request_is_refused_in_one_line(
    api: ApiState, body: bytes | None, status: int, message: str
) -> None:
    api.orders = OrderDesk(api.store, MemoryBus())
    client = TestClient(create_app(api))
    content = body or _request(_control("c", ControlKind.DISCONNECT, 1), verb=Verb.CANCEL)
    answer = client.post(PATH, content=content, headers=_operator(api))
    assert answer.status_code == status and message in answer.json()["detail"]


def test_only_operators_and_only_with_a_bus(api: ApiState) -> None:
    body = _request(_control("c", ControlKind.DISCONNECT, 1))
    client = TestClient(create_app(api))
    reader = {**XML, "X-API-Key": api.store.create_key("dash", Role.READ_ONLY)}
    assert client.post(PATH, content=body, headers=reader).status_code == 403
    assert client.post(PATH, content=body, headers=_operator(api)).status_code == 503
