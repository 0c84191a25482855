"""Interop: pychonet (an ECHONET Lite client we did not write) against ``openami routeb meter``.

The meter runs as a real process (meter 1 of ``scenarios/demo.toml``, on day 2 at 12:10).
pychonet finds it by multicast, asks its instance list, reads both property maps and then
every property the Get map names, one Get each, as Home Assistant's integration does; it also
sets the day of historical data 1 (0xE5) and reads that day. Every value is checked against
what Route A (DLMS, in memory) reads from the same meter of the same scenario, and decoded
here byte by byte or by pychonet's own decoders, never by openami's property tables.

Addresses: the meter on 127.36.50.2 and pychonet on 127.36.50.100 rather than 127.0.0.2 and
0.0.0.0, so that the test can run beside other ECHONET Lite software on this host (a second
socket on 0.0.0.0:3610 would take part of pychonet's replies). pychonet binds port 3610 with
SO_REUSEADDR as it always does; the meter answers to port 3610.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest

from openami.fleet.scenario import load_scenario
from openami.protocols.echonet import JST, LOW_VOLTAGE_SMART_METER_CLASS, NODE_PROFILE_CLASS
from openami.protocols.echonet.objects import Access
from tests.fleet.route_a import RouteA
from tests.fleet.routeb_support import REPO_ROOT, route_a_at, routeb_meter

pychonet = pytest.importorskip("pychonet", reason="pychonet is not installed (test extras)")
from pychonet.lib.const import GET  # noqa: E402
from pychonet.lib.epc_functions import EPC_SUPER_FUNCTIONS  # noqa: E402
from pychonet.lib.functions import decodeEchonetMsg  # noqa: E402
from pychonet.lib.udpserver import UDPServer  # noqa: E402

pytestmark = [pytest.mark.interop, pytest.mark.slow]

METER_ADDRESS = "127.36.50.2"
HEMS_ADDRESS = "127.36.50.100"
AT = datetime(2026, 8, 4, 12, 10, tzinfo=JST)  # day 2; the next interval ends at 12:30
NO_DATA = 0xFFFFFFFE
Raw = dict[int, Any]


def _u(raw: bytes) -> int:
    return int.from_bytes(raw, "big")


def _registers(raw: bytes) -> list[int | None]:
    values = [_u(raw[k : k + 4]) for k in range(0, len(raw), 4)]
    return [None if v == NO_DATA else v for v in values]


def _day_of_profile(route_a: RouteA, day: datetime, column: str) -> list[int | None]:
    entries = route_a.profile(0, day, day + timedelta(hours=23, minutes=30))
    by_end = {e.interval_end: getattr(e, column) for e in entries}
    return [by_end.get(int((day + timedelta(minutes=30 * k)).timestamp())) for k in range(48)]


async def _session() -> tuple[list[str], Raw, Raw, Raw, Raw, bool]:
    """What pychonet finds and reads: the hosts found by multicast, every Get property of the
    meter (raw EDT, and decoded by pychonet where it can), of the node profile, and the
    historical data after setting 0xE5 to yesterday."""
    udp = UDPServer(local_ip=HEMS_ADDRESS)
    udp.run(HEMS_ADDRESS, 3610, loop=asyncio.get_running_loop())
    api = pychonet.ECHONETAPIClient(server=udp)
    found: list[str] = []
    heard: list[dict[str, Any]] = []

    async def discovered(host: str) -> None:
        found.append(host)

    async def listen(data: bytes, source: tuple[str, int]) -> None:
        if source[0] == METER_ADDRESS:
            heard.append(decodeEchonetMsg(data))

    # pychonet's client keeps only the discovery properties of a node profile; its own
    # transport and decoder give the rest
    udp.subscribe(listen)
    api.configure(message_timeout=20, logger=lambda *_: None, discover_callback=discovered)

    async def node_profile(epc: int) -> bytes:
        assert await api.echonetMessage(METER_ADDRESS, 0x0E, 0xF0, 0x01, GET, [{"EPC": epc}])
        for message in reversed(heard):
            if (message["SEOJGC"], message["SEOJCC"]) == (0x0E, 0xF0):
                (prop,) = message["OPC"]
                assert prop["EPC"] == epc
                return bytes(prop["EDT"])
        raise AssertionError(f"no answer for node profile EPC 0x{epc:02X}")

    try:
        await api.discover()  # multicast: unknown nodes are reported through the callback
        assert await api.discover(METER_ADDRESS) is True
        assert await api.getAllPropertyMaps(METER_ADDRESS, 0x02, 0x88, 0x01) is True
        meter = pychonet.LowVoltageSmartElectricEnergyMeter(METER_ADDRESS, api)
        raw, decoded, node = {}, {}, {}
        for epc in meter.getGetProperties():
            raw[epc] = await meter.getMessage(epc)
            if epc not in (0x83, 0x8A, 0x8C, 0x9D, 0x9E, 0x9F):  # pychonet keeps these decoded
                decoded[epc] = await meter.update(epc, no_request=True)
        for epc in _property_map(await node_profile(0x9F)):
            node[epc] = await node_profile(epc)
        was_set = await meter.setMessage(0xE5, 1)
        yesterday = {epc: await meter.getMessage(epc) for epc in (0xE5, 0xE2, 0xE4)}
        return found, raw, decoded, node, yesterday, was_set
    finally:
        udp.close()


def _property_map(edt: bytes) -> set[int]:
    """pychonet's decoding of a property map (both the list and the bitmap form)."""
    return set(EPC_SUPER_FUNCTIONS[0x9F](edt))


def test_pychonet_reads_every_property_and_gets_route_a_values() -> None:
    scenario_path = REPO_ROOT / "scenarios" / "demo.toml"
    args = ["--bind", METER_ADDRESS, "--scenario", str(scenario_path), "--at", AT.isoformat()]
    with routeb_meter(*args) as meter:
        assert meter.lines == [f"meter 1 (OAM0000000001) on {METER_ADDRESS}:3610"]
        found, raw, decoded, node, yesterday, was_set = asyncio.run(
            asyncio.wait_for(_session(), timeout=90)
        )
        code, _err = meter.stop()
    assert code == 0
    assert METER_ADDRESS in found

    # Route A: the same meter of the same scenario, at the same moment (less than 20 minutes
    # after AT, so the last closed interval is 12:00 on both sides)
    _fleet, route_a = route_a_at(load_scenario(scenario_path), AT + timedelta(minutes=1))
    today, noon = AT.replace(hour=0, minute=0), AT.replace(hour=12, minute=0)
    last = route_a.profile(0, noon, noon)[0]
    net_wh = last.import_wh - last.export_wh
    sign = 1 if net_wh >= 0 else -1
    net_w = sign * (abs(net_wh) * 3600 // 1800)  # the last closed interval's average power
    per_leg = sign * (abs(net_w) * 10 // 200)  # in 0.1 A, half the power on each 100 V leg

    gets = LOW_VOLTAGE_SMART_METER_CLASS.epcs(Access.GET)
    assert set(raw) == gets  # pychonet decoded our Get map (a bitmap: 25 properties)
    assert all(raw[epc] for epc in gets)  # every one answered with data

    def registers_of(day: datetime, column: str, got: bytes, back: int) -> None:
        assert _u(got[:2]) == back
        assert _registers(got[2:]) == _day_of_profile(route_a, day, column)

    def fixed_time(column: str) -> Callable[[bytes], None]:
        def check(got: bytes) -> None:
            stamp = datetime(_u(got[:2]), got[2], got[3], got[4], got[5], got[6], tzinfo=JST)
            assert stamp == noon
            assert _u(got[7:]) == getattr(last, column)

        return check

    # each check returns False for a wrong value, or asserts itself
    checks: dict[int, Callable[[Any], object]] = {
        0x80: lambda got: decoded[0x80] == "on",
        0x81: lambda got: got == b"\x00",
        0x82: lambda got: got == b"\x00\x00F\x00",  # Appendix release F
        0x88: lambda got: got == b"\x42",  # no fault
        0x8A: lambda got: got == "Experimental",  # pychonet's name for 0xFFFFFF
        0x8D: lambda got: got == b"0000000001\x00\x00",
        0x97: lambda got: decoded[0x97] in {f"12:{m}" for m in range(10, 30)},
        0x98: lambda got: got == bytes([0x07, 0xEA, 8, 4]),
        # pychonet keeps the property maps decoded (its list or bitmap decoder)
        0x9D: lambda got: set(got) == {0x80, 0x81, 0x88},
        0x9E: lambda got: set(got) == {0x81, 0xE5, 0xED},
        0x9F: lambda got: set(got) == gets,
        0xD3: lambda got: decoded[0xD3] == 1,
        0xD7: lambda got: decoded[0xD7] == 8,
        0xE0: lambda got: decoded[0xE0] == _u(got) == route_a.import_register(0),
        0xE1: lambda got: decoded[0xE1] == 0.001,
        0xE2: lambda got: registers_of(today, "import_register", got, 0),
        0xE3: lambda got: decoded[0xE3] == _u(got) == route_a.export_register(0),
        0xE4: lambda got: registers_of(today, "export_register", got, 0),
        0xE5: lambda got: got == b"\x00",
        0xE7: lambda got: decoded[0xE7] == net_w,
        0xE8: lambda got: (
            decoded[0xE8] == {"r_phase_amperes": per_leg / 10, "t_phase_amperes": per_leg / 10}
        ),
        0xEA: fixed_time("import_register"),
        0xEB: fixed_time("export_register"),
        0xEC: lambda got: got == b"\xff" * 6 + b"\x01" + NO_DATA.to_bytes(4, "big") * 2,
        0xED: lambda got: got == b"\xff" * 6 + b"\x01",
    }
    assert set(checks) == gets
    for epc, check in checks.items():
        assert check(raw[epc]) is not False, f"EPC 0x{epc:02X}: {raw[epc]!r}"

    # 0xE5 set by pychonet: the history is yesterday's, whole, as Route A's profile has it
    assert was_set is True and yesterday[0xE5] == b"\x01"
    registers_of(today - timedelta(days=1), "import_register", yesterday[0xE2], 1)
    registers_of(today - timedelta(days=1), "export_register", yesterday[0xE4], 1)
    assert None not in _registers(yesterday[0xE2][2:])

    # the node profile, every Get property (its Get map as pychonet decodes it)
    assert set(node) == NODE_PROFILE_CLASS.epcs(Access.GET)
    assert node[0x80] == b"\x30"
    assert node[0x82] == bytes([1, 13, 1, 0])  # ECHONET Lite 1.13, format 1
    assert node[0x83] == b"\xfe\xff\xff\xff" + b"OAM" + (1).to_bytes(10, "big")
    assert node[0x8A] == b"\xff\xff\xff"
    assert _property_map(node[0x9D]) == {0x80, 0xD5}
    assert _property_map(node[0x9E]) == set()
    assert _property_map(node[0x9F]) == set(node)
    assert node[0xD3] == b"\x00\x00\x01"  # one device object
    assert node[0xD4] == b"\x00\x02"  # two classes, the node profile's included
    assert node[0xD6] == b"\x01\x02\x88\x01"
    assert node[0xD7] == b"\x01\x02\x88"
