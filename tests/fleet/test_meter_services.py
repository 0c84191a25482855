from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pytest

from openami.errors import SecurityError
from openami.fleet.fleet import Fleet
from openami.fleet.lab import start_lab_meters
from openami.fleet.meter_model import build_meter_model
from openami.fleet.meter_services import IMAGE_BLOCK_SIZE, KeyRing
from openami.headend.dlms_client import DlmsClient, MeterKeys
from openami.protocols.dlms.axdr import Data, DataType
from openami.protocols.dlms.cosem.model import ObjectModel
from openami.protocols.dlms.cosem_datetime import decode_datetime
from openami.protocols.dlms.obis import ObisCode
from openami.protocols.dlms.security import wrap_key
from openami.protocols.dlms.services import ActionResult, AttributeDescriptor, MethodDescriptor
from tests.conftest import free_port

JST = timezone(timedelta(hours=9))
START = datetime(2026, 8, 3, tzinfo=JST)
NOW = START + timedelta(days=2, minutes=5)


def ln(text: str) -> bytes:
    return ObisCode.parse(text).to_bytes()


def octets(raw: bytes) -> Data:
    return Data(DataType.OCTET_STRING, raw)


def u32(value: int) -> Data:
    return Data(DataType.DOUBLE_LONG_UNSIGNED, value)


@pytest.fixture
def setup() -> tuple[Fleet, ObjectModel, KeyRing]:
    fleet = Fleet.simple(2, START, seed=8)
    ident = fleet.identity(0)
    ring = KeyRing(ident.ek, ident.ak, ident.kek)
    return fleet, build_meter_model(fleet, 0, lambda: NOW, ring=ring), ring


def test_demand_and_maximum_demand_follow_the_interval_energy(
    setup: tuple[Fleet, ObjectModel, KeyRing],
) -> None:
    fleet, model, _ = setup
    closed = fleet.number_of(NOW)
    assert closed == fleet.origin + 96
    last = model.get(AttributeDescriptor(5, ln("1.0.1.4.0.255"), 3))
    energy = fleet.history(0, closed, closed, now=closed).import_wh
    assert last == u32(int(energy[0]) * 2)  # Wh per half-hour -> W
    # the maximum since the start of the month in Japan (August 1st, before the origin)
    month = fleet.number_of(datetime(2026, 8, 1, tzinfo=JST)) + 1
    august = fleet.history(0, month, closed, now=closed)
    assert august.numbers.size == 2 * 96
    peak = model.get(AttributeDescriptor(4, ln("1.0.1.6.0.255"), 2))
    assert peak == u32(int(august.import_wh.max()) * 2)
    when = model.get(AttributeDescriptor(4, ln("1.0.1.6.0.255"), 5))
    assert isinstance(when, Data)
    assert when.type is DataType.OCTET_STRING
    at = int(august.numbers[int(np.argmax(august.import_wh))])
    assert decode_datetime(when.value) == datetime.fromtimestamp(fleet.interval_end(at), tz=UTC)


def test_firmware_image_is_transferred_verified_and_activated(
    setup: tuple[Fleet, ObjectModel, KeyRing],
) -> None:
    _, model, _ = setup
    image = bytes(range(256)) * 3 + b"tail"
    identifier = b"fw-2.1:" + hashlib.sha256(image).hexdigest().encode()
    transfer = ln("0.0.44.0.0.255")

    def act(method: int, parameters: Data | None) -> ActionResult:
        return model.action(MethodDescriptor(18, transfer, method), parameters)[0]

    assert (
        act(1, Data(DataType.STRUCTURE, (octets(identifier), u32(len(image)))))
        is ActionResult.SUCCESS
    )
    blocks = [image[i : i + IMAGE_BLOCK_SIZE] for i in range(0, len(image), IMAGE_BLOCK_SIZE)]
    for n, chunk in enumerate(blocks[:-1]):
        assert act(2, Data(DataType.STRUCTURE, (u32(n), octets(chunk)))) is ActionResult.SUCCESS
    assert act(3, None) is ActionResult.OTHER_REASON  # a block is missing
    assert model.get(AttributeDescriptor(18, transfer, 4)) == u32(len(blocks) - 1)
    assert act(4, None) is ActionResult.TEMPORARY_FAILURE  # not verified: refuses to activate
    act(1, Data(DataType.STRUCTURE, (octets(identifier), u32(len(image)))))
    for n, chunk in enumerate(blocks):
        act(2, Data(DataType.STRUCTURE, (u32(n), octets(chunk))))
    assert act(3, None) is ActionResult.SUCCESS
    assert act(4, None) is ActionResult.SUCCESS
    assert model.get(AttributeDescriptor(18, transfer, 6)) == Data(DataType.ENUM, 6)


def test_a_tampered_image_fails_verification(setup: tuple[Fleet, ObjectModel, KeyRing]) -> None:
    _, model, _ = setup
    transfer = ln("0.0.44.0.0.255")
    image = b"x" * 100
    identifier = b"fw:" + hashlib.sha256(b"y" * 100).hexdigest().encode()
    model.action(
        MethodDescriptor(18, transfer, 1), Data(DataType.STRUCTURE, (octets(identifier), u32(100)))
    )
    model.action(
        MethodDescriptor(18, transfer, 2), Data(DataType.STRUCTURE, (u32(0), octets(image)))
    )
    assert model.action(MethodDescriptor(18, transfer, 3), None)[0] is ActionResult.OTHER_REASON


def test_passive_calendar_becomes_active(setup: tuple[Fleet, ObjectModel, KeyRing]) -> None:
    _, model, _ = setup
    calendar = ln("0.0.13.0.0.255")
    assert model.set(AttributeDescriptor(20, calendar, 6), octets(b"summer-tou")).name == "SUCCESS"
    assert model.action(MethodDescriptor(20, calendar, 1), None)[0] is ActionResult.SUCCESS
    assert model.get(AttributeDescriptor(20, calendar, 2)) == octets(b"summer-tou")


def test_key_transfer_unwraps_with_the_master_key_only(
    setup: tuple[Fleet, ObjectModel, KeyRing],
) -> None:
    _, model, ring = setup
    new_ek = bytes(range(100, 116))
    setup_ln = ln("0.0.43.0.0.255")
    wrong = wrap_key(bytes(16), new_ek)
    bad = Data(DataType.ARRAY, (Data(DataType.STRUCTURE, (Data(DataType.ENUM, 0), octets(wrong))),))
    assert model.action(MethodDescriptor(64, setup_ln, 2), bad)[0] is ActionResult.OTHER_REASON
    assert ring.changes == 0
    good = Data(
        DataType.ARRAY,
        (Data(DataType.STRUCTURE, (Data(DataType.ENUM, 0), octets(wrap_key(ring.kek, new_ek)))),),
    )
    assert model.action(MethodDescriptor(64, setup_ln, 2), good)[0] is ActionResult.SUCCESS
    assert ring.ek == new_ek


def test_after_a_key_change_over_dlms_only_the_new_key_opens_the_meter() -> None:
    async def go() -> None:
        meters, servers = await start_lab_meters(
            1, "127.0.0.1", free_port(), per_port=True, clock=lambda: NOW.astimezone(UTC)
        )
        meter = meters[0]
        new_ek = bytes(np.arange(16, dtype=np.uint8) ^ 0x5A)
        try:
            async with DlmsClient(MeterKeys(meter.identity.ek, meter.identity.ak)) as client:
                await client.open(meter.host, meter.port)
                wrapped = wrap_key(meter.identity.kek, new_ek)
                result = await client.action(
                    MethodDescriptor(64, ln("0.0.43.0.0.255"), 2),
                    Data(
                        DataType.ARRAY,
                        (Data(DataType.STRUCTURE, (Data(DataType.ENUM, 0), octets(wrapped))),),
                    ),
                )
                assert result is ActionResult.SUCCESS
                await client.close()
            async with DlmsClient(MeterKeys(meter.identity.ek, meter.identity.ak)) as old:
                with pytest.raises(SecurityError):
                    await old.open(meter.host, meter.port)
            async with DlmsClient(MeterKeys(new_ek, meter.identity.ak)) as fresh:
                await fresh.open(meter.host, meter.port)
                await fresh.close()
        finally:
            for server in servers:
                server.close()

    asyncio.run(asyncio.wait_for(go(), 20))
