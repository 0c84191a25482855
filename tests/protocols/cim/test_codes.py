"""Reading type identifiers, quality codes, and the event and control code tables."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from openami.errors import DecodeError, LocalProtocolError
from openami.protocols import cim
from openami.protocols.cim.reading_type import FIELDS
from openami.protocols.dlms.notification import EventCode

# --- reading types -------------------------------------------------------------------------


def test_a_reading_type_has_the_standards_eighteen_fields_in_order() -> None:
    assert len(FIELDS) == 18
    names = [name for name, _ in FIELDS]
    assert names[:7] == [
        "macro_period",
        "aggregate",
        "measuring_period",
        "accumulation",
        "flow_direction",
        "commodity",
        "measurement_kind",
    ]
    assert names[-4:] == ["phases", "multiplier", "unit", "currency"]


def test_fifteen_minute_delta_forward_kwh() -> None:
    # the identifier public implementations use for 15-minute forward energy in kWh
    rt = cim.ReadingTypeId(
        measuring_period=cim.MeasuringPeriod.FIFTEEN_MINUTE,
        accumulation=cim.Accumulation.DELTA_DATA,
        flow_direction=cim.FlowDirection.FORWARD,
        commodity=cim.Commodity.ELECTRICITY_SECONDARY_METERED,
        measurement_kind=cim.MeasurementKind.ENERGY,
        multiplier=cim.Multiplier.KILO,
        unit=cim.Unit.WH,
    )
    assert rt.mrid == "0.0.2.4.1.1.12.0.0.0.0.0.0.0.0.3.72.0"


@pytest.mark.parametrize(
    ("minutes", "direction", "mrid"),
    [
        (30, cim.FlowDirection.FORWARD, "0.0.5.4.1.1.12.0.0.0.0.0.0.0.0.0.72.0"),
        (30, cim.FlowDirection.REVERSE, "0.0.5.4.19.1.12.0.0.0.0.0.0.0.0.0.72.0"),
        (60, cim.FlowDirection.FORWARD, "0.0.7.4.1.1.12.0.0.0.0.0.0.0.0.0.72.0"),
        (15, cim.FlowDirection.FORWARD, "0.0.2.4.1.1.12.0.0.0.0.0.0.0.0.0.72.0"),
        (5, cim.FlowDirection.FORWARD, "0.0.6.4.1.1.12.0.0.0.0.0.0.0.0.0.72.0"),
    ],
)
def test_interval_energy(minutes: int, direction: cim.FlowDirection, mrid: str) -> None:
    assert cim.interval_energy(minutes, direction).mrid == mrid


def test_interval_energy_knows_only_openamis_intervals() -> None:
    with pytest.raises(LocalProtocolError):
        cim.interval_energy(10)


def test_register_reading_types() -> None:
    assert cim.BULK_FORWARD_WH.mrid == "0.0.0.1.1.1.12.0.0.0.0.0.0.0.0.0.72.0"
    assert cim.BULK_REVERSE_WH.mrid == "0.0.0.1.19.1.12.0.0.0.0.0.0.0.0.0.72.0"


def test_parse_names_what_it_knows() -> None:
    parsed = cim.ReadingTypeId.parse("13.0.0.4.1.1.12.0.0.0.0.2.0.0.0.3.72.392")
    assert parsed.macro_period is cim.MacroPeriod.MONTHLY
    assert parsed.tou == 2
    assert parsed.currency is cim.Currency.JPY
    odd = cim.ReadingTypeId.parse("0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.-9.999.0")
    assert odd.multiplier == -9
    assert odd.unit == 999
    assert not isinstance(odd.unit, cim.Unit)


@given(st.lists(st.integers(-999_999_999, 999_999_999), min_size=18, max_size=18))
def test_parse_and_mrid_round_trip(values: list[int]) -> None:
    mrid = ".".join(map(str, values))
    assert cim.ReadingTypeId.parse(mrid).mrid == mrid


@pytest.mark.parametrize(
    "mrid",
    ["", "0.0.5", "0." * 17 + "x", "0." * 18 + "0", "0." * 17 + "\u0661", "0." * 17 + "1234567890"],
)
def test_parse_refuses_what_is_not_an_identifier(mrid: str) -> None:
    with pytest.raises(DecodeError):
        cim.ReadingTypeId.parse(mrid)


def test_quality_codes() -> None:
    assert cim.quality_code(cim.QualitySystem.MDM, cim.QualityCategory.ESTIMATED) == "3.8.0"
    assert cim.quality_code(cim.QualitySystem.END_DEVICE, cim.QualityCategory.VALID) == "1.0.0"
    assert cim.quality_code(cim.QualitySystem.MDM, cim.QualityCategory.EDITED, 1) == "3.7.1"
    with pytest.raises(LocalProtocolError):
        cim.quality_code(cim.QualitySystem.MDM, cim.QualityCategory.EDITED, -1)


# --- event and control types -----------------------------------------------------------------


def test_every_dlms_event_has_an_end_device_event_type() -> None:
    assert set(cim.EVENT_TYPES) == set(EventCode)
    for event in EventCode:
        code = cim.end_device_event_type(event)
        assert cim.dlms_event_code(code) is event
        assert cim.EndDeviceCode.parse(code) == cim.EVENT_TYPES[event].code


def test_every_control_has_an_end_device_control_type() -> None:
    assert set(cim.CONTROL_TYPES) == set(cim.ControlKind)
    for kind in cim.ControlKind:
        assert cim.control_kind(cim.end_device_control_type(kind)) is kind


def test_codes_are_distinct() -> None:
    events = [choice.code.code for choice in cim.EVENT_TYPES.values()]
    controls = [choice.code.code for choice in cim.CONTROL_TYPES.values()]
    assert len(set(events)) == len(events)
    assert len(set(controls)) == len(controls)


def test_what_is_confirmed_and_what_is_our_choice() -> None:
    """Pin the table: a change to a code, or to how sure we are of it, is a reviewed change."""
    events = {e.name: (c.code.code, c.provenance) for e, c in cim.EVENT_TYPES.items()}
    assert events == {
        "POWER_DOWN": ("3.26.0.85", cim.Provenance.CONFIRMED),
        "POWER_UP": ("3.26.0.216", cim.Provenance.DERIVED),
        "CLOCK_ADJUSTED": ("3.36.116.24", cim.Provenance.DERIVED),
        "TERMINAL_COVER_OPENED": ("3.12.29.212", cim.Provenance.CONFIRMED),
        "STRONG_MAGNETIC_FIELD": ("3.12.66.242", cim.Provenance.DERIVED),
        "CLOCK_ERROR": ("3.36.0.79", cim.Provenance.CONFIRMED),
        "REVERSE_FLOW": ("3.26.93.219", cim.Provenance.CONFIRMED),
        "COMM_UNIT_REPLACED": ("26.6.0.52", cim.Provenance.BEST_CHOICE),
    }
    controls = {k.name: (c.code.code, c.provenance) for k, c in cim.CONTROL_TYPES.items()}
    assert controls == {
        "DISCONNECT": ("3.31.0.23", cim.Provenance.CONFIRMED),
        "CONNECT": ("3.31.0.18", cim.Provenance.CONFIRMED),
        "SET_CONTRACT_CURRENT": ("3.31.139.13", cim.Provenance.BEST_CHOICE),
        "SET_INTERVAL": ("3.16.59.13", cim.Provenance.BEST_CHOICE),
        "TIME_SYNC": ("3.36.116.30", cim.Provenance.BEST_CHOICE),
        "ON_DEMAND_READ": ("3.21.87.46", cim.Provenance.BEST_CHOICE),
        "DEMAND_RESET": ("3.8.0.214", cim.Provenance.DERIVED),
        "KEY_CHANGE": ("3.12.32.13", cim.Provenance.DERIVED),
    }
    for choice in (*cim.EVENT_TYPES.values(), *cim.CONTROL_TYPES.values()):
        assert choice.note


def test_unknown_codes_are_not_ours() -> None:
    assert cim.dlms_event_code("3.99.0.0") is None
    assert cim.control_kind("3.31.0.24") is None


@pytest.mark.parametrize("code", ["", "3.26.0", "3.26.0.85.1", "3.26.x.85", "3.26.0.-1"])
def test_end_device_code_parse_refuses_non_codes(code: str) -> None:
    with pytest.raises(DecodeError):
        cim.EndDeviceCode.parse(code)
