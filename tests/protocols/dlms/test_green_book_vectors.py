"""Worked examples of the DLMS UA Green Book, byte for byte.

Table 40: a get-request for the clock ciphered with security suite 0.
Table 43: HLS authentication mechanism 5 (GMAC), both passes.
The AARQ of the HLS example: LN referencing, mechanism 5, CtoS "K56iVagY".
"""

from __future__ import annotations

from openami.protocols.dlms.acse import (
    AARQ,
    ApplicationContext,
    InitiateRequest,
    Mechanism,
    encode_initiate_request,
)
from openami.protocols.dlms.apdu import decode_apdu, encode_apdu
from openami.protocols.dlms.security import SC_AUTHENTICATED, SuiteZero
from openami.protocols.dlms.services import CipheredService, GetRequestNormal

EK = bytes.fromhex("000102030405060708090A0B0C0D0E0F")
AK = bytes.fromhex("D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF")
SERVER_TITLE = bytes.fromhex("4D4D4D0000BC614E")
CLIENT_TITLE = bytes.fromhex("4D4D4D0000000001")
CLOCK_GET = bytes.fromhex("C0010000080000010000FF0200")  # get-request, clock, attribute 2


def test_table_40_plain_apdu_is_a_clock_get() -> None:
    assert decode_apdu(CLOCK_GET) == GetRequestNormal(0x00, 8, bytes.fromhex("0000010000FF"), 2)


def test_table_40_authenticated_encryption() -> None:
    content = SuiteZero(EK, AK).protect(SERVER_TITLE, 0x01234567, CLOCK_GET)
    glo = encode_apdu(CipheredService(0xC8, content))
    assert glo.hex().upper() == ("C81E3001234567411312FF935A47566827C467BC7D825C3BE4A77C3FCC056B6B")
    assert SuiteZero(EK, AK).unprotect(SERVER_TITLE, content) == (0x01234567, CLOCK_GET)


def test_table_40_authentication_only() -> None:
    content = SuiteZero(EK, AK).protect(SERVER_TITLE, 0x01234567, CLOCK_GET, SC_AUTHENTICATED)
    assert encode_apdu(CipheredService(0xC8, content)).hex().upper() == (
        "C81E1001234567C0010000080000010000FF020006725D910F9221D263877516"
    )


def test_table_43_hls_gmac_pass_3_and_4() -> None:
    suite = SuiteZero(EK, AK)
    ctos, stoc = b"K56iVagY", b"P6wRJ21F"
    f_stoc = suite.gmac(CLIENT_TITLE, 0x00000001, stoc)
    assert f_stoc.hex().upper() == "10000000011A52FE7DD3E72748973C1E28"
    f_ctos = suite.gmac(SERVER_TITLE, 0x01234567, ctos)
    assert f_ctos.hex().upper() == "1001234567FE1466AFB3DBCD4F9389E2B7"
    assert suite.verify_gmac(CLIENT_TITLE, f_stoc, stoc) == 1
    assert suite.verify_gmac(SERVER_TITLE, f_ctos, ctos) == 0x01234567


def test_aarq_of_the_hls_example() -> None:
    aarq = AARQ(
        ApplicationContext.LOGICAL_NAME,
        None,
        Mechanism.HIGH_GMAC,
        b"K56iVagY",
        encode_initiate_request(InitiateRequest(0x007E1F, 0x04B0)),
    )
    expected = (
        "6036"
        "A109060760857405080101"  # LN referencing, no ciphering
        "8A020780"  # sender-acse-requirements: authentication
        "8B0760857405080205"  # mechanism 5, HLS-GMAC
        "AC0A80084B35366956616759"  # calling-authentication-value "K56iVagY"
        "BE10040E01000000065F1F0400007E1F04B0"  # xDLMS initiate-request
    )
    assert encode_apdu(aarq).hex().upper() == expected
    assert decode_apdu(bytes.fromhex(expected)) == aarq
