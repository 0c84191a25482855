"""The committed golden vectors are whole and self-consistent. Needs no Gurux."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.interop import lab_data
from tests.interop.golden import VECTOR_DIR, check_vector, gmac

NAMES = ["gurux_hls_gmac_session", "gurux_hls_gmac_glo_session", "gurux_plain_session"]


def _load(name: str) -> dict[str, Any]:
    vector = json.loads((VECTOR_DIR / f"{name}.json").read_text(encoding="utf-8"))
    assert isinstance(vector, dict)
    return vector


@pytest.mark.parametrize("name", NAMES)
def test_vector_is_consistent(name: str) -> None:
    vector = _load(name)
    assert vector["name"] == name
    assert check_vector(vector) == []
    frames = vector["frames"]
    assert [f["dir"] for f in frames] == ["tx", "rx"] * (len(frames) // 2)
    assert bytes.fromhex(frames[0]["apdu"])[0] == 0x60  # AARQ
    assert bytes.fromhex(frames[1]["apdu"])[0] == 0x61  # AARE
    assert frames[-2]["apdu"] == "6203800100"  # RLRQ, reason normal
    assert frames[-1]["apdu"] == "6303800100"  # RLRE, reason normal
    for frame in frames:
        wrapper = frame["wrapper"]
        client, server = vector["client_address"], vector["server_address"]
        expected = (client, server) if frame["dir"] == "tx" else (server, client)
        assert (wrapper["source"], wrapper["destination"]) == expected


@pytest.mark.parametrize("name", ["gurux_hls_gmac_session", "gurux_hls_gmac_glo_session"])
def test_hls_vector_keys_and_answers(name: str) -> None:
    vector = _load(name)
    assert vector["keys"] == {"ek": lab_data.EK.hex(), "ak": lab_data.AK.hex()}
    assert vector["system_titles"] == {
        "client": lab_data.CLIENT_SYSTEM_TITLE.hex(),
        "server": lab_data.SERVER_SYSTEM_TITLE.hex(),
    }
    counters = vector["invocation_counters"]
    assert counters["client"][0] == vector["client_initial_invocation_counter"]
    for side in ("client", "server"):
        assert counters[side] == sorted(set(counters[side])), f"{side} reused a counter"
    # The client's answer to StoC, recomputed here from the keys and challenge alone.
    action = vector["frames"][2]["protection"]
    stoc = bytes.fromhex(vector["challenges"]["stoc"])
    f_stoc = gmac(
        lab_data.CLIENT_SYSTEM_TITLE, counters["client"][1], stoc, lab_data.EK, lab_data.AK
    )
    assert f_stoc.hex() in action["plaintext"]


def test_plain_vector_is_clear() -> None:
    vector = _load("gurux_plain_session")
    assert all("protection" not in f for f in vector["frames"])
    assert "keys" not in vector
