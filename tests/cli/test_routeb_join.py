"""The B-route join end to end with real processes: ``openami routeb meter`` with the MDMS's
credentials answers only a HEMS that joined (PANA on UDP 716) with the meter's issued
B-route ID and password; a wrong password, another meter's ID or a revoked ID gets nothing.
The same through ``openami routeb dongle``: HEMS software on its pseudo-terminal joins with
SKSTACK-IP commands (EVENT 25) and reads the meter, and is refused (EVENT 24) with a wrong
password or after revocation."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from openami.errors import SecurityError, TransportError
from openami.hems.controller import HemsController
from openami.mdm.broute import BRouteStore
from openami.protocols.echonet import EOJ
from openami.transport.echonet_udp import EchonetSocket
from openami.transport.pana_join import join
from tests.fleet.routeb_support import REPO_ROOT, routeb_meter, write_scenario
from tests.hems.test_dongle import FRAME, Hems
from tests.mdm.registry_support import site
from tests.processes import openami

METER = EOJ(0x02, 0x88, 0x01)
NET = "127.36.70"


@pytest.fixture
def data(tmp_path: Path) -> Path:
    from datetime import UTC, datetime

    from openami.mdm.registry import Registry

    folder = tmp_path / "data"
    folder.mkdir()
    registry = Registry.open(f"sqlite:///{folder / 'registry.db'}")
    registry.register_fleet([site(i) for i in (1, 2)], datetime(2026, 7, 1, tzinfo=UTC))
    registry.close()
    return folder


def _reads(host: str, meter: str) -> bool:
    with EchonetSocket(host, listen_multicast=False) as endpoint:
        try:
            HemsController(endpoint, timeout=1.5).get(meter, METER, [0xE7])
        except TransportError:
            return False
    return True


def test_only_a_hems_that_joined_with_the_issued_credentials_is_answered(
    tmp_path: Path, data: Path
) -> None:
    with BRouteStore.open(data_dir=data) as store:
        mine, other = store.issue(1), store.issue(2)
    scenario = write_scenario(tmp_path)
    meter = f"{NET}.1"
    args = ["--scenario", str(scenario), "--bind", meter, "--data-dir", str(data)]
    with routeb_meter(*args):
        assert not _reads(f"{NET}.100", meter)  # not joined: silence
        with pytest.raises(SecurityError):
            join(meter, mine.rbid, "wrongpasswrd", bind=f"{NET}.100", timeout=5)
        with pytest.raises(SecurityError):  # meter 2's customer cannot open meter 1
            join(meter, other.rbid, other.password, bind=f"{NET}.100", timeout=5)
        assert not _reads(f"{NET}.100", meter)
        session = join(meter, mine.rbid, mine.password, bind=f"{NET}.100", timeout=5)
        assert session.rbid == mine.rbid
        assert _reads(f"{NET}.100", meter)
        assert not _reads(f"{NET}.101", meter)  # admission is per HEMS address
        with BRouteStore.open(data_dir=data) as store:
            assert store.revoke(1)
        with pytest.raises(SecurityError):
            join(meter, mine.rbid, mine.password, bind=f"{NET}.101", timeout=5)


@contextmanager
def _dongle(meter: str, bind: str) -> Iterator[str]:
    proc = subprocess.Popen(
        openami("routeb", "dongle", "--meter", "1", "--meter-address", meter, "--bind", bind,
                "--duration", "120"),
        cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        path = proc.stdout.readline().strip()
        assert path.startswith("/dev/pts/"), proc.stderr.read() if proc.stderr else ""
        yield path
    finally:
        proc.kill()
        proc.communicate(timeout=10)


def _skjoin(hems: Hems, rbid: str, password: str) -> tuple[str, str]:
    """The sequence HEMS software sends; returns (the meter's address, the join's event)."""
    assert hems.command("SKVER")[-1] == "OK"
    assert hems.command("SKRESET")[-1] == "OK"
    assert hems.command(f"SKSETPWD C {password}")[-1] == "OK"
    assert hems.command(f"SKSETRBID {rbid}")[-1] == "OK"
    assert hems.command("SKSCAN 2 FFFFFFFF 6 0")[-1] == "OK"
    scan = hems.until("EVENT 22")
    mac = next(line.split(":", 1)[1] for line in scan if line.strip().startswith("Addr:"))
    channel = next(line.split(":", 1)[1] for line in scan if line.strip().startswith("Channel:"))
    pan = next(line.split(":", 1)[1] for line in scan if line.strip().startswith("Pan ID:"))
    assert hems.command(f"SKSREG S2 {channel}")[-1] == "OK"
    assert hems.command(f"SKSREG S3 {pan}")[-1] == "OK"
    hems.write(f"SKLL64 {mac}\r\n".encode())
    address = hems.until("FE80")[-1]
    hems.write(f"SKJOIN {address}\r\n".encode())
    return address, hems.until("EVENT 24", "EVENT 25")[-1]


def test_a_hems_joins_through_the_dongle_and_reads_the_meter(tmp_path: Path, data: Path) -> None:
    with BRouteStore.open(data_dir=data) as store:
        issued = store.issue(1)
    scenario = write_scenario(tmp_path)
    meter = f"{NET}.11"
    args = ["--scenario", str(scenario), "--bind", meter, "--data-dir", str(data)]
    with routeb_meter(*args), _dongle(meter, f"{NET}.12") as path:
        hems = Hems(path)
        try:
            address, event = _skjoin(hems, issued.rbid, "wrongpasswrd")
            assert event == f"EVENT 24 {address}"
            address, event = _skjoin(hems, issued.rbid, issued.password)
            assert event == f"EVENT 25 {address}"
            header = f"SKSENDTO 1 {address} 0E1A 1 0 {len(FRAME):04X} "
            hems.write(header.encode() + FRAME)
            assert hems.until("OK")[-1] == "OK"
            fields = hems.until("ERXUDP").pop().split(" ")
            assert fields[1] == address
            reply = bytes.fromhex(fields[8])
            assert reply[10] == 0x72 and reply[12] == 0xE7  # Get_Res of instantaneous power
        finally:
            hems.close()
        with BRouteStore.open(data_dir=data) as store:
            store.revoke(1)
        again = Hems(path)
        try:
            address, event = _skjoin(again, issued.rbid, issued.password)
            assert event == f"EVENT 24 {address}"
        finally:
            again.close()
