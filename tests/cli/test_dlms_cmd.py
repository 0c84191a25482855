from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from openami.cli.main import main
from openami.protocols.dlms.apdu import GeneralGloCiphering, encode_apdu
from openami.protocols.dlms.security import SuiteZero
from tests.conftest import free_port

EK = bytes(range(16))
AK = bytes(range(16, 32))
TITLE = b"OAM\x00\x00\x00\x00\x09"


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_decode_a_wrapper_frame_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(
        capsys, "dlms", "decode", "000100010001000dc001c100080000010000ff0200", "--json"
    )
    assert code == 0
    decoded = json.loads(out)
    assert decoded["wrapper"] == {"source_wport": 1, "destination_wport": 1}
    assert decoded["apdu"]["apdu"] == "GetRequestNormal"
    assert decoded["apdu"]["instance_id"] == "0000010000ff"


def test_decode_opens_a_ciphered_apdu_with_the_keys(capsys: pytest.CaptureFixture[str]) -> None:
    inner = bytes.fromhex("c001c100080000010000ff0200")
    frame = encode_apdu(GeneralGloCiphering(TITLE, SuiteZero(EK, AK).protect(TITLE, 7, inner)))
    code, out, _ = _run(
        capsys, "dlms", "decode", frame.hex(), "--key", EK.hex(), "--auth-key", AK.hex(), "--json"
    )
    assert code == 0
    decoded = json.loads(out)
    assert decoded["invocation_counter"] == 7
    assert decoded["deciphered"]["class_id"] == 8
    code, _, err = _run(
        capsys, "dlms", "decode", frame.hex(), "--key", bytes(16).hex(), "--auth-key", AK.hex()
    )
    assert code == 1
    assert err.count("\n") == 1
    assert "tag" in err


def test_decode_an_hdlc_frame(capsys: pytest.CaptureFixture[str]) -> None:
    from openami.protocols.dlms.hdlc import FrameType, HdlcAddress, HdlcFrame, add_llc, encode_frame

    hdlc = encode_frame(
        HdlcFrame(
            FrameType.I,
            HdlcAddress(1, 0x11, octets=2),
            HdlcAddress(0x10),
            information=add_llc(bytes.fromhex("c001c100080000010000ff0200"), from_client=True),
        )
    )
    code, out, err = _run(capsys, "dlms", "decode", hdlc.hex(), "--json")
    assert code == 0, err
    assert json.loads(out)["apdu"]["class_id"] == 8


@pytest.mark.parametrize(
    ("frame", "needle"),
    [("zz", "hexadecimal"), ("0001000100010003c001", "length"), ("ff", "tag"), ("", "empty")],
)
def test_bad_frames_are_one_line_and_non_zero(
    frame: str, needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _run(capsys, "dlms", "decode", frame)
    assert code != 0
    assert err.count("\n") == 1
    assert needle in err


@pytest.fixture
def lab_meters(tmp_path: Path) -> Iterator[list[dict[str, object]]]:
    port = free_port(2)  # --per-port: meter k listens on port + k
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "openami.cli.main",
            "meter",
            "serve",
            "--meters",
            "2",
            "--per-port",
            "--port",
            str(port),
            "--print-keys",
            "--duration",
            "30",
        ],
        stdout=subprocess.PIPE,
        text=True,
        env=os.environ | {"PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        lines = [json.loads(proc.stdout.readline()) for _ in range(2)]
        yield lines
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()


def test_meter_serve_prints_keys_and_dlms_read_reads_it(
    lab_meters: list[dict[str, object]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    meter = lab_meters[1]
    assert set(meter) >= {
        "address",
        "port",
        "client_sap",
        "server_sap",
        "system_title",
        "ek",
        "ak",
        "kek",
    }
    keys = tmp_path / "meter.json"
    keys.write_text(json.dumps(meter), encoding="utf-8")
    port = str(meter["port"])
    deadline = time.monotonic() + 10
    while True:  # the subprocess printed its keys after binding, but be patient on slow CI
        code, out, err = _run(
            capsys,
            "dlms",
            "read",
            "127.0.0.1",
            "1.0.1.8.0.255",
            "--port",
            port,
            "--keys",
            f"@{keys}",
            "--json",
        )
        if code == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert code == 0, err
    assert json.loads(out)["type"] == "double-long-unsigned"
    code, out, err = _run(
        capsys,
        "dlms",
        "read",
        "127.0.0.1",
        "0.0.1.0.0.255",
        "--port",
        port,
        "--ek",
        str(meter["ek"]),
        "--ak",
        str(meter["ak"]),
        "--json",
    )
    assert code == 0, err
    assert "datetime" in json.loads(out)
    code, _, err = _run(
        capsys,
        "dlms",
        "read",
        "127.0.0.1",
        "1.0.1.8.0.255",
        "--port",
        port,
        "--ek",
        "00" * 16,
        "--ak",
        str(meter["ak"]),
    )
    assert code == 1
    assert "refused" in err


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["1.0.1.8.0.255"], "keys"),
        (["1.0.1.8", "--ek", "00" * 16, "--ak", "00" * 16], "OBIS"),
        (["1.0.1.8.0.255:x", "--ek", "00" * 16, "--ak", "00" * 16], "attribute"),
        (["1.0.1.8.0.255", "--ek", "00", "--ak", "00" * 16], "16 octets"),
        (["1.0.1.8.0.255", "--keys", "{}"], "ek"),
        (
            ["1.0.99.1.0.255", "--ek", "00" * 16, "--ak", "00" * 16, "--from", "2026-11-25T00:00"],
            "zone",
        ),
    ],
)
def test_read_bad_input_is_one_line_and_exit_2(
    args: list[str], needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _run(capsys, "dlms", "read", "127.0.0.1", *args)
    assert code == 2
    assert err.count("\n") == 1
    assert needle in err
