"""The fixed suite-0 keys and system title shared by ``fuzz_security`` and ``make_corpus``.

Test material only: these keys protect nothing.
"""

from __future__ import annotations

EK = bytes.fromhex("000102030405060708090a0b0c0d0e0f")  # global unicast encryption key
AK = bytes.fromhex("d0d1d2d3d4d5d6d7d8d9dadbdcdddedf")  # authentication key
SYSTEM_TITLE = bytes.fromhex("4f414d0000000001")  # "OAM" + serial 1
