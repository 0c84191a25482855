from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from openami.errors import SecurityError, TransportError
from openami.fleet.lab import start_lab_meters
from openami.headend.dlms_client import DlmsClient, MeterKeys
from openami.protocols.dlms.axdr import DataType
from openami.protocols.dlms.cosem_datetime import decode_datetime
from openami.protocols.dlms.obis import ObisCode
from openami.protocols.dlms.profile import decode_entries
from tests.conftest import free_port

NOW = datetime(2026, 11, 25, 6, 10, tzinfo=UTC)


async def _session(udp: bool) -> None:
    port = free_port(2)  # two meters, one port each
    meters, servers = await start_lab_meters(
        2, "127.0.0.1", port, tcp=not udp, per_port=True, clock=lambda: NOW
    )
    try:
        meter = meters[1]
        keys = MeterKeys(meter.identity.ek, meter.identity.ak)
        async with DlmsClient(keys, udp=udp, timeout=3) as client:
            await client.open(meter.host, meter.port)
            clock = await client.get(ObisCode.parse("0.0.1.0.0.255"))
            assert decode_datetime(clock.value) == NOW
            register = await client.get(ObisCode.parse("1.0.1.8.0.255"))
            assert register.type is DataType.DOUBLE_LONG_UNSIGNED
            rows = decode_entries(
                await client.get(
                    ObisCode.parse("1.0.99.1.0.255"), start=NOW - timedelta(hours=3), end=NOW
                )
            )
            assert len(rows) == 6  # six half-hours closed in the last three hours
            assert rows[-1].import_register == register.value
            await client.close()
    finally:
        for server in servers:
            server.close()


@pytest.mark.parametrize("udp", [False, True], ids=["tcp", "udp"])
def test_our_client_reads_a_lab_meter_over_the_wrapper(udp: bool) -> None:
    asyncio.run(asyncio.wait_for(_session(udp), 20))


async def _wrong_key() -> None:
    port = free_port()
    meters, servers = await start_lab_meters(1, "127.0.0.1", port, per_port=True, clock=lambda: NOW)
    try:
        async with DlmsClient(MeterKeys(bytes(16), meters[0].identity.ak), timeout=3) as client:
            with pytest.raises(SecurityError, match="refused"):
                await client.open(meters[0].host, meters[0].port)
    finally:
        for server in servers:
            server.close()


def test_a_client_without_the_meters_key_gets_nothing() -> None:
    asyncio.run(asyncio.wait_for(_wrong_key(), 20))


def test_nobody_listening_is_a_transport_error() -> None:
    async def go() -> None:
        async with DlmsClient(MeterKeys(bytes(16), bytes(16)), timeout=1) as client:
            with pytest.raises(TransportError):
                await client.open("127.0.0.1", free_port())

    asyncio.run(go())
