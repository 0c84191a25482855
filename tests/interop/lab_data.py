"""Fixed data of the Gurux lab server, shared by the server process and the tests.

This module imports nothing from Gurux: the test process uses it to know what the lab server
holds (keys, system titles, clock, profile rows) without loading the GPL library itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

__all__ = [
    "AK",
    "CLIENT_SYSTEM_TITLE",
    "CLOCK_OBIS",
    "CLOCK_TIME",
    "EK",
    "EXPORT_OBIS",
    "IMPORT_OBIS",
    "JST",
    "LAB_CLIENTS",
    "LOW_PASSWORD",
    "MANAGEMENT_CLIENT",
    "PROFILE_CAPTURE_PERIOD",
    "PROFILE_OBIS",
    "PROFILE_ROWS",
    "PUBLIC_CLIENT",
    "READER_CLIENT",
    "REGISTER_VALUE",
    "SERVER_ADDRESS",
    "SERVER_SYSTEM_TITLE",
    "STATUS_OBIS",
    "ProfileRow",
    "profile_rows",
]

JST = timezone(timedelta(hours=9), "JST")

# Lab keys: 16 ASCII bytes each so a hex dump shows which is which. Never used outside tests.
EK = b"openami-lab-ek-1"
AK = b"openami-lab-ak-1"
# System titles: 3-letter manufacturer flag then 5 bytes of serial number.
CLIENT_SYSTEM_TITLE = bytes.fromhex("4F414D0000000001")  # "OAM" 00 00 00 00 01
SERVER_SYSTEM_TITLE = bytes.fromhex("4C41420000BC614E")  # "LAB" 00 00 BC 61 4E

# Wrapper ports (SAPs). The lab meter is one logical device, the management one.
SERVER_ADDRESS = 1
PUBLIC_CLIENT = 16  # authentication none, security none
MANAGEMENT_CLIENT = 1  # HLS-GMAC, security suite 0, authentication + encryption
READER_CLIENT = 17  # LLS (low) with LOW_PASSWORD, security none
LAB_CLIENTS = (PUBLIC_CLIENT, MANAGEMENT_CLIENT, READER_CLIENT)
LOW_PASSWORD = "12345678"

CLOCK_OBIS = "0.0.1.0.0.255"
STATUS_OBIS = "0.0.96.10.1.255"
IMPORT_OBIS = "1.0.1.8.0.255"
EXPORT_OBIS = "1.0.2.8.0.255"
PROFILE_OBIS = "1.0.99.1.0.255"
PROFILE_CAPTURE_PERIOD = 1800

# The lab clock does not run: every read returns this instant, so frames are reproducible.
CLOCK_TIME = datetime(2024, 6, 1, 12, 0, 0, tzinfo=JST)


@dataclass(frozen=True, slots=True)
class ProfileRow:
    """One load-profile row: capture time, status, import Wh, export Wh."""

    time: datetime
    status: int
    import_wh: int
    export_wh: int


def profile_rows() -> tuple[ProfileRow, ...]:
    """48 half-hour rows for 2024-06-01 JST (00:00 to 23:30), deterministic values."""
    start = datetime(2024, 6, 1, 0, 0, 0, tzinfo=JST)
    rows: list[ProfileRow] = []
    import_wh = 1_000_000
    export_wh = 200_000
    for i in range(48):
        import_wh += 100 + (i * 37) % 250
        export_wh += (i * 13) % 50
        status = 0x80 if i == 20 else 0x00
        rows.append(ProfileRow(start + timedelta(seconds=1800 * i), status, import_wh, export_wh))
    return tuple(rows)


PROFILE_ROWS = profile_rows()
# The import register holds the last captured value.
REGISTER_VALUE = PROFILE_ROWS[-1].import_wh
