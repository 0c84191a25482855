"""Our stack against frames recorded from the Gurux client (an implementation we did not
write): every frame decodes, every ciphered frame opens with the session keys, the Gurux
client's HLS-GMAC proof verifies with our GMAC, and our server association accepts the
Gurux client's whole session."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from openami.protocols.dlms.acse import AARQ, ApplicationContext, Mechanism
from openami.protocols.dlms.apdu import GeneralGloCiphering, decode_apdu
from openami.protocols.dlms.association import (
    Reply,
    ServerAssociation,
    ServerSettings,
    ServiceIndication,
)
from openami.protocols.dlms.axdr import Data, DataType
from openami.protocols.dlms.security import SuiteZero
from openami.protocols.dlms.services import (
    ActionRequestNormal,
    CipheredService,
    GetRequestNormal,
    GetResponseNormal,
)
from openami.protocols.dlms.wrapper import decode_wrapper

VECTORS = Path(__file__).parents[2] / "interop" / "vectors"
NAMES = ["gurux_hls_gmac_session", "gurux_hls_gmac_glo_session", "gurux_plain_session"]


def load(name: str) -> dict[str, Any]:
    vector: dict[str, Any] = json.loads((VECTORS / f"{name}.json").read_text(encoding="utf-8"))
    return vector


@pytest.mark.parametrize("name", NAMES)
def test_every_recorded_frame_decodes(name: str) -> None:
    for frame in load(name)["frames"]:
        decode_apdu(decode_wrapper(bytes.fromhex(frame["hex"])).apdu)


@pytest.mark.parametrize("name", NAMES[:2])
def test_ciphered_frames_open_with_the_session_keys(name: str) -> None:
    vector = load(name)
    suite = SuiteZero(bytes.fromhex(vector["keys"]["ek"]), bytes.fromhex(vector["keys"]["ak"]))
    titles = {
        "tx": bytes.fromhex(vector["system_titles"]["client"]),
        "rx": bytes.fromhex(vector["system_titles"]["server"]),
    }
    opened = 0
    for frame in vector["frames"]:
        apdu = decode_apdu(decode_wrapper(bytes.fromhex(frame["hex"])).apdu)
        if isinstance(apdu, GeneralGloCiphering):
            assert apdu.system_title == titles[frame["dir"]]
            suite.unprotect(apdu.system_title, apdu.ciphered_content)
            opened += 1
        elif isinstance(apdu, CipheredService):
            _, plain = suite.unprotect(titles[frame["dir"]], apdu.ciphered_content)
            if plain[0] not in (0x01, 0x08):  # initiate request/response are not APDUs here
                decode_apdu(plain)
            opened += 1
    assert opened >= 10


def test_the_gurux_client_hls_proof_verifies_with_our_gmac() -> None:
    vector = load("gurux_hls_gmac_session")
    suite = SuiteZero(bytes.fromhex(vector["keys"]["ek"]), bytes.fromhex(vector["keys"]["ak"]))
    client = bytes.fromhex(vector["system_titles"]["client"])
    stoc = bytes.fromhex(vector["challenges"]["stoc"])
    frames = [decode_apdu(decode_wrapper(bytes.fromhex(f["hex"])).apdu) for f in vector["frames"]]
    aarq = frames[0]
    assert isinstance(aarq, AARQ)
    assert aarq.application_context is ApplicationContext.LOGICAL_NAME_CIPHERED
    assert aarq.mechanism is Mechanism.HIGH_GMAC
    assert aarq.calling_ap_title == client
    action_wire = frames[2]
    assert isinstance(action_wire, CipheredService)
    _, plain = suite.unprotect(client, action_wire.ciphered_content)
    action = decode_apdu(plain)
    assert isinstance(action, ActionRequestNormal)
    assert action.method.class_id == 15
    assert action.parameters is not None
    assert suite.verify_gmac(client, action.parameters.value, stoc) == 101


def test_our_server_association_accepts_the_gurux_clients_session() -> None:
    # the glo session: the conformance our meters grant (no general-protection)
    vector = load("gurux_hls_gmac_glo_session")
    suite = SuiteZero(bytes.fromhex(vector["keys"]["ek"]), bytes.fromhex(vector["keys"]["ak"]))
    server = ServerAssociation(
        ServerSettings(
            bytes.fromhex(vector["system_titles"]["server"]),
            suite,
            Mechanism.HIGH_GMAC,
            ciphered=True,
        )
    )
    stoc = bytes.fromhex(vector["challenges"]["stoc"])
    gets = 0
    for frame in (f for f in vector["frames"] if f["dir"] == "tx"):
        out = server.receive(bytes.fromhex(frame["hex"])[8:], stoc)
        if isinstance(out, ServiceIndication):
            assert isinstance(out.request, GetRequestNormal)
            server.respond(out, GetResponseNormal(out.request.invoke_id, Data(DataType.NULL, None)))
            gets += 1
        else:
            assert isinstance(out, Reply)
            assert decode_apdu(out.data) is not None
    assert gets >= 5


def test_our_server_answers_general_glo_ciphering_as_gurux_sends_it() -> None:
    # the session where general-protection was negotiated: Gurux sends 0xDB requests
    vector = load("gurux_hls_gmac_session")
    suite = SuiteZero(bytes.fromhex(vector["keys"]["ek"]), bytes.fromhex(vector["keys"]["ak"]))
    server_title = bytes.fromhex(vector["system_titles"]["server"])
    server = ServerAssociation(
        ServerSettings(
            server_title, suite, Mechanism.HIGH_GMAC, ciphered=True, conformance=0x401E5D
        )
    )
    stoc = bytes.fromhex(vector["challenges"]["stoc"])
    answered = 0
    for frame in (f for f in vector["frames"] if f["dir"] == "tx"):
        out = server.receive(bytes.fromhex(frame["hex"])[8:], stoc)
        if isinstance(out, ServiceIndication):
            assert out.general
            wire = server.respond(out, GetResponseNormal(0xC1, Data(DataType.NULL, None)))
            answer = decode_apdu(wire)
            assert isinstance(answer, GeneralGloCiphering)
            assert answer.system_title == server_title
            _, plain = suite.unprotect(server_title, answer.ciphered_content)
            assert decode_apdu(plain) == GetResponseNormal(0xC1, Data(DataType.NULL, None))
            answered += 1
    assert answered >= 5
