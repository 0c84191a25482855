"""``openami hems``: discover, read and watch fleet meters served on loopback (127.36.40.x)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest

from openami.cli.main import main
from openami.fleet.fleet import Fleet
from openami.protocols.echonet import JST
from tests.fleet.routeb_support import MovableClock, serving_meters

START = datetime(2026, 8, 3, tzinfo=JST)
METERS = ["127.36.40.1", "127.36.40.2"]
HEMS = ["--interface", "127.36.40.100"]


@pytest.fixture
def fleet() -> Iterator[Fleet]:
    fleet = Fleet.simple(2, START, seed=21)
    clock = MovableClock(START + timedelta(hours=20, minutes=5))
    with serving_meters(fleet, METERS, clock):
        yield fleet


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def _import_register(fleet: Fleet, index: int, at: datetime) -> int:
    closed = fleet.number_of(at)
    return int(fleet.history(index, closed, closed, now=closed).import_register[0])


def test_discover_lists_each_meter_with_its_production_number(
    fleet: Fleet, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _run(capsys, "hems", "discover", "--timeout", "1", *HEMS)
    assert code == 0
    lines = [line for line in out.splitlines() if line.split()[0] in METERS]
    assert lines == [
        "127.36.40.1     028801 low-voltage smart electric energy meter 0000000001",
        "127.36.40.2     028801 low-voltage smart electric energy meter 0000000002",
    ]
    code, out, _ = _run(
        capsys, "hems", "discover", "--host", "127.36.40.2", "--json", "--timeout", "1", *HEMS
    )
    assert code == 0
    assert json.loads(out) == [
        {
            "address": "127.36.40.2",
            "eoj": "028801",
            "class": "low-voltage smart electric energy meter",
            "production_number": "0000000002",
        }
    ]


def test_read_prints_the_value_in_its_unit(
    fleet: Fleet, capsys: pytest.CaptureFixture[str]
) -> None:
    register = _import_register(fleet, 0, START + timedelta(hours=20))
    code, out, _ = _run(
        capsys, "hems", "read", "cumulative-energy-normal", "--host", METERS[0], *HEMS
    )
    assert (code, out) == (0, f"cumulative energy (normal) (0xE0): {register / 1000:,.3f} kWh\n")
    code, out, _ = _run(capsys, "hems", "read", "0xE0", "--host", METERS[0], "--json", *HEMS)
    assert code == 0
    reading = json.loads(out)
    assert reading["value"] == register / 1000 and reading["unit"] == "kWh"
    assert (reading["property"], reading["eoj"]) == ("cumulative-energy-normal", "028801")

    code, out, _ = _run(capsys, "hems", "read", "instantaneous-power", "--host", METERS[1], *HEMS)
    assert code == 0 and out.startswith("instantaneous power (0xE7): ") and out.endswith(" W\n")
    code, out, _ = _run(
        capsys, "hems", "read", "historical-data-1-normal", "--day", "1", "--host", METERS[0], *HEMS
    )
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "historical data 1 (normal) (0xE2), 1 day(s) back:" and len(lines) == 49
    code, out, _ = _run(
        capsys, "hems", "read", "historical-data-1-normal", "--host", METERS[0], *HEMS
    )
    assert out.splitlines()[0].endswith("1 day(s) back:")  # the meter keeps the day set
    code, out, _ = _run(capsys, "hems", "read", "0xE2", "--day", "0", "--host", METERS[0], *HEMS)
    assert out.splitlines()[-1] == "  23:30  no data"  # today, 20:05: not read yet
    code, out, _ = _run(
        capsys, "hems", "read", "0xD6", "--eoj", "0EF001", "--host", METERS[0], *HEMS
    )
    assert (code, out) == (0, 'self-node instance list S (0xD6): ["028801"]\n')


def test_watch_prints_a_bounded_number_of_readings(
    fleet: Fleet, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _run(
        capsys, "hems", "watch", "--host", METERS[1], "--interval", "0.2", "--count", "3",
        "--json", *HEMS,
    )  # fmt: skip
    assert code == 0
    readings = [json.loads(line) for line in out.splitlines()]
    powers = [r for r in readings if not r["announced"]]
    assert len(powers) == 3 and {r["unit"] for r in powers} == {"W"}
    code, out, _ = _run(
        capsys, "hems", "watch", "--host", METERS[1], "--interval", "0.2", "--count", "1", *HEMS
    )
    assert code == 0 and " read instantaneous power (0xE7): " in out


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["read", "watts", "--host", "127.36.40.1"], 2, "unknown property 'watts'"),
        (["read", "0xE7", "--host", "meter-1"], 2, "--host 'meter-1' is not an IPv4 address"),
        (["read", "0xE7", "--host", "127.36.40.1", "--eoj", "zz"], 2, "--eoj 'zz' is not"),
        (["read", "0xE7", "--host", "127.36.40.1", "--interface", "x"], 2, "--interface 'x'"),
        (["read", "0xE7", "--host", "127.36.40.99", "--timeout", "0.3"], 1, "no answer from"),
        (["read", "0xE0", "--day", "1", "--host", "127.36.40.1"], 2, "--day goes with"),
        (["watch", "--host", "127.36.40.98", "--timeout", "0.3"], 1, "no answer from"),
        (["discover", "--host", "127.36.40.97", "--timeout", "0.3"], 1, "no ECHONET Lite node"),
        (["discover", "--interface", "203.0.113.5"], 1, "not an address of this host"),
    ],
)
def test_errors_are_one_line(
    fleet: Fleet, args: list[str], code: int, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    if "--interface" not in args:
        args = [*args, *HEMS]
    got, _, err = _run(capsys, "hems", *args)
    assert got == code
    assert err.count("\n") == 1 and message in err
