"""Service orders through the service, carried out by a real head-end Commander on
simulated meters over DLMS (in memory, as ``tests/headend/command_support`` wires it), with
the bus between them: the order's status follows the head-end's result."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from openami.api.app import create_app
from openami.api.orders import OrderDesk
from openami.api.state import ApiState
from openami.api.store import Role
from openami.bus.commands import (
    SUBJECT_COMMAND_RESULTS,
    SUBJECT_COMMANDS,
    CommandRequest,
    decode_command_message,
    encode_command_message,
)
from openami.bus.memory import MemoryBus

from ..headend.command_support import World, stores


def head_end_step(bus_sub: object, world: World, bus: MemoryBus) -> None:
    """What a head-end worker does: take commands from the bus, run them, publish results."""
    for message in bus_sub.fetch(100, 0.0):  # type: ignore[attr-defined]
        request = decode_command_message(message.data)
        assert isinstance(request, CommandRequest)
        world.commander.submit(request, world.now)
        message.ack()
    world.settle()
    for result in world.commander.results() + world.results:
        bus.publish(SUBJECT_COMMAND_RESULTS, encode_command_message(result))
    world.results.clear()


def test_a_disconnect_order_ends_as_the_head_end_reports(api: ApiState, tmp_path: Path) -> None:
    bus = MemoryBus()
    api.orders = OrderDesk(api.store, bus)
    client = TestClient(create_app(api))
    commands = bus.subscribe(SUBJECT_COMMANDS, durable="headend")
    operator = api.store.create_key("control-room", Role.OPERATOR)
    reader = api.store.create_key("dashboard", Role.READ_ONLY)
    with stores("sqlite", tmp_path) as factory:
        world = World(factory)
        meter = world.fleet.identity(1).meter_id
        refused = client.post(
            "/api/v1/service-orders",
            json={"meter_id": meter, "kind": "disconnect"},
            headers={"X-API-Key": reader},
        )
        assert refused.status_code == 403  # a disconnect needs the operator role
        placed = client.post(
            "/api/v1/service-orders",
            json={"meter_id": meter, "kind": "disconnect"},
            headers={"X-API-Key": operator},
        )
        assert placed.status_code == 202 and placed.json()["status"] == "pending"
        order_id = placed.json()["order_id"]
        head_end_step(commands, world, bus)
        done = client.get(f"/api/v1/service-orders/{order_id}", headers={"X-API-Key": reader})
        assert done.json()["status"] == "success", done.json()
        assert done.json()["state_hex"]  # the switch state the meter reported afterwards
        assert not world.fleet.connected[1]  # the switch of the fleet's meter at index 1 is open
        read = client.post(
            "/api/v1/service-orders",
            json={"meter_id": meter, "kind": "on_demand_read"},
            headers={"X-API-Key": operator},
        ).json()
        bad = client.post(
            "/api/v1/service-orders",
            json={"meter_id": meter, "kind": "set_interval", "minutes": 7},
            headers={"X-API-Key": operator},
        )
        assert bad.status_code == 400
        head_end_step(commands, world, bus)
        listed = client.get(
            "/api/v1/service-orders", params={"meter_id": meter}, headers={"X-API-Key": reader}
        ).json()["orders"]
        assert [o["status"] for o in listed] == ["success", "success"]
        assert listed[1]["order_id"] == read["order_id"] and listed[1]["state_hex"]


def test_without_a_bus_orders_answer_503(client: TestClient, api: ApiState) -> None:
    key = api.store.create_key("control-room", Role.OPERATOR)
    answer = client.post(
        "/api/v1/service-orders",
        json={"meter_id": 1, "kind": "reconnect"},
        headers={"X-API-Key": key},
    )
    assert answer.status_code == 503
