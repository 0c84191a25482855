from __future__ import annotations

import contextlib
from datetime import UTC, date, datetime, time
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from openami.errors import DecodeError, LocalProtocolError
from openami.protocols.echonet import (
    JST,
    LOW_VOLTAGE_SMART_METER_CLASS,
    NODE_PROFILE_CLASS,
    Access,
    FixedTimeReading,
    HalfHourlyHistory,
    History2,
    History2Setting,
    LowVoltageSmartMeter,
    PropertySpec,
)
from tests.protocols.echonet.fakes import NOW, FakeMeterSource, export_at, import_at

CLASS = LOW_VOLTAGE_SMART_METER_CLASS


def spec(epc: int) -> PropertySpec:
    found = CLASS.spec(epc)
    assert found is not None
    return found


def meter(**kwargs: object) -> tuple[LowVoltageSmartMeter, FakeMeterSource]:
    source = FakeMeterSource()
    return LowVoltageSmartMeter(source, **kwargs), source  # type: ignore[arg-type]


def read(obj: LowVoltageSmartMeter, epc: int) -> object:
    raw = obj.read(epc)
    assert raw is not None
    return spec(epc).decode(raw)


def test_the_class_lists_what_the_appendix_asks_of_a_route_b_meter() -> None:
    assert CLASS.code == 0x0288
    assert CLASS.epcs(Access.SET) == {0x81, 0xE5, 0xED}
    assert CLASS.epcs(Access.ANNO) == {0x80, 0x81, 0x88}
    assert len(CLASS.epcs(Access.GET)) == 25


def test_every_property_encodes_and_decodes_with_a_fake_source() -> None:
    obj, _ = meter()
    maps = {0x9D: Access.ANNO, 0x9E: Access.SET, 0x9F: Access.GET}
    for prop in CLASS.properties:
        raw = obj.read(prop.epc)
        assert raw is not None, hex(prop.epc)
        assert prop.min_size <= len(raw) <= prop.max_size
        decoded = prop.decode(raw)
        expected = CLASS.epcs(maps[prop.epc]) if prop.epc in maps else obj.value(prop.epc)
        assert decoded == expected, hex(prop.epc)
        assert prop.encode(decoded) == raw


E2_CAPTURED = (
    "000B0000F7660000F7680000F76A0000F76C0000F76D0000F76F0000F7700000F7720000F7740000F776"
    "0000F7770000F7790000F77A0000F77C0000F77E0000F7800000F7810000F7830000F7840000F786"
    "0000F7880000F7890000F78B0000F78D0000F78E0000F7900000F7920000F7930000F7950000F796"
    "0000F7980000F79A0000F79C0000F79D0000F79F0000F7A00000F7A20000F7A40000F7A60000F7A7"
    "0000F7A90000F7AB0000F7AD0000F7AF0000F7B00000F7B20000F7B40000F7B6"
)


# EDTs captured from a low-voltage smart meter in the field (Appendix release F).
@pytest.mark.parametrize(
    ("epc", "edt", "value"),
    [
        (0x80, "30", True),
        (0x81, "61", b"\x61"),
        (0x82, "00004600", "F"),
        (0x88, "42", False),
        (0x8A, "000016", 0x16),
        (0x8D, "463234473336363530350000", "F24G366505"),
        (0x97, "0E1A", time(14, 26)),
        (0x98, "07EA0514", date(2026, 5, 20)),
        (0x9D, "03808188", {0x80, 0x81, 0x88}),
        (0x9E, "0381E5ED", {0x81, 0xE5, 0xED}),
        (0xD3, "00000001", 1),
        (0xD7, "06", 6),
        (0xE0, "0000FE73", 65139),
        (0xE7, "00000278", 632),
        (0xE8, "001E0032", (30, 50)),
        (
            0xEA,
            "07EA05140E00000000FE68",
            FixedTimeReading(datetime(2026, 5, 20, 14, tzinfo=JST), 65128),
        ),
        (
            0xEB,
            "07EA0518161E0000000016",
            FixedTimeReading(datetime(2026, 5, 24, 22, 30, tzinfo=JST), 22),
        ),
    ],
)
def test_values_captured_from_a_meter_decode(epc: int, edt: str, value: object) -> None:
    raw = bytes.fromhex(edt)
    assert spec(epc).decode(raw) == value
    assert spec(epc).encode(value) == raw


def test_captured_half_hourly_history_decodes() -> None:
    raw = bytes.fromhex(E2_CAPTURED)
    history = spec(0xE2).decode(raw)
    assert history.day == 11
    assert len(history.values) == 48
    assert (history.values[0], history.values[-1]) == (0xF766, 0xF7B6)
    assert spec(0xE2).encode(history) == raw


def test_the_meter_reports_whole_wh_in_unit_0_001_kwh() -> None:
    obj, _ = meter()
    assert read(obj, 0xE1) == Decimal("0.001")
    assert obj.read(0xE1) == b"\x03"
    assert (read(obj, 0xD3), read(obj, 0xD7)) == (1, 8)
    assert read(obj, 0xE0) == 65_139
    assert read(obj, 0xE3) == 22


@pytest.mark.parametrize(
    ("digits", "coefficient", "register"),
    [(8, 1, 23_456_789), (6, 1, 456_789), (8, 10, 12_345_678), (1, 1, 9)],
)
def test_registers_wrap_to_the_effective_digits(
    digits: int, coefficient: int, register: int
) -> None:
    obj, source = meter(digits=digits, coefficient=coefficient)
    source.import_wh = 123_456_789
    assert read(obj, 0xE0) == register
    assert read(obj, 0xD7) == digits
    assert read(obj, 0xD3) == coefficient


def test_half_hourly_history_follows_the_day_set_in_0xe5() -> None:
    obj, source = meter()
    today = read(obj, 0xE2)
    assert isinstance(today, HalfHourlyHistory) and today.day == 0
    assert today.values[:29] == tuple(import_at(0, slot) for slot in range(29))
    assert today.values[29:] == (None,) * 19  # 14:30 onwards has not happened yet
    raw = obj.read(0xE2)
    assert raw is not None and raw[2 + 4 * 29 :][:4] == b"\xff\xff\xff\xfe"  # no data
    assert obj.write(0xE5, b"\x03")
    assert read(obj, 0xE5) == 3
    assert read(obj, 0xE2) == HalfHourlyHistory(3, tuple(import_at(3, s) for s in range(48)))
    assert read(obj, 0xE4) == HalfHourlyHistory(3, tuple(export_at(3, s) for s in range(48)))
    assert not obj.write(0xE5, b"\x64")  # 100 days back is outside 0..99
    assert not obj.write(0xE5, b"\xff")  # the initial value is not something to set
    assert not obj.write(0xE5, b"\x01\x02")
    assert read(obj, 0xE5) == 3
    assert source.calls.count(3) == 2


def test_an_unset_history_day_answers_no_data() -> None:
    obj, _ = meter()
    obj.history_day = None
    assert obj.read(0xE5) == b"\xff"
    raw = obj.read(0xE2)
    assert raw == b"\x00\xff" + b"\xff\xff\xff\xfe" * 48
    assert read(obj, 0xE2) == HalfHourlyHistory(None, (None,) * 48)


def test_fixed_time_registers_are_those_of_the_latest_half_hour() -> None:
    obj, source = meter()
    at = datetime(2026, 5, 20, 14, tzinfo=JST)
    assert read(obj, 0xEA) == FixedTimeReading(at, import_at(0, 28))
    assert read(obj, 0xEB) == FixedTimeReading(at, export_at(0, 28))
    source.now = datetime(2026, 5, 20, 5, 30, tzinfo=UTC)  # a source may keep UTC
    assert read(obj, 0xEA) == FixedTimeReading(
        datetime(2026, 5, 20, 14, 30, tzinfo=JST), import_at(0, 29)
    )


def test_historical_data_2_goes_back_from_the_time_set_in_0xed() -> None:
    obj, source = meter()
    assert read(obj, 0xED) == History2Setting(None, 1)
    assert read(obj, 0xEC) == History2(None, ((None, None),))
    assert obj.read(0xEC) == b"\xff" * 6 + b"\x01" + b"\xff\xff\xff\xfe" * 2
    start = datetime(2026, 5, 20, 0, 30, tzinfo=JST)
    assert obj.write(0xED, bytes.fromhex("07EA05140 01E 03".replace(" ", "")))
    assert read(obj, 0xED) == History2Setting(start, 3)
    assert read(obj, 0xEC) == History2(
        start,
        (
            (import_at(0, 1), export_at(0, 1)),
            (import_at(0, 0), export_at(0, 0)),
            (import_at(1, 47), export_at(1, 47)),  # 23:30 the day before
        ),
    )
    assert sorted(set(source.calls)) == [0, 1]


@pytest.mark.parametrize(
    ("edt", "why"),
    [
        ("07EA05140E0F01", "minutes are 0 or 30"),
        ("07EA05140F0001", "15:00 is after the meter's 14:26"),
        ("07EA020800 0001", "more than 99 days back"),
        ("07EA05140E000D", "13 segments"),
        ("07EA05140E0000", "0 segments"),
        ("FFFFFFFFFFFF01", "the initial value is not something to set"),
        ("07EA0D140E0001", "month 13"),
        ("07EA05140E00", "6 octets"),
    ],
)
def test_refused_settings_of_0xed(edt: str, why: str) -> None:
    obj, _ = meter()
    assert not obj.write(0xED, bytes.fromhex(edt.replace(" ", ""))), why
    assert read(obj, 0xED) == History2Setting(None, 1)


def test_single_phase_two_wire_has_no_t_phase_current() -> None:
    obj, source = meter()
    source.currents = (-125, None)
    assert obj.read(0xE8) == bytes.fromhex("FF83 7FFE")
    assert read(obj, 0xE8) == (-125, None)
    source.power_w = -1_500
    assert obj.read(0xE7) == (-1_500).to_bytes(4, "big", signed=True)


def test_installation_location_is_settable_and_checked() -> None:
    obj, _ = meter()
    assert read(obj, 0x81) == b"\x00"
    assert obj.write(0x81, b"\x61")
    assert read(obj, 0x81) == b"\x61"
    free_form = b"\x01" + bytes(range(16))
    assert obj.write(0x81, free_form)
    assert read(obj, 0x81) == free_form
    assert not obj.write(0x81, b"\x02" + bytes(16))
    assert not obj.write(0x81, b"\x01\x02")
    assert not obj.write(0xE0, b"\x00\x00\x00\x01")  # read-only
    assert not obj.write(0x83, b"\x00")  # not a property of this meter


def test_identity_and_clock_come_from_the_source() -> None:
    obj, source = meter(release="H", installation_location=b"\x08")
    assert read(obj, 0x82) == "H"
    assert obj.read(0x82) == b"\x00\x00H\x00"
    assert read(obj, 0x8D) == "F24G366505"
    assert read(obj, 0x8A) == 0x16
    assert read(obj, 0x97) == time(14, 26)
    assert read(obj, 0x98) == NOW.date()
    assert read(obj, 0x88) is False
    obj.fault = True
    assert obj.read(0x88) == b"\x41"
    source.now = datetime(2026, 5, 20, 15, 59, tzinfo=UTC)
    assert read(obj, 0x97) == time(0, 59)
    assert read(obj, 0x98) == date(2026, 5, 21)


def test_bad_configuration_and_bad_sources_are_local_errors() -> None:
    with pytest.raises(LocalProtocolError):
        meter(digits=9)
    with pytest.raises(LocalProtocolError):
        meter(coefficient=0)
    with pytest.raises(LocalProtocolError):
        meter(release="FF")
    with pytest.raises(LocalProtocolError):
        meter(installation_location=b"\x02\x03")
    with pytest.raises(LocalProtocolError):
        meter(instance=0)
    obj, source = meter()
    source.import_wh = -1
    with pytest.raises(LocalProtocolError, match="negative"):
        obj.read(0xE0)
    source.now = NOW.replace(tzinfo=None)
    with pytest.raises(LocalProtocolError, match="naive"):
        obj.read(0x97)
    source.now = NOW
    source.serial = "X" * 13
    with pytest.raises(LocalProtocolError):
        obj.read(0x8D)
    source.power_w = 2**31
    with pytest.raises(LocalProtocolError):
        obj.read(0xE7)
    obj2, _ = meter()
    obj2.source.half_hourly_import_wh = lambda day_back: [1, 2]  # type: ignore[method-assign]
    with pytest.raises(LocalProtocolError, match="48"):
        obj2.read(0xE2)


@pytest.mark.parametrize(
    ("epc", "edt", "message"),
    [
        (0xE0, "05F5E100", "outside"),  # 100,000,000 is over eight digits
        (0xE2, "0064" + "00000000" * 48, "outside"),  # day 100
        (0xE2, "0000" + "00000000" * 47, "takes 194"),
        (0xE1, "05", "not one of"),
        (0x8D, "80" + "00" * 11, "ASCII"),
        (0x82, "00014600", "release"),
        (0xEA, "07EA0D140E0000" + "00000000", "date and time"),
        (0xEC, "07EA05140E0002" + "00000000" * 2, "2 segments"),
        (0xEC, "07EA05140E000D" + "00000000" * 26, "15..103"),
        (0xEC, "07EA05140E0000" + "00000000" * 2, "outside"),
        (0xE7, "80000000", "outside"),
        (0xE8, "8000" + "0000", "outside"),
        (0x97, "1800", "time of day"),
        (0x98, "07EA0230", "calendar date"),
        (0xD7, "00", "outside"),
    ],
)
def test_bad_edts_raise_decode_errors_that_say_why(epc: int, edt: str, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        spec(epc).decode(bytes.fromhex(edt))


_ROUND_TRIP = [prop for prop in CLASS.properties if prop.epc not in (0x9D, 0x9E, 0x9F)]


@given(st.sampled_from(CLASS.properties + NODE_PROFILE_CLASS.properties), st.binary(max_size=260))
def test_decoding_arbitrary_edts_raises_only_decode_error(prop: PropertySpec, raw: bytes) -> None:
    with contextlib.suppress(DecodeError):
        prop.decode(raw)


@given(st.sampled_from(_ROUND_TRIP), st.data())
def test_every_edt_that_decodes_encodes_back(prop: PropertySpec, data: st.DataObject) -> None:
    raw = data.draw(st.binary(min_size=prop.min_size, max_size=prop.max_size))
    try:
        value = prop.decode(raw)
    except DecodeError:
        return
    assert prop.encode(value) == raw


@given(
    st.lists(st.one_of(st.none(), st.integers(0, 99_999_999)), min_size=48, max_size=48),
    st.one_of(st.none(), st.integers(0, 99)),
)
def test_history_values_round_trip(values: list[int | None], day: int | None) -> None:
    history = HalfHourlyHistory(day, tuple(values))
    assert spec(0xE2).decode(spec(0xE2).encode(history)) == history


@pytest.mark.parametrize(
    "prop",
    CLASS.properties + NODE_PROFILE_CLASS.properties,
    ids=lambda prop: f"{prop.epc:02X}",
)
def test_encoding_a_value_of_the_wrong_kind_is_a_local_error(prop: PropertySpec) -> None:
    with pytest.raises(LocalProtocolError):
        prop.encode(object())
