"""``openami routeb``: credentials from the MDMS, and meters serving ECHONET Lite."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from openami.cli.main import main
from openami.fleet.fleet import Fleet
from openami.fleet.routeb import route_b_meter
from openami.hems.controller import HemsController
from openami.mdm.broute import BRouteStore
from openami.mdm.registry import Registry
from openami.protocols.echonet import EOJ, JST
from openami.transport.echonet_udp import EchonetSocket, EchonetUdpServer
from tests.fleet.routeb_support import route_a_at, routeb_meter, scenario_of, write_scenario
from tests.mdm.registry_support import BACKENDS, database_url, site

METER = EOJ(0x02, 0x88, 0x01)


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def _registered(url: str, *meters: int) -> None:
    registry = Registry.open(url)
    registry.register_fleet([site(i) for i in meters], datetime(2026, 7, 1, tzinfo=UTC))
    registry.close()


@pytest.fixture(params=BACKENDS)
def registry_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with database_url(request.param, tmp_path) as url:
        _registered(url, 1, 2, 3)
        yield url


def test_credentials_issue_print_and_revoke(
    registry_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _run(
        capsys, "routeb", "credentials", "issue", "--meter", "2", "--json", "--db", registry_url
    )
    assert code == 0
    issued = json.loads(out)
    assert set(issued) == {"meter", "rbid", "password"} and issued["meter"] == 2
    assert re.fullmatch(r"[0-9A-F]{32}", issued["rbid"])
    assert re.fullmatch(r"[A-Za-z0-9]{12}", issued["password"])

    code, out, _ = _run(
        capsys, "routeb", "credentials", "issue", "--meter", "2", "--db", registry_url
    )
    assert code == 0
    again = re.search(r"B-route ID ([0-9A-F]{32})\npassword +([A-Za-z0-9]{12})", out)
    assert again is not None
    with BRouteStore.open(registry_url) as store:
        assert store.lookup(issued["rbid"]) is None  # replaced
        assert store.lookup(again[1]) == again[2]

    code, _, err = _run(
        capsys, "routeb", "credentials", "revoke", "--meter", "2", "--db", registry_url
    )
    assert code == 0 and "revoked" in err
    with BRouteStore.open(registry_url) as store:
        assert store.lookup(again[1]) is None

    code, _, err = _run(
        capsys, "routeb", "credentials", "revoke", "--meter", "2", "--db", registry_url
    )
    assert (code, err) == (1, "error: meter 2 has no active B-route credentials to revoke\n")


def test_credentials_for_an_unknown_meter_are_a_one_line_error(
    registry_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(
        capsys, "routeb", "credentials", "issue", "--meter", "99", "--db", registry_url
    )
    assert (code, out, err) == (1, "", "error: meter 99 is not in the registry\n")


def test_credentials_in_a_data_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    data.mkdir()
    _registered(f"sqlite:///{data / 'registry.db'}", 1)
    code, out, _ = _run(
        capsys, "routeb", "credentials", "issue", "--meter", "1", "--json", "--data-dir", str(data)
    )
    assert code == 0 and json.loads(out)["meter"] == 1
    code, _, err = _run(
        capsys, "routeb", "credentials", "issue", "--meter", "1", "--data-dir", str(data),
        "--db", "sqlite://",
    )  # fmt: skip
    assert (code, err) == (2, "error: give --data-dir or --db, not both\n")
    afile = tmp_path / "file"
    afile.write_text("")
    code, _, err = _run(
        capsys, "routeb", "credentials", "issue", "--meter=1", f"--data-dir={afile}"
    )
    assert code == 2 and err.count("\n") == 1 and "is not a directory" in err
    empty = tmp_path / "empty"
    code, _, err = _run(
        capsys, "routeb", "credentials", "revoke", "--meter=1", f"--data-dir={empty}"
    )
    assert (code, err) == (
        2,
        f"error: --data-dir {empty} has no registry (registry.db); register meters with "
        f"`openami demo --data-dir {empty}`\n",
    )
    assert not empty.exists()


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--bind", "999.1.1.1"], 2, "--bind '999.1.1.1' is not an IPv4 address"),
        (["--meter", "5"], 2, "meter 5 is not in scenario routeb-test (meters 1..4)"),
        (["--meter", "3", "--meters", "3"], 2, "meter 5 is not in scenario routeb-test"),
        (["--at", "2026-08-03T12:00"], 2, "--at '2026-08-03T12:00' needs a UTC offset"),
        (["--at", "noon"], 2, "--at 'noon' is not an ISO date and time"),
        (["--bind", "255.255.255.254", "--meters", "3"], 2, "has no room for 3"),
        (["--bind", "203.0.113.5"], 1, "203.0.113.5 is not an address of this host"),
        (["--meters", "0"], 2, "--meters"),
    ],
)
def test_meter_input_errors_are_one_line(
    args: list[str], code: int, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario = write_scenario(tmp_path)
    got, out, err = _run(capsys, "routeb", "meter", "--scenario", str(scenario), *args)
    assert got == code
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err
    assert out == ""


def test_a_missing_scenario_is_a_one_line_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "routeb", "meter", "--scenario", "/nonexistent/s.toml")
    assert code == 2 and err.count("\n") == 1 and "cannot read scenario" in err


def test_an_address_in_use_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario = write_scenario(tmp_path)
    fleet = Fleet(scenario_of(scenario))
    node = route_b_meter(fleet, 0, lambda: datetime.now(UTC)).node
    with EchonetUdpServer() as holder:
        holder.add("127.36.20.9", node)
        code, _out, err = _run(
            capsys, "routeb", "meter", "--scenario", str(scenario), "--bind", "127.36.20.8",
            "--meters", "2",
        )  # fmt: skip
    assert code == 1
    assert err == (
        "error: cannot bind 127.36.20.9:3610: address in use "
        "(another ECHONET Lite node is bound to it)\n"
    )


def test_with_a_data_dir_only_meters_with_credentials_serve(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario = write_scenario(tmp_path)
    data = tmp_path / "data"
    data.mkdir()
    _registered(f"sqlite:///{data / 'registry.db'}", 1, 2)
    with BRouteStore.open(data_dir=data) as store:
        store.issue(1)
    code, _, err = _run(
        capsys, "routeb", "meter", "--scenario", str(scenario), "--bind", "127.36.22.1",
        "--meters", "2", "--data-dir", str(data),
    )  # fmt: skip
    assert code == 2
    assert err == (
        "error: meter 2 has no B-route credentials; issue them first: "
        "openami routeb credentials issue --meter 2\n"
    )
    code, out, _ = _run(
        capsys, "routeb", "meter", "--scenario", str(scenario), "--bind", "127.36.22.1",
        "--data-dir", str(data), "--duration", "0.2",
    )  # fmt: skip
    assert code == 0 and out == "meter 1 (OAM0000000001) on 127.36.22.1:3610\n"


def test_meters_serve_their_route_a_values_until_terminated(tmp_path: Path) -> None:
    scenario = write_scenario(tmp_path)
    at = datetime(2026, 8, 4, 12, 10, tzinfo=JST)  # 20 minutes before the next interval ends
    args = ["--scenario", str(scenario), "--bind", "127.36.21.1", "--meter", "2", "--meters", "3"]
    with routeb_meter(*args, "--at", at.isoformat(), meters=3) as meter:
        assert meter.lines == [
            f"meter {k} (OAM000000000{k}) on 127.36.21.{k - 1}:3610" for k in (2, 3, 4)
        ]
        _fleet, route_a = route_a_at(scenario_of(scenario), at + timedelta(minutes=1))
        with EchonetSocket("127.36.21.100", listen_multicast=False) as endpoint:
            hems = HemsController(endpoint, timeout=5.0)
            for k in (2, 3, 4):
                values = hems.get(f"127.36.21.{k - 1}", METER, [0xE0, 0xE3, 0x8D])
                assert values[0xE0] == route_a.import_register(k - 1)
                assert values[0xE3] == route_a.export_register(k - 1)
                assert values[0x8D] == f"000000000{k}"
        code, err = meter.stop()
    assert code == 0
    assert "meter clock 2026-08-04 12:1" in err and "multicast: member of 224.0.23.0" in err
    stopped = re.match(r"stopped: (\d+) replies to ", err.strip().splitlines()[-1])
    assert stopped is not None and int(stopped[1]) >= 3  # more if others multicast discovery
