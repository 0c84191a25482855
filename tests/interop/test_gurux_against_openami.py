"""Interop: the Gurux client (an implementation we did not write) against ``openami meter
serve``. It associates over TCP with HLS-GMAC and suite 0, reads the clock, the import
register and a load-profile range by selective access; the values must match the meter
model, rebuilt here from the seed. Our own client does the same against the same meter."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from openami.fleet.lab import lab_fleet
from openami.headend.dlms_client import DlmsClient, MeterKeys
from openami.protocols.dlms.obis import ObisCode
from openami.protocols.dlms.profile import decode_entries
from tests.conftest import free_port
from tests.interop.harness import REPO_ROOT, gurux_available, run_client

pytestmark = [
    pytest.mark.interop,
    pytest.mark.slow,
    pytest.mark.skipif(not gurux_available(), reason="gurux-dlms is not installed (test extras)"),
]
JST = timezone(timedelta(hours=9))
SEED, DAYS_BACK = 7, 2


@pytest.fixture
def meter() -> Iterator[tuple[dict[str, Any], datetime]]:
    started = datetime.now(UTC)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "openami.cli.main",
            "meter",
            "serve",
            "--meters",
            "1",
            "--per-port",
            "--port",
            str(free_port()),
            "--print-keys",
            "--seed",
            str(SEED),
            "--days-back",
            str(DAYS_BACK),
            "--duration",
            "60",
        ],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env=os.environ | {"PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        yield json.loads(proc.stdout.readline()), started
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()


def _gurux(desc: dict[str, Any], start: datetime, end: datetime) -> dict[str, Any]:
    run = run_client(
        [
            "--port",
            str(desc["port"]),
            "--client-address",
            str(desc["client_sap"]),
            "--server-address",
            str(desc["server_sap"]),
            "--authentication",
            "high-gmac",
            "--security",
            "authentication-encryption",
            "--system-title",
            "4f414d4845533031",
            "--block-cipher-key",
            str(desc["ek"]),
            "--authentication-key",
            str(desc["ak"]),
            "--invocation-counter",
            "100",
            "--read",
            "0.0.1.0.0.255:2",
            "--read",
            "1.0.1.8.0.255:2",
            "--read",
            "1.0.1.8.0.255:3",
            "--profile",
            "1.0.99.1.0.255",
            "--from",
            start.isoformat(),
            "--to",
            end.isoformat(),
        ]
    )
    return run.json()


def test_gurux_client_reads_an_openami_meter(meter: tuple[dict[str, Any], datetime]) -> None:
    desc, started = meter
    now = datetime.now(UTC)
    end = datetime.fromtimestamp(int(now.timestamp()) // 1800 * 1800, tz=UTC).astimezone(JST)
    start = end - timedelta(hours=2)
    out = _gurux(desc, start, end)
    assert out["association"]["server_system_title"] == desc["system_title"]
    # the clock is the host's
    clock = datetime.fromisoformat(out["reads"]["0.0.1.0.0.255:2"]["value"])
    assert abs((clock - datetime.now(UTC)).total_seconds()) < 30
    assert clock.utcoffset() == timedelta(hours=9)
    register = out["reads"]["1.0.1.8.0.255:2"]
    assert (register["scaler"], register["unit_name"]) == (0, "Wh")
    # the same meter, rebuilt from the seed the server was started with; its profile follows
    # the wall clock (the interval that closed last, or the one before if it closed meanwhile)
    fleet = lab_fleet(1, SEED, started, DAYS_BACK)
    closed = fleet.number_of(datetime.now(UTC))
    last = fleet.history(0, closed - 1, closed, now=closed)
    assert register["value"] in {int(v) for v in last.import_register}
    rows = out["profile"]["rows"]
    assert len(rows) == 5  # five half-hour ends from start to end, inclusive
    first = fleet.number_of(start)
    profile = fleet.history(0, first, first + 4, now=closed)
    assert [int(datetime.fromisoformat(row[0]).timestamp()) for row in rows] == [
        fleet.interval_end(int(k)) for k in profile.numbers
    ]
    for row, k in zip(rows, range(profile.numbers.size), strict=True):
        assert row[1] == profile.status[k]
        assert row[2] == profile.import_register[k]
        assert row[3] == profile.export_register[k]
        assert row[4] == profile.import_wh[k]
        assert row[5] == profile.export_wh[k]


def test_our_client_and_gurux_read_the_same_profile(meter: tuple[dict[str, Any], datetime]) -> None:
    desc, _started = meter
    end = datetime.fromtimestamp(int(time.time()) // 1800 * 1800, tz=UTC).astimezone(JST)
    start = end - timedelta(hours=3)
    gurux_rows = _gurux(desc, start, end)["profile"]["rows"]

    async def ours() -> list[list[object]]:
        keys = MeterKeys(bytes.fromhex(str(desc["ek"])), bytes.fromhex(str(desc["ak"])))
        async with DlmsClient(keys, timeout=5) as client:
            await client.open(str(desc["address"]), int(desc["port"]))
            buffer = await client.get(ObisCode.parse("1.0.99.1.0.255"), start=start, end=end)
            await client.close()
        return [
            [
                datetime.fromtimestamp(e.interval_end, tz=UTC).astimezone(JST).isoformat(),
                e.status,
                e.import_register,
                e.export_register,
                e.import_wh,
                e.export_wh,
            ]
            for e in decode_entries(buffer)
        ]

    assert asyncio.run(asyncio.wait_for(ours(), 30)) == gurux_rows
