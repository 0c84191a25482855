"""The HEMS controller against fleet meters served on loopback UDP (addresses 127.36.30.x)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from openami.errors import ConfigError, RemoteProtocolError, TransportError
from openami.fleet.fleet import Fleet
from openami.hems.controller import (
    METER_EOJ,
    HemsController,
    Reading,
    property_names,
    resolve_property,
    slug,
)
from openami.protocols.echonet import EOJ, JST, NODE_PROFILE
from openami.transport.echonet_udp import EchonetSocket
from tests.fleet.routeb_support import MovableClock, serving_meters

START = datetime(2026, 8, 3, tzinfo=JST)
METERS = ["127.36.30.1", "127.36.30.2", "127.36.30.3"]


@pytest.fixture
def fleet() -> Fleet:
    return Fleet.simple(3, START, seed=13)


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock(START + timedelta(days=1, hours=9, minutes=59, seconds=59))


@pytest.fixture
def hems(fleet: Fleet, clock: MovableClock) -> Iterator[HemsController]:
    with (
        EchonetSocket("127.36.30.100") as endpoint,
        serving_meters(fleet, METERS, clock),
    ):
        yield HemsController(endpoint, timeout=2.0)


def _registers(fleet: Fleet, index: int, at: datetime) -> tuple[int, int]:
    closed = fleet.number_of(at)
    h = fleet.history(index, closed, closed, now=closed)
    return int(h.import_register[0]), int(h.export_register[0])


def test_discovery_by_multicast_and_by_address(hems: HemsController) -> None:
    found = [f for f in hems.discover(timeout=1.0) if f.address in METERS]
    assert [(f.address, f.eoj, f.production_number) for f in found] == [
        (address, METER_EOJ, f"000000000{k}") for k, address in enumerate(METERS, 1)
    ]
    assert found[0].class_name == "low-voltage smart electric energy meter"
    began = time.monotonic()
    asked = hems.discover(["127.36.30.2", "127.36.30.2"], timeout=2.0)
    assert [f.address for f in asked] == ["127.36.30.2"]
    assert time.monotonic() - began < 1.5  # every host answered: no need to wait longer
    assert hems.discover(["127.36.30.99"], timeout=0.3) == []


def test_reads_come_with_their_units(
    hems: HemsController, fleet: Fleet, clock: MovableClock
) -> None:
    imported, exported = _registers(fleet, 1, clock())
    energy = hems.read("127.36.30.2", "cumulative-energy-normal")
    assert (energy.epc, energy.value, energy.unit) == (0xE0, imported, "kWh")
    assert energy.shown == float(Decimal(imported) / 1000)
    assert hems.read("127.36.30.2", "0xE3").shown == float(Decimal(exported) / 1000)
    assert hems.scale("127.36.30.2") == Decimal("0.001")

    power = hems.read("127.36.30.2", "instantaneous-power")
    assert power.unit == "W" and power.shown == power.value
    currents = hems.read("127.36.30.2", "E8")
    assert currents.unit == "A" and currents.shown == {"r": power.value // 20 / 10} | {
        "t": power.value // 20 / 10
    }
    fixed = hems.read("127.36.30.2", "cumulative-energy-at-fixed-time-normal")
    assert fixed.shown == {
        "at": (START + timedelta(days=1, hours=9, minutes=30)).isoformat(),
        "value": float(Decimal(imported) / 1000),
    }
    assert energy.as_json()["property"] == "cumulative-energy-normal"
    assert energy.as_json()["epc"] == "0xE0"


def test_a_days_history_by_setting_the_day_first(hems: HemsController, fleet: Fleet) -> None:
    yesterday = hems.read("127.36.30.1", "historical-data-1-normal", day=1)
    assert yesterday.shown["day"] == 1
    noon = START + timedelta(hours=12)
    assert yesterday.shown["values"][24] == _registers(fleet, 0, noon)[0] / 1000
    today = hems.read("127.36.30.1", "0xE2")  # the day stays set until changed
    assert today.shown["day"] == 1
    assert hems.read("127.36.30.1", "0xE2", day=0).shown["values"][21] is None  # 10:30 later
    with pytest.raises(ConfigError, match="--day goes with"):
        hems.read("127.36.30.1", "0xE0", day=1)


def test_node_profile_properties(hems: HemsController) -> None:
    listed = hems.read("127.36.30.3", "self-node-instance-list-s")
    assert (listed.eoj, listed.shown, listed.unit) == (NODE_PROFILE, ["028801"], None)
    maps = hems.read("127.36.30.3", "0x9F", eoj=NODE_PROFILE)
    assert "0xD6" in maps.shown
    assert hems.read("127.36.30.3", "self-node-class-list-s").shown == ["0288"]
    assert hems.read("127.36.30.3", "0x8A", eoj=NODE_PROFILE).shown == "FFFFFF"
    assert hems.read("127.36.30.3", "manufacturer-code").shown == "FFFFFF"  # the meter's


def test_names_and_epcs_resolve_from_the_tables() -> None:
    assert slug("cumulative energy (normal)") == "cumulative-energy-normal"
    assert "instantaneous-power" in property_names()
    assert resolve_property("0xe7")[1].epc == 0xE7
    assert resolve_property("version-information")[0] == NODE_PROFILE
    assert resolve_property("operation-status")[0] == METER_EOJ  # the meter's comes first
    assert resolve_property("0x80", NODE_PROFILE)[0] == NODE_PROFILE
    with pytest.raises(ConfigError, match="unknown property 'watts'"):
        resolve_property("watts")
    with pytest.raises(ConfigError, match="EPC 0xF5 is not a property of class 0288"):
        resolve_property("F5")
    with pytest.raises(ConfigError, match="no property table for class 0130"):
        resolve_property("0x80", EOJ(0x01, 0x30, 0x01))


def test_silence_and_refusals_are_errors(hems: HemsController) -> None:
    hems.timeout = 0.3
    with pytest.raises(TransportError, match=r"^no answer from 127.36.30.99 within 0.3 s$"):
        hems.read("127.36.30.99", "instantaneous-power")
    with pytest.raises(RemoteProtocolError, match="refused to give EPC 0xF5"):
        hems.get("127.36.30.1", METER_EOJ, [0xE7, 0xF5])
    with pytest.raises(RemoteProtocolError, match="refused to set EPC 0xE5"):
        hems.set("127.36.30.1", METER_EOJ, {0xE5: b"\x80"})


def test_watch_follows_power_and_the_half_hourly_announcement(
    hems: HemsController, fleet: Fleet, clock: MovableClock
) -> None:
    seen: list[Reading] = []
    deadline = time.monotonic() + 10.0  # a busy machine may take a while; never for ever
    for reading in hems.watch("127.36.30.1", interval=0.3):
        seen.append(reading)
        if len(seen) == 1:
            clock.move(timedelta(seconds=2))  # 10:00:01: the meter announces 0xEA and 0xEB
        epcs = {r.epc for r in seen if r.announced}
        if ({0xEA, 0xEB} <= epcs and len(seen) >= 5) or time.monotonic() > deadline:
            break
    powers = [r for r in seen if not r.announced]
    assert len(powers) >= 2 and {r.epc for r in powers} == {0xE7}
    # the node's start-up announcement (0xD5) may be among them: the HEMS listened already
    announced = [r for r in seen if r.announced and r.epc != 0xD5]
    assert [r.epc for r in announced] == [0xEA, 0xEB]
    ten = START + timedelta(days=1, hours=10)
    imported, exported = _registers(fleet, 0, ten)
    assert announced[0].shown == {"at": ten.isoformat(), "value": imported / 1000}
    assert announced[1].shown == {"at": ten.isoformat(), "value": exported / 1000}
    assert all(r.at.tzinfo is UTC for r in seen)
