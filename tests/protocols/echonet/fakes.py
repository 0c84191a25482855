"""A scripted meter source and frame strategies shared by the ECHONET Lite tests."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from hypothesis import strategies as st

from openami.protocols.echonet import EOJ, ESV, JST, Frame, Property
from openami.protocols.echonet.frame import SETGET_ESVS

NOW = datetime(2026, 5, 20, 14, 26, 11, tzinfo=JST)


def import_at(day_back: int, slot: int) -> int:
    """The fake import register at half-hour ``slot`` of the day ``day_back`` days ago: it
    grows by 100 Wh every half-hour, so any two readings differ predictably."""
    return 5_000_000 + ((99 - day_back) * 48 + slot) * 100


def export_at(day_back: int, slot: int) -> int:
    return 20_000 + ((99 - day_back) * 48 + slot) * 3


@dataclass
class FakeMeterSource:
    now: datetime = NOW
    import_wh: int = 65_139
    export_wh: int = 22
    power_w: int = 632
    currents: tuple[int, int | None] = (30, 50)
    serial: str = "F24G366505"
    manufacturer: int = 0x000016
    calls: list[int] = field(default_factory=list)

    def now_jst(self) -> datetime:
        return self.now

    def cumulative_import_wh(self) -> int:
        return self.import_wh

    def cumulative_export_wh(self) -> int:
        return self.export_wh

    def instantaneous_power_w(self) -> int:
        return self.power_w

    def currents_deciamp(self) -> tuple[int, int | None]:
        return self.currents

    def _day(self, day_back: int, register: object) -> Sequence[int | None]:
        self.calls.append(day_back)
        # Today's half-hours after the current one have no reading yet.
        local = self.now.astimezone(JST)
        latest = local.hour * 2 + local.minute // 30 if day_back == 0 else 47
        at = import_at if register == "import" else export_at
        return [at(day_back, slot) if slot <= latest else None for slot in range(48)]

    def half_hourly_import_wh(self, day_back: int) -> Sequence[int | None]:
        return self._day(day_back, "import")

    def half_hourly_export_wh(self, day_back: int) -> Sequence[int | None]:
        return self._day(day_back, "export")

    def production_number(self) -> str:
        return self.serial

    def manufacturer_code(self) -> int:
        return self.manufacturer


octets = st.integers(0, 0xFF)
eojs = st.builds(EOJ, octets, octets, octets)
properties = st.builds(Property, octets, st.binary(max_size=24))
property_lists = st.lists(properties, max_size=5).map(tuple)
tids = st.integers(0, 0xFFFF)
single_list_esvs = st.sampled_from([esv for esv in ESV if esv not in SETGET_ESVS])

frames = st.one_of(
    st.builds(Frame, tids, eojs, eojs, single_list_esvs, property_lists),
    st.builds(
        Frame,
        tids,
        eojs,
        eojs,
        st.sampled_from(sorted(SETGET_ESVS)),
        property_lists,
        property_lists,
    ),
)
